#!/usr/bin/env bash
# Runs tally's libFuzzer targets (RELIABILITY.md P1, L4, C5, C7; docs/fuzzing.md).
#
#   tools/fuzz.sh [seconds_per_target] [target ...]
#
# Builds build-fuzz/ (tools/build.sh fuzz: clang, ASan+UBSan, libFuzzer),
# generates the seed corpora and the frame dictionary (fuzz_seed_gen), then
# runs every target (or the ones named: request_frames response_decode
# wal_reader snapshot_reader) for seconds_per_target (default 120) with
# -rss_limit_mb=2048 -timeout=5. Two targets run at a time, one process each
# (2 cores). The corpus grows in build-fuzz/fuzz-corpus/<target>/ across
# runs; logs and crash reproducers go to build-fuzz/fuzz-out/.
#
# Prints execs/s, coverage (cov, ft) and corpus size per target. Exits
# non-zero on any crash, leak, OOM or timeout, naming the reproducer; replay
# one with build-fuzz/bin/fuzz_<target> <file>, then add it to
# fuzz/regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"; shift || true
all=(request_frames response_decode wal_reader snapshot_reader)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
parallel="${TALLY_FUZZ_PARALLEL:-2}"

# TALLY_FUZZ_CMAKE_ARGS: extra cmake arguments (e.g. a compiler launcher).
# shellcheck disable=SC2086
bash tools/build.sh fuzz ${TALLY_FUZZ_CMAKE_ARGS:-}
bin=build-fuzz/bin
out=build-fuzz/fuzz-out
corpus_root=build-fuzz/fuzz-corpus
rm -rf "$out"
mkdir -p "$out/seeds" "$out/artifacts" "$corpus_root"
"$bin/fuzz_seed_gen" "$out/seeds"

max_len() {  # header + the 1 MiB frame body + 16 for frames; 1 MiB for files
  case "$1" in
    request_frames|response_decode) echo $((24 + 1048576 + 16)) ;;
    *) echo 1048576 ;;
  esac
}

run_target() {
  local t="$1" corpus="$corpus_root/$1" dict=()
  mkdir -p "$corpus"
  case "$t" in request_frames|response_decode) dict=(-dict="$out/seeds/frames.dict") ;; esac
  local extra=()
  [ -d "fuzz/seeds/$t" ] && extra+=("fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
  # The first corpus directory gets the new inputs; the others only seed it.
  "$bin/fuzz_$t" "$corpus" "$out/seeds/$t" "${extra[@]+"${extra[@]}"}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 \
    -max_len="$(max_len "$t")" "${dict[@]+"${dict[@]}"}" \
    -artifact_prefix="$out/artifacts/$t-" -print_final_stats=1 \
    -detect_leaks=1 >"$out/$t.log" 2>&1
}

summarize() {  # prints one line per target; returns 1 if it failed
  local t="$1" rc="$2" log="$out/$1.log"
  local last execs cov ft files
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo '?')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo '?')
  files=$(find "$corpus_root/$t" -type f | wc -l)
  printf '%-16s rc=%-3s execs/s=%-7s cov=%-6s ft=%-6s corpus=%s files\n' \
    "$t" "$rc" "$execs" "$cov" "$ft" "$files"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (log: $out/$t.log)"
    grep -E 'ERROR: |SUMMARY: |fuzz finding|Test unit written to|artifact_prefix' "$log" | head -20 || true
    return 1
  fi
}

echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, ${parallel} at a time"
declare -A rcs
pids=()
names=()
for t in "${targets[@]}"; do
  run_target "$t" & pids+=($!); names+=("$t")
  if [ ${#pids[@]} -ge "$parallel" ]; then
    wait "${pids[0]}" && rcs[${names[0]}]=0 || rcs[${names[0]}]=$?
    pids=("${pids[@]:1}"); names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" && rcs[${names[$i]}]=0 || rcs[${names[$i]}]=$?
done

failed=0
for t in "${targets[@]}"; do summarize "$t" "${rcs[$t]}" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "fuzz: FAILED; reproducers in $out/artifacts/ (replay: $bin/fuzz_<target> <file>)"
  exit 1
fi
echo "fuzz: ok (0 crashes, leaks, OOMs, timeouts)"
