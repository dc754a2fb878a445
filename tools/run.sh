#!/usr/bin/env bash
# Installs what is needed, builds (Release) and starts tallyd in the
# foreground with its embedded defaults (127.0.0.1:7379, memory only).
# Extra arguments go to tallyd, e.g. tools/run.sh --port=7380.
# Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh release
# tallyd refuses to run as root without --allow_root (docs/security.md);
# this quick start passes it when run as root (e.g. in a container).
if [ "$(id -u)" -eq 0 ]; then set -- --allow_root "$@"; fi
exec build/bin/tallyd "$@"
