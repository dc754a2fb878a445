#!/usr/bin/env bash
# cpack -G DEB from the build, then the package as dpkg sees it: files,
# conffiles, maintainer scripts, Depends from dpkg-shlibdeps, the unit's
# paths; lintian's verdict when it is installed (errors fail the test).
# Skipped (77) without dpkg-deb. Prints the .deb's size.
# Usage: deb_package_test.sh <build dir>
set -euo pipefail
build="$(cd "$1" && pwd)"
command -v dpkg-deb >/dev/null || { echo "SKIP: dpkg-deb not installed"; exit 77; }
command -v dpkg-shlibdeps >/dev/null || { echo "SKIP: dpkg-shlibdeps (dpkg-dev) not installed"; exit 77; }
tmp=$(mktemp -d /tmp/tally-deb-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
started=$(date +%s.%N)
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1) \
  || { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/out/*.deb)
echo "built $(basename "$deb"): $(stat -c %s "$deb") bytes in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
fail=0
info=$(dpkg-deb -I "$deb")
contents=$(dpkg-deb -c "$deb" | awk '{ print $1, $2, $NF }')

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = tally ] || { echo "Package: $(field Package)"; fail=1; }
depends=$(field Depends)
echo "Depends: $depends"
for dep in adduser libc6 libstdc++6 libgflags2.2 libgoogle-glog0v6 libssl3 libedit2; do
  grep -q "\b$dep\b" <<<"$depends" || { echo "Depends lacks $dep"; fail=1; }
done
for f in ./usr/bin/tallyd ./usr/bin/tally ./usr/bin/tally-bench ./usr/bin/tally-wal \
         ./lib/systemd/system/tallyd.service ./etc/tally/tallyd.flags \
         ./usr/share/man/man1/tallyd.1.gz ./usr/share/man/man1/tally.1.gz \
         ./usr/share/man/man1/tally-bench.1.gz ./usr/share/man/man1/tally-wal.1.gz \
         ./usr/include/tally/client/tally/client.h ./usr/lib/pkgconfig/tally.pc \
         ./usr/lib/cmake/tally/tallyConfig.cmake ./usr/lib/libtally_client.a; do
  grep -q " $f\$" <<<"$contents" || { echo "not in the package: $f"; fail=1; }
done
# Nothing of a build or temporary tree leaks in, and no file is owned by
# a build user.
leaks=$(grep -E '/tmp/|/work/|build/' <<<"$contents" || true)
if [ -n "$leaks" ]; then echo "paths from the build tree:"; echo "$leaks"; fail=1; fi
owners=$(awk '{ print $2 }' <<<"$contents" | sort -u)
[ "$owners" = root/root ] || { echo "files not owned by root: $owners"; fail=1; }
mkdir "$tmp/control" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"
dpkg-deb -x "$deb" "$tmp/root"
grep -qx /etc/tally/tallyd.flags "$tmp/control/conffiles" || { echo "tallyd.flags is not a conffile"; fail=1; }
for script in postinst prerm postrm; do
  [ -x "$tmp/control/$script" ] || { echo "no executable $script"; fail=1; continue; }
  sh -n "$tmp/control/$script" || { echo "$script: syntax error"; fail=1; }
done
grep -q 'adduser --system --group' "$tmp/control/postinst" || { echo "postinst creates no system user"; fail=1; }
grep -q 'install -d -o tally -g tally -m 0700 /var/lib/tally' "$tmp/control/postinst" || { echo "postinst makes no /var/lib/tally 0700"; fail=1; }
grep -q 'purge' "$tmp/control/postrm" || { echo "postrm has no purge"; fail=1; }
grep -qx 'ExecStart=/usr/bin/tallyd --flagfile=/etc/tally/tallyd.flags' "$tmp/root/lib/systemd/system/tallyd.service" \
  || { echo "the packaged unit does not start /usr/bin/tallyd with /etc/tally/tallyd.flags"; fail=1; }
grep -q '^prefix=/usr$' "$tmp/root/usr/lib/pkgconfig/tally.pc" || { echo "tally.pc: prefix is not /usr"; fail=1; }

if command -v lintian >/dev/null; then
  # Errors we accept, with the reason (docs/operations.md "Installing"):
  #   no-copyright-file: the project has no licence text yet;
  #   no-changelog: no release history yet (a native 0.x package);
  #   bogus-mail-host: no project address yet (-DTALLY_DEB_MAINTAINER=).
  lintian --tag-display-limit 0 "$deb" >"$tmp/lintian.log" 2>&1 || true
  grep -v '^running with root privileges' "$tmp/lintian.log" || true
  errors=$(grep '^E: ' "$tmp/lintian.log" | grep -vE ' (no-copyright-file|no-changelog|bogus-mail-host)( |$)' || true)
  if [ -n "$errors" ]; then echo "lintian errors:"; echo "$errors"; fail=1; fi
else
  echo "lintian not installed: not run"
fi
[ $fail -eq 0 ] && echo "deb: ok"
exit $fail
