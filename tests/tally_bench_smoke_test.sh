#!/usr/bin/env bash
# Runs tally-bench on a tiny W1 in both modes and requires selfcheck "ok":
#   embedded, and network against a real tallyd on a port it picks.
# Usage: tally_bench_smoke_test.sh <tallyd> <tally-bench>
set -euo pipefail
tallyd="$1"; bench="$2"
args=(--keys 2000 --history 5000 --seconds 0.3 --warmup 0.1 --connections 2 --json)

out=$("$bench" --embedded "${args[@]}" | tail -1)
echo "embedded: $out" | cut -c1-200
echo "$out" | grep -q '"selfcheck":"ok"' || { echo "embedded selfcheck failed"; exit 1; }

log=$(mktemp); err=$(mktemp); data=$(mktemp -d)
"$tallyd" --allow_root --port=0 --threads=2 --data_dir="$data" >"$log" 2>"$err" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$log" "$err" "$data"' EXIT
for _ in $(seq 1 100); do grep -q 'ready port=' "$log" && break; sleep 0.05; done
port=$(grep -o 'port=[0-9]*' "$log" | cut -d= -f2)
[ -n "$port" ] || { echo "tallyd did not start"; cat "$err"; exit 1; }

out=$(timeout 60 "$bench" --port "$port" "${args[@]}" --batch 16 | tail -1)
echo "network: $out" | cut -c1-200
echo "$out" | grep -q '"selfcheck":"ok"' || { echo "network selfcheck failed"; exit 1; }

kill -TERM $pid
wait $pid   # a clean stop exits 0
trap - EXIT
rm -f "$log" "$err"
echo "tally-bench smoke: ok"
