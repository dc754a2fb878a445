#!/usr/bin/env bash
# --flagfile (gflags): a file sets tallyd's port and data_dir; the shipped
# packaging/tallyd.flags parses; a missing file, an unknown flag or a bad
# value in a file stops tallyd at once with a message naming the problem.
# Usage: flagfile_test.sh <tallyd> <packaging/tallyd.flags>
set -euo pipefail
tallyd="$1" shipped="$2"
tmp=$(mktemp -d /tmp/tally-flagfile-test.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
root_flag=()
[ "$(id -u)" -eq 0 ] && root_flag=(--allow_root)

start() {  # start <args...>: runs tallyd, waits for its ready line, sets $port
  "$tallyd" "$@" "${root_flag[@]}" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  # Up to 30 s (a loaded 2-core CI machine, sanitizers), less if tallyd exits.
  for _ in $(seq 1 600); do
    grep -q 'ready port=' "$tmp/out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  port=$(grep -o 'ready port=[0-9]*' "$tmp/out" | cut -d= -f2 || true)
  [ -n "$port" ] || { echo "tallyd did not start: $*"; cat "$tmp/err"; exit 1; }
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=""; }

# 1. Everything from the file: port 0 (not the default 7379) and data_dir.
cat >"$tmp/test.flags" <<FLAGS
# a comment
--port=0
--data_dir=$tmp/from-flagfile
--bind=127.0.0.1
FLAGS
start --flagfile="$tmp/test.flags"
[ "$port" != 7379 ] || { echo "--port from the flagfile was not applied"; exit 1; }
[ -e "$tmp/from-flagfile/LOCK" ] || { echo "--data_dir from the flagfile was not applied"; exit 1; }
stop

# 2. The shipped conffile, with the flags a test must change after it.
start --flagfile="$shipped" --port=0 --metrics_port=0 --data_dir="$tmp/shipped"
stop

# 3. A missing flagfile: exit non-zero, naming the file.
rc=0; timeout 10 "$tallyd" --flagfile="$tmp/nope.flags" "${root_flag[@]}" >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -ne 0 ] || { echo "a missing flagfile was accepted"; exit 1; }
grep -q "nope.flags" "$tmp/err" || { echo "no message names the missing flagfile:"; cat "$tmp/err"; exit 1; }

# 4. An unknown flag in a flagfile (gflags itself ignores it; tallyd
# refuses, exit 2, naming file and line). timeout: a tallyd that accepted
# it would serve until killed.
printf -- '--port=0\n--data_dir=%s\n--no_such_flag=1\n' "$tmp/typo" >"$tmp/bad.flags"
rc=0; timeout 10 "$tallyd" --flagfile="$tmp/bad.flags" "${root_flag[@]}" >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -eq 2 ] || { echo "an unknown flag in a flagfile: exit $rc, want 2"; cat "$tmp/err"; exit 1; }
grep -q "bad.flags:3: unknown flag --no_such_flag" "$tmp/err" \
  || { echo "no message names the file, line and flag:"; cat "$tmp/err"; exit 1; }

# 5. A bad value in a flagfile: exit non-zero, naming the flag.
printf -- '--port=seventy\n' >"$tmp/badvalue.flags"
rc=0; timeout 10 "$tallyd" --flagfile="$tmp/badvalue.flags" "${root_flag[@]}" >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -ne 0 ] || { echo "a bad value in a flagfile was accepted"; exit 1; }
grep -q "port" "$tmp/err" || { echo "no message names the bad flag:"; cat "$tmp/err"; exit 1; }
echo "flagfile: ok"
