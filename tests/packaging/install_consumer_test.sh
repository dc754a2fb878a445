#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build a consumer program
# outside the tree against it twice, with find_package(tally) and with
# pkg-config, and run both against the installed tallyd, started with the
# installed flagfile (tests/packaging/consumer/).
# Usage: install_consumer_test.sh <build dir> <source dir> <c++ compiler>
set -euo pipefail
build="$(cd "$1" && pwd)" src="$2" cxx="$3"
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tally_test_init install-test
prefix="$tmp/prefix"
started=$(date +%s.%N)

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in bin/tallyd bin/tally bin/tally-bench bin/tally-wal \
         include/tally/client/tally/client.h include/tally/protocol/messages.h \
         lib/cmake/tally/tallyConfig.cmake lib/cmake/tally/tallyConfigVersion.cmake \
         lib/pkgconfig/tally.pc etc/tally/tallyd.flags lib/systemd/system/tallyd.service; do
  [ -e "$prefix/$f" ] || { echo "not installed: $f"; cat "$tmp/install.log"; exit 1; }
done
# The generated FlatBuffers header is private to libtally_protocol.
if [ -n "$(find "$prefix/include" -name '*_generated.h')" ]; then
  echo "a generated FlatBuffers header was installed"; exit 1
fi

# 1. find_package(tally CONFIG REQUIRED), nothing of the source tree visible.
cmake -S "$src/tests/packaging/consumer" -B "$tmp/consumer-cmake" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" \
  || { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/consumer-cmake" >"$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }

# 2. pkg-config --cflags --libs tally.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
flags=$(pkg-config --cflags --libs tally)
echo "pkg-config --cflags --libs tally: $flags"
# shellcheck disable=SC2086  # word splitting of the flags is intended
"$cxx" -std=c++20 -O1 -o "$tmp/consumer-pc" "$src/tests/packaging/consumer/consumer.cc" $flags

# The installed tallyd with the installed flagfile; later flags override it.
tallyd_start "$prefix/bin/tallyd" --flagfile="$prefix/etc/tally/tallyd.flags" --port=0 --metrics_port=0 \
  --data_dir="$tmp/data"

"$tmp/consumer-cmake/consumer" "$port" consumer:cmake 3 3
"$tmp/consumer-pc" "$port" consumer:pkg-config 2 2
# Both wrote to the same server: one more add on the first key is seen.
"$tmp/consumer-pc" "$port" consumer:cmake 1 4

tallyd_stop
echo "install + consumers: ok in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
