#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test.
# Usage: tools/test.sh [release|asan|tsan]   (default release; CI runs all three)
#   asan: every test under ASan+UBSan, with the sanitized tallyd/tally/tally-wal
#         (the tests take the binaries of the build they belong to);
#   tsan: only the tests labelled `concurrency` (ctest -L concurrency), built
#         alone (target tally_concurrency_tests), under ThreadSanitizer.
# Sanitizer reports of every process (including servers the tests start and
# kill) go to files; any report fails the run, and they are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
bash tools/install-deps.sh
case "$kind" in
  release) dir=build ;;
  asan) dir=build-asan ;;
  tsan) dir=build-tsan; export TALLY_BUILD_TARGETS=tally_concurrency_tests ;;
  *) echo "usage: tools/test.sh [release|asan|tsan]" >&2; exit 2 ;;
esac
bash tools/build.sh "$kind"
reports="$(mktemp -d /tmp/tally-sanitizer-reports.XXXXXX)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$reports/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$reports/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1} suppressions=$PWD/tools/tsan.supp log_path=$reports/tsan"
ctest_args=()
if [ "$kind" = tsan ]; then
  ctest_args=(-L concurrency)
  count="$(ctest --test-dir "$dir" -N -L concurrency | sed -n 's/^Total Tests: //p')"
  if [ "${count:-0}" -eq 0 ]; then
    echo "test.sh: no test carries the label 'concurrency' (see cmake/TallyHelpers.cmake)" >&2
    exit 1
  fi
fi
rc=0
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "${ctest_args[@]}" || rc=$?
if compgen -G "$reports/*" >/dev/null; then
  for f in "$reports"/*; do echo "=== $f"; cat "$f"; done
  echo "test.sh: sanitizer reports above ($kind build)" >&2
  rc=1
fi
rm -rf "$reports"
exit "$rc"
