#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test.
# Usage: tools/test.sh [release|asan]   (default release; CI runs both)
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
bash tools/install-deps.sh
bash tools/build.sh "$kind"
dir=build; [ "$kind" = asan ] && dir=build-asan
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
