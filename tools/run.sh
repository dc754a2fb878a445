#!/usr/bin/env bash
# Installs what is needed, builds (Release) and runs tally's main job.
# Until tallyd lands (the server issue) the main job is the embedded W1 benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh release
exec build/bin/tally-bench --embedded "$@"
