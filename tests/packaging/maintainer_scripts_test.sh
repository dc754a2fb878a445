#!/usr/bin/env bash
# The .deb's maintainer scripts (packaging/debian/) run with every command
# they call replaced by a stub that logs its arguments: what postinst,
# prerm and postrm would do to a system, without doing it (no root, no
# dpkg, no systemd needed). The stubs shadow the commands through PATH, so
# the scripts must call them by name (as Debian's do).
# Usage: maintainer_scripts_test.sh <packaging/debian>
set -euo pipefail
scripts="$(cd "$1" && pwd)"
tmp=$(mktemp -d /tmp/tally-maint-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
for cmd in adduser install rm deb-systemd-helper deb-systemd-invoke systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$cmd" "$tmp" >"$tmp/bin/$cmd"
  chmod +x "$tmp/bin/$cmd"
done
# getent: the user exists only when $TALLY_USER_EXISTS is set.
printf '#!/bin/sh\n[ -n "$TALLY_USER_EXISTS" ] && echo "tally:x:999:999::/var/lib/tally:/usr/sbin/nologin"\n[ -n "$TALLY_USER_EXISTS" ]\n' >"$tmp/bin/getent"
chmod +x "$tmp/bin/getent"
run() {  # run <script> <args...>: the calls it made, one per line
  : >"$tmp/calls"
  PATH="$tmp/bin:/usr/bin:/bin" sh -e "$scripts/$1" "${@:2}"
  cat "$tmp/calls"
}
fail=0
expect() {  # expect <what> <calls> <fixed string>
  grep -qF -- "$3" <<<"$2" || { echo "$1: no call '$3' in:"; printf '%s\n' "$2"; fail=1; }
}
refuse() {
  if grep -qF -- "$3" <<<"$2"; then echo "$1: unexpected call '$3'"; fail=1; fi
}

if [ -d /var/lib/tally ]; then
  echo "SKIP: /var/lib/tally exists here; postinst's first-install branch cannot be seen"
  exit 77
fi
calls=$(TALLY_USER_EXISTS= run postinst configure)
expect "postinst configure (first install)" "$calls" "adduser --system --group --quiet --home /var/lib/tally --no-create-home"
expect "postinst configure (first install)" "$calls" "install -d -o tally -g tally -m 0700 /var/lib/tally"
expect "postinst configure (first install)" "$calls" "deb-systemd-helper unmask tallyd.service"

calls=$(TALLY_USER_EXISTS=1 run postinst configure 0.1.0)
refuse "postinst configure (upgrade, user exists)" "$calls" "adduser"

calls=$(run prerm upgrade)
refuse "prerm upgrade" "$calls" "rm "
calls=$(run postrm remove)
refuse "postrm remove (keeps the data)" "$calls" "rm -rf /var/lib/tally"
calls=$(run postrm purge)
expect "postrm purge" "$calls" "rm -rf /var/lib/tally"
expect "postrm purge" "$calls" "deb-systemd-helper purge tallyd.service"
refuse "postrm purge (keeps the system user)" "$calls" "deluser"
[ $fail -eq 0 ] && echo "maintainer scripts: ok"
exit $fail
