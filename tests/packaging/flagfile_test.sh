#!/usr/bin/env bash
# --flagfile (gflags): a file sets tallyd's port and data_dir; the shipped
# packaging/tallyd.flags parses; a missing file, an unknown flag or a bad
# value in a file stops tallyd at once with a message naming the problem.
# Usage: flagfile_test.sh <tallyd> <packaging/tallyd.flags>
set -euo pipefail
tallyd="$1" shipped="$2"
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tally_test_init flagfile-test

# 1. Everything from the file: port 0 (not the default 7379) and data_dir.
cat >"$tmp/test.flags" <<FLAGS
# a comment
--port=0
--data_dir=$tmp/from-flagfile
--bind=127.0.0.1
FLAGS
tallyd_start "$tallyd" --flagfile="$tmp/test.flags"
[ "$port" != 7379 ] || { echo "--port from the flagfile was not applied"; exit 1; }
[ -e "$tmp/from-flagfile/LOCK" ] || { echo "--data_dir from the flagfile was not applied"; exit 1; }
tallyd_stop

# 2. The shipped conffile, with the flags a test must change after it.
tallyd_start "$tallyd" --flagfile="$shipped" --port=0 --metrics_port=0 --data_dir="$tmp/shipped"
tallyd_stop

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
