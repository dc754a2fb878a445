#!/usr/bin/env bash
# The installed systemd unit (packaging/tallyd.service.in): systemd-analyze
# verify finds nothing to say about it, and it carries the settings the
# runbook promises. Installs into a temporary prefix so ExecStart names a
# real binary (verify checks it).
# Usage: systemd_unit_test.sh <build dir> <tallyd>
set -euo pipefail
build="$(cd "$1" && pwd)" tallyd="$2"
tmp=$(mktemp -d /tmp/tally-unit-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
unit="$tmp/prefix/lib/systemd/system/tallyd.service"
fail=0
for want in "Type=notify" "ExecStart=$tmp/prefix/bin/tallyd --flagfile=$tmp/prefix/etc/tally/tallyd.flags" \
            'ExecReload=/bin/kill -HUP $MAINPID' "Restart=on-failure" "StartLimitBurst=" \
            "StartLimitIntervalSec=" "User=tally" "StateDirectory=tally" "LimitNOFILE=" \
            "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
            "PrivateDevices=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
            "CapabilityBoundingSet=" "SystemCallFilter=@system-service" "MemoryDenyWriteExecute=yes"; do
  grep -qF -- "$want" "$unit" || { echo "tallyd.service: no $want"; fail=1; }
done
# (flagfile_test starts tallyd with the shipped flagfile.)
[ -x "$tallyd" ] || { echo "no tallyd at $tallyd"; fail=1; }
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP (part): systemd-analyze not installed; the unit was not verified"
  [ $fail -eq 0 ] && exit 77
  exit $fail
fi
# Documentation=man:tallyd(1): verify runs man, so point it at the prefix.
out=$(MANPATH="$tmp/prefix/share/man" systemd-analyze verify "$unit" 2>&1) || fail=1
if [ -n "$out" ]; then echo "systemd-analyze verify:"; echo "$out"; fail=1; fi
[ $fail -eq 0 ] && echo "systemd unit: ok"
exit $fail
