# shellcheck shell=bash
# Sourced by the packaging tests that run a tallyd (flagfile_test.sh,
# install_consumer_test.sh): a temporary directory removed at exit, and
# starting, waiting for and stopping one tallyd. Callers run under
# `set -euo pipefail`.
#
#   tally_test_init <name>   $tmp (/tmp/tally-<name>.XXXXXX), an EXIT trap
#                            that stops a running tallyd and removes $tmp,
#                            $root_flag (--allow_root when run as root)
#   tallyd_start <tallyd> <args...>
#                            runs it in the background (stdout, stderr in
#                            $tmp/tallyd.out, $tmp/tallyd.err), waits for its
#                            ready line; sets $pid and $port; exits 1 with
#                            tallyd's stderr if it does not start
#   tallyd_stop              SIGTERM, then waits: a failed exit fails the test

tally_test_init() {
  tmp=$(mktemp -d "/tmp/tally-$1.XXXXXX")
  pid=""
  trap tally_test_cleanup EXIT
  root_flag=()
  if [ "$(id -u)" -eq 0 ]; then root_flag=(--allow_root); fi
}

tally_test_cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}

tallyd_start() {
  local tallyd="$1"
  shift
  "$tallyd" "$@" "${root_flag[@]}" >"$tmp/tallyd.out" 2>"$tmp/tallyd.err" &
  pid=$!
  # Up to 30 s (a loaded 2-core CI machine, sanitizers), less if tallyd exits.
  for _ in $(seq 1 600); do
    grep -q 'ready port=' "$tmp/tallyd.out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  port=$(grep -o 'ready port=[0-9]*' "$tmp/tallyd.out" | cut -d= -f2 || true)
  [ -n "$port" ] || { echo "tallyd did not start: $*"; cat "$tmp/tallyd.err"; exit 1; }
}

tallyd_stop() { kill -TERM "$pid"; wait "$pid"; pid=""; }
