#!/usr/bin/env bash
# Builds one man page: help2man from the program's --help/--version plus
# the hand-written NAME.h2m, then a gzip -9n copy (Debian installs man pages
# compressed, reproducibly: -n drops the time stamp).
# Usage: render_man.sh HELP2MAN PROGRAM INCLUDE.h2m OUT.1 [gflags]
set -euo pipefail
help2man="$1" program="$2" include="$3" out="$4" kind="${5:-}"
here="$(cd "$(dirname "$0")" && pwd)"
args=(--no-info --section=1 --include="$include" --output="$out")
if [ "$kind" = gflags ]; then
  TALLY_GFLAGS_PROGRAM="$program" "$help2man" "${args[@]}" "$here/gflags_help.sh"
else
  "$help2man" "${args[@]}" "$program"
fi
gzip -9n -c "$out" > "$out.gz"
