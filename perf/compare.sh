#!/usr/bin/env bash
# W1 side by side: tally, Redis (bucket keys a2/a3, pipelined and Lua) and
# PostgreSQL (detail table), in one run on this machine (PERFORMANCE.md).
#
# Installs the peers from Debian (and tally's build dependencies), builds
# tally in Release, starts tallyd, redis-server and a throwaway PostgreSQL
# cluster on loopback ports it picks, runs tally-peer-bench against each with
# the same W1 history, T0, phases and connection counts, measures the
# physical floor (tally-floor-bench), checks the systems' answers against each
# other, prints the side-by-side table with ratios, writes results.json and a
# chart, and stops everything it started.
#
# Usage: perf/compare.sh [--quick] [--out DIR] [--systems "tally redis-a2 ..."]
#                        [--plan PLAN] [--seconds S] [--keys K] [--history H]
#                        [--no-pin] [--chart FILE.svg] [--bin DIR]
#   --quick   a small smoke run (10 k keys, 20 k events, 0.5 s phases)
#   --bin     use the binaries in DIR; skip installing and building
#   --w2      workload W2: 30-day history, w30d in every decision (Redis a2,
#             which keeps nothing past 24 h, is left out)
#   --no-pin  do not pin the servers to CPU 0 (by default each server gets
#             one core, as Redis has; the load generator is never pinned)
# Systems: tally is tallyd with its defaults (fsync durability), tally-poll
# the same with TALLY_POLL_ARGS (default --busy_poll_us=200: I/O threads poll
# rather than sleep while requests flow).
# Environment: TALLYD_ARGS adds flags to both tallyds (e.g. --durability=os).
# Run as root (installs packages; PostgreSQL runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out=""; quick=0; pin=1; chart=""; bin=""; w2=0
systems="tally tally-poll redis-a2 redis-a2-lua redis-a3 redis-a3-lua postgres"
plan="ingest:8:1,ingest:8:16,ingest:64:16,query:1,query:8,query:64,mixed:8"
seconds=5; warmup=1; keys=1000000; history=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    --systems) systems="$2"; shift ;;
    --plan) plan="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --keys) keys="$2"; shift ;;
    --history) history="$2"; shift ;;
    --no-pin) pin=0 ;;
    --chart) chart="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    --w2) w2=1 ;;
    -h|--help) sed -n 2,26p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$w2" = 1 ]; then systems=$(echo "$systems" | tr ' ' '\n' | grep -v '^redis-a2' | xargs); fi
if [ "$quick" = 1 ]; then
  seconds=0.5; warmup=0.2; keys=10000; history=20000
  plan="ingest:2:1,ingest:2:16,query:2,mixed:2"
fi
[ -n "$out" ] || out=$(mktemp -d /tmp/tally-compare.XXXXXX)
mkdir -p "$out"
[ -n "$chart" ] || chart="$out/compare.svg"

# --- install and build -------------------------------------------------------
# tools/install-deps.sh installs the peers too (redis-server, postgresql,
# gnuplot-nox): the comparison's smoke test runs with every test.
if [ -z "$bin" ]; then
  bash tools/install-deps.sh >"$out/install.log"
  bash tools/build.sh release >"$out/build.log"
  bin="$root/build/bin"
fi

# --- start the servers -------------------------------------------------------
pids=()
work=$(mktemp -d /tmp/tally-compare-run.XXXXXX)
chmod 755 "$work"  # the postgres user must reach its cluster under it
cleanup() {
  cp "$work/pg/postgres.log" "$out/postgres.log" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server_cpu=()
if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then server_cpu=(taskset -c 0); fi

policy=()
if [ "$w2" = 1 ]; then
  # tallyd's default policy refuses events more than 48 h late; W2 back-fills
  # 30 days, so this run's policy accepts them (same tiers as the default).
  echo 'default tiers="1s x 2h, 1m x 48h, 1h x 35d, 1d x 400d" distinct=on lateness=31d skew=5s' >"$work/w2.policy"
  policy=(--policy_file "$work/w2.policy")
fi
start_tallyd() {  # name, extra flags...; sets started_port
  local name="$1"; shift
  "${server_cpu[@]}" "$bin/tallyd" --allow_root --port 0 --data_dir "$work/$name" "${policy[@]}" \
    ${TALLYD_ARGS:-} "$@" >"$work/$name.out" 2>"$out/$name.log" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q 'ready port=' "$work/$name.out" && break; sleep 0.1; done
  started_port=$(grep -o 'port=[0-9]*' "$work/$name.out" | cut -d= -f2)
  [ -n "$started_port" ] || { echo "compare: $name did not start; see $out/$name.log" >&2; exit 1; }
}
start_tallyd tally; tally_port=$started_port
# shellcheck disable=SC2086
start_tallyd tally-poll ${TALLY_POLL_ARGS:---busy_poll_us=200}; tally_poll_port=$started_port

redis_port=$(free_port)
"${server_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
  --appendonly no --protected-mode yes --daemonize no --dir "$work" \
  >"$out/redis.log" 2>&1 &
pids+=($!)

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_port=$(free_port)
mkdir -p "$work/pg"
chown postgres "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >"$out/pg-initdb.log"
# Durability off, as for Redis: the peer only gets faster that way.
"${server_cpu[@]}" runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/postgres.log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB -c max_connections=200" \
  start >/dev/null
pg="host=$work/pg port=$pg_port dbname=postgres user=postgres"

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare: nothing listens on port $1" >&2; return 1
}
wait_port "$redis_port"

# --- run W1 against each system ------------------------------------------------
t0=$(( $(date +%s) * 1000 ))
results="$out/runs.jsonl"
: >"$results"
for system in $systems; do
  echo "compare: $([ "$w2" = 1 ] && echo W2 || echo W1) against $system"
  args=(--t0 "$t0" --keys "$keys" --history "$history"
        --seconds "$seconds" --warmup "$warmup" --plan "$plan" --json)
  [ "$w2" = 1 ] && args+=(--w2)
  case "$system" in
    tally) args+=(--system tally --port "$tally_port") ;;
    tally-poll) args+=(--system tally --label tally-poll --port "$tally_poll_port") ;;
    redis-*) args+=(--system "$system" --port "$redis_port") ;;
    postgres) args+=(--system postgres --pg "$pg") ;;
  esac
  set +e
  "$bin/tally-peer-bench" "${args[@]}" >"$out/$system.txt" 2>&1
  rc=$?
  set -e
  tail -1 "$out/$system.txt" | grep '^{' >>"$results" || {
    echo "compare: $system produced no result (exit $rc); see $out/$system.txt" >&2; exit 1; }
done
echo "compare: the physical floor"
floor_seconds=3; [ "$quick" = 1 ] && floor_seconds=0.5
"$bin/tally-floor-bench" --seconds "$floor_seconds" --json >"$out/floor.txt" 2>&1
tail -1 "$out/floor.txt" >"$out/floor.json"

# --- the side-by-side table, cross-checks, JSON and chart ------------------------
python3 perf/compare_report.py --runs "$results" --floor "$out/floor.json" \
  --json "$out/results.json" --chart "$chart" \
  --machine "$(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)" \
  --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --pinned "$pin"
echo "compare: results in $out"
