#!/usr/bin/env bash
# Installs what is needed, builds (Release) and starts tallyd in the
# foreground with its embedded defaults (127.0.0.1:7379, memory only).
# Extra arguments go to tallyd, e.g. tools/run.sh --port=7380.
# Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh release
exec build/bin/tallyd "$@"
