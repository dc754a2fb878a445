#!/usr/bin/env bash
# docs/examples/decision.cc against a real tallyd (a decision is printed), and
# against a port nothing listens on (the call degrades within its deadline).
# Usage: decision_example_test.sh <tallyd> <decision_example>
set -euo pipefail
tallyd="$1"; example="$2"
log=$(mktemp); data=$(mktemp -d)
"$tallyd" --allow_root --port=0 --threads=1 --data_dir="$data" >"$log" 2>/dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$log" "$data"' EXIT
for _ in $(seq 1 100); do grep -q 'ready port=' "$log" && break; sleep 0.05; done
port=$(grep -o 'port=[0-9]*' "$log" | cut -d= -f2)

out=$(timeout 10 "$example" 127.0.0.1 "$port" 500)
echo "$out"
echo "$out" | grep -q 'payments: 1 in 1 min' || { echo "expected one payment"; exit 1; }
echo "$out" | grep -q 'decision: approve'
out=$(timeout 10 "$example" 127.0.0.1 "$port" 500)
echo "$out" | grep -q 'payments: 2 in 1 min'

kill -TERM $pid; wait $pid; trap - EXIT; rm -f "$log"
# The server is gone: the call must degrade, not hang.
out=$(timeout 10 "$example" 127.0.0.1 "$port")
echo "$out"
echo "$out" | grep -q 'degraded' || { echo "expected a degraded result"; exit 1; }
echo "decision example: ok"
