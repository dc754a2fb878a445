#!/usr/bin/env bash
# A/B of two tallyd binaries on W1 (docs/benchmarks.md, "Metrics overhead"):
# alternates A and B, each run against a fresh memory-only tallyd on a port
# it picks, and prints one "label {tally-bench json}" line per run.
# Usage: perf/metrics_ab.sh <tallyd-A> <tallyd-B> <tally-bench> <pairs> [tally-bench args...]
#   e.g. perf/metrics_ab.sh /tmp/before/tallyd build/bin/tallyd build/bin/tally-bench 3
#        (default args: --connections 8 --seconds 5; add --phase query for one phase)
set -euo pipefail
a="$1"; b="$2"; bench="$3"; pairs="$4"; shift 4
args=("$@"); [ ${#args[@]} -eq 0 ] && args=(--connections 8 --seconds 5)
run() {  # run <tallyd> <label>
  local data log pid port
  data=$(mktemp -d); log=$(mktemp)
  "$1" --allow_root --port=0 --threads=2 --unsafe_no_wal --data_dir="$data" >"$log" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 100); do grep -q 'ready port=' "$log" && break; sleep 0.05; done
  port=$(sed -n 's/tallyd ready port=//p' "$log")
  echo "$2 $("$bench" --port "$port" --json "${args[@]}" | tail -1)"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$data" "$log"
}
for _ in $(seq 1 "$pairs"); do run "$a" A; run "$b" B; done
