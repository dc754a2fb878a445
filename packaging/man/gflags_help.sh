#!/usr/bin/env bash
# help2man's view of a gflags program ($TALLY_GFLAGS_PROGRAM): --version as
# is; --help is `--helpon=flags` (tallyd's own flags, from server/flags.cc,
# without glog's and gflags' internals and build paths), reshaped into the
# "--option / indented description" form help2man turns into .TP entries.
set -euo pipefail
program="${TALLY_GFLAGS_PROGRAM:?set TALLY_GFLAGS_PROGRAM}"
case "${1:-}" in
  --version) exec "$program" --version ;;
  --help) ;;
  *) echo "usage: TALLY_GFLAGS_PROGRAM=prog $0 --help|--version" >&2; exit 2 ;;
esac
# gflags exits 1 after --helpon; the text (stdout) is what matters. stderr
# stays out of the page (a sanitizer build may print there).
{ "$program" --helpon=flags || true; } | awk '
  function flush() { if (opt != "") { print "  " opt; print "        " desc; opt = "" } }
  NR == 1 { next }  # "tallyd: <usage>": the .h2m has NAME and DESCRIPTION
  /^  Flags from / && !started { flush(); print "Options:"; started = 1; next }
  /^  Flags from / { flush(); next }
  /^    -[a-z]/ {
    flush()
    opt = "-" $1
    desc = substr($0, index($0, $1) + length($1) + 1)
    next
  }
  /^      / && opt != "" { sub(/^ +/, ""); desc = desc " " $0; next }
  { flush(); print }
  END { flush() }'
