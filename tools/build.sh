#!/usr/bin/env bash
# Configures and builds tally. Usage: tools/build.sh [release|asan|tsan|fuzz] [extra cmake args]
#   release (default): optimised build in build/, binaries in build/bin/
#   asan:              ASan+UBSan build in build-asan/ (jemalloc off, crash-test
#                      kill points compiled in), for tests
#   tsan:              ThreadSanitizer build in build-tsan/ (jemalloc off, kill
#                      points compiled in), for the concurrency tests; set
#                      TALLY_BUILD_TARGETS="a b" to build only those targets
#   fuzz:              clang + libFuzzer + ASan+UBSan build in build-fuzz/
#                      (jemalloc off); builds only the fuzz targets (tools/fuzz.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"; shift || true
case "$kind" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan)    dir=build-asan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=ON -DTALLY_BUILD_BENCHMARKS=OFF -DTALLY_FAULT_HOOKS=ON) ;;
  tsan)    dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE_THREAD=ON -DTALLY_BUILD_BENCHMARKS=OFF -DTALLY_FAULT_HOOKS=ON) ;;
  fuzz)    dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_FUZZ=ON -DTALLY_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "usage: tools/build.sh [release|asan|tsan|fuzz] [cmake args...]" >&2; exit 2 ;;
esac
[ -n "${CI:-}" ] && args+=(-DTALLY_WERROR=ON)
cmake -S . -B "$dir" -G Ninja "${args[@]}" "$@" >/dev/null
targets=()
for t in ${TALLY_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
[ "$kind" = fuzz ] && targets=(--target tally_fuzzers)
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
