#!/usr/bin/env bash
# Installs every Debian 12 package tally needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt-get. Run as root.
#
# Note: name libboost1.81-dev explicitly. libboost-dev pulls 1.74, which
# conflicts with 1.81 and lacks the Asio features tally uses.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev
  flatbuffers-compiler libflatbuffers-dev
  libjemalloc-dev libxxhash-dev
  libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  libedit-dev tmux
  iproute2  # ip netns, veth and ss: tests/default_bind_netns_test.sh (S1)
  faketime  # D8: replay under a shifted clock (tests/crash)
  python3-crc32c  # independent CRC-32C oracle for storage/crc32c_test
  python3-prometheus-client  # parses /metrics in tests/metrics_test.py
  libhiredis-dev libpq-dev  # perf/: the Redis and PostgreSQL peers' drivers
  redis-server postgresql gnuplot-nox  # perf/compare.sh: the peers, the chart
  clang-format clang-tidy
  clang libclang-rt-14-dev  # tools/fuzz.sh: libFuzzer + ASan/UBSan runtimes
  libssl-dev openssl  # TLS (server, client library), token digests, test PKI
  help2man groff-base bsdextrautils  # man pages (packaging/man/), rendered by tests
  dpkg-dev lintian systemd  # cpack -G DEB's shlibdeps, the .deb and unit checks
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
