#!/usr/bin/env bash
# Renders every man page the build made (packaging/CMakeLists.txt) with
# groff's warnings on: any warning fails, and so does a page that lost a
# hand-written section or its options (help2man output changed shape).
# Usage: man_pages_test.sh <build/man>
set -euo pipefail
dir="$1"
command -v groff >/dev/null || { echo "SKIP: groff not installed"; exit 77; }
[ -d "$dir" ] || { echo "SKIP: no man pages built (help2man missing at configure time)"; exit 77; }
fail=0
for program in tallyd tally tally-bench tally-wal; do
  page="$dir/$program.1"
  [ -s "$page" ] || { echo "$program: no man page $page"; fail=1; continue; }
  # Render as man(1) would, at a fixed width; -ww: every warning.
  warnings=$(groff -man -Tutf8 -ww -rLL=80n -z "$page" 2>&1 || true)
  if [ -n "$warnings" ]; then echo "$program: groff warnings:"; echo "$warnings"; fail=1; fi
  text=$(groff -man -Tutf8 -rLL=80n "$page" 2>/dev/null | col -bx)
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS "SEE ALSO"; do
    grep -q "^$section" <<<"$text" || { echo "$program: no $section section"; fail=1; }
  done
  grep -q -- "--version" <<<"$text" || { echo "$program: --version not listed"; fail=1; }
  zcat "$page.gz" | cmp -s - "$page" || { echo "$program: $page.gz differs from $page"; fail=1; }
  # help2man ran build/bin/PROGRAM: no build path may reach the page.
  ! grep -qF "$(cd "$dir/.." && pwd)" "$page" || { echo "$program: the build path is in the page"; fail=1; }
done
# tallyd's page: the flags (from --helpon=flags) and the hand-written parts.
text=$(groff -man -Tutf8 -rLL=80n "$dir/tallyd.1" 2>/dev/null | col -bx)
for want in "--data_dir" "--token_file" "SIGNALS" "SIGHUP" "FILES" "/etc/tally/tallyd.flags" "EXIT STATUS"; do
  grep -q -- "$want" <<<"$text" || { echo "tallyd.1: missing $want"; fail=1; }
done
[ $fail -eq 0 ] && echo "man pages: ok"
exit $fail
