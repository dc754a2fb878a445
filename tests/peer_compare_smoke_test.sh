#!/usr/bin/env bash
# perf/compare.sh --quick end to end: tallyd, redis-server and a throwaway
# PostgreSQL cluster on ports it picks, a tiny W1 against all seven systems (two tallyd configurations),
# the cross-check of their answers, the report, the JSON and the chart, and
# everything stopped afterwards. Needs root (PostgreSQL runs as the postgres
# user) and the peers that tools/install-deps.sh installs; skipped otherwise.
# Usage: peer_compare_smoke_test.sh <build bin dir>
set -euo pipefail
bin="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" -ne 0 ] || ! command -v redis-server >/dev/null ||
   ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v gnuplot >/dev/null; then
  echo "skipped: needs root, redis-server, PostgreSQL and gnuplot"; exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
timeout 600 bash "$here/perf/compare.sh" --quick --bin "$bin" --out "$out" | tee "$out/stdout"
grep -q 'cross-check of 12 probes across systems: agree' "$out/stdout"
for s in tally tally-poll redis-a2 redis-a2-lua redis-a3 redis-a3-lua postgres; do
  grep -q "$s ok" "$out/stdout" || { echo "no ok selfcheck for $s"; exit 1; }
done
python3 - "$out/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r["runs"]) == {"tally", "tally-poll", "redis-a2", "redis-a2-lua", "redis-a3", "redis-a3-lua", "postgres"}, r["runs"].keys()
for name, run in r["runs"].items():
    q = [p for p in run["phases"] if p["name"] == "query"]
    assert q and q[0]["decisions"] > 0, name
    assert run["bytes_per_key"] > 0, name
assert r["floor"]["rtt_unpinned_p50_us"] > 0
assert r["targets"], "no targets evaluated"
PY
grep -q '<svg' "$out/compare.svg"
# Nothing left running from this run.
sleep 0.5
if pgrep -f "tally-compare-run" >/dev/null; then echo "a server was left running"; exit 1; fi
echo "peer comparison smoke: ok"
