#!/usr/bin/env bash
# S1 (RELIABILITY.md 3.6), default bind, from another host's point of view:
# tallyd with its default configuration (only a free port, a temporary data
# directory and --allow_root added) listens on 127.0.0.1 and ::1 only
# (`ss -Hltnp`, filtered by its pid), and a client in a separate network
# namespace, linked to this one by a veth pair on a private /30 (and a
# /126 of fd00::/8 when the host has IPv6), is refused on tallyd's port at
# the host side's address. A control listener on that address shows
# first that the veth path carries connections, so a refusal means "nothing
# listens there", not "the packets went nowhere".
# Needs root (CAP_NET_ADMIN), `ip` (iproute2), `ss` and python3; without
# them, or where `ip netns add` or the veth pair fails, it exits 77 (ctest
# SKIP), never 0. Every step has a timeout; the namespace and the veth pair
# are removed on exit. ~2 s.
# Usage: default_bind_netns_test.sh <tallyd>
set -uo pipefail
tallyd="$1"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (CAP_NET_ADMIN) for ip netns and veth"
for tool in ip ss python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (tools/install-deps.sh)"
done

# Unique per run: several builds may run this test at once.
ns="tally-s1-$$"
veth_host="ts1h$$"  # interface names: at most 15 bytes
veth_ns="ts1n$$"
# A /30 of 10.0.0.0/8 derived from the pid (the host side is .1, the
# namespace side .2).
net="10.$((200 + ($$ >> 14) % 50)).$((($$ >> 6) & 255))"
base=$((($$ & 63) * 4))
ip4_host="$net.$((base + 1))"
ip4_ns="$net.$((base + 2))"
ip6_host="fd74:616c:6c79:$(printf '%x' $(($$ & 0xffff)))::1"
ip6_ns="fd74:616c:6c79:$(printf '%x' $(($$ & 0xffff)))::2"

work=$(mktemp -d)
pid=""
control=""
cleanup() {
  [ -n "$control" ] && kill "$control" 2>/dev/null && wait "$control" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null         # takes the namespace's veth end along
  ip link del "$veth_host" 2>/dev/null   # and with it the pair; in case
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# 1. tallyd with the defaults: no --bind, no metrics port.
"$tallyd" --allow_root --port=0 --data_dir="$work/data" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do grep -q 'ready port=' "$work/out" && break; sleep 0.05; done
port=$(grep -o 'ready port=[0-9]*' "$work/out" | cut -d= -f2)
[ -n "$port" ] || { cat "$work/err"; fail "tallyd did not start within 10 s"; }
echo "tallyd pid $pid, port $port"

# 2. Its listening sockets: 127.0.0.1:port, and [::1]:port when the host has
# IPv6; nothing else (ss -p names the process: filter by pid).
listening=$(timeout 10 ss -Hltnp | grep "pid=$pid,")
echo "ss -Hltnp (tallyd's sockets):"
echo "$listening"
[ -n "$listening" ] || fail "ss shows no listening socket of tallyd"
addresses=$(awk '{print $4}' <<<"$listening" | sort)
if [ -e /proc/net/if_inet6 ]; then
  expected=$(printf '127.0.0.1:%s\n[::1]:%s\n' "$port" "$port" | sort)
else
  expected="127.0.0.1:$port"
fi
[ "$addresses" = "$expected" ] ||
  fail "tallyd listens on $(echo $addresses), expected $(echo $expected)"

# connect.py HOST PORT: one TCP connect with a 5 s timeout; prints
# connected, refused, timeout or the errno's name.
cat >"$work/connect.py" <<'EOF'
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect((host, port))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
from_host() { timeout 10 python3 "$work/connect.py" "$1" "$2" 2>&1; }
from_ns() { timeout 10 ip netns exec "$ns" python3 "$work/connect.py" "$1" "$2" 2>&1; }

# tallyd answers where it listens (so a refusal below is not a dead server).
r=$(from_host 127.0.0.1 "$port")
[ "$r" = connected ] || fail "connect to 127.0.0.1:$port from the host: $r"

# 3. The namespace and the veth pair.
ip netns add "$ns" 2>"$work/ip.err" || skip "ip netns add failed: $(cat "$work/ip.err")"
ip link add "$veth_host" type veth peer name "$veth_ns" 2>"$work/ip.err" ||
  skip "cannot create a veth pair: $(cat "$work/ip.err")"
ip link set "$veth_ns" netns "$ns" 2>"$work/ip.err" ||
  skip "cannot move the veth end into $ns: $(cat "$work/ip.err")"
ip addr add "$ip4_host/30" dev "$veth_host" &&
  ip link set "$veth_host" up &&
  ip netns exec "$ns" ip addr add "$ip4_ns/30" dev "$veth_ns" &&
  ip netns exec "$ns" ip link set "$veth_ns" up &&
  ip netns exec "$ns" ip link set lo up ||
  skip "cannot configure the veth pair"
ipv6=""
if [ -e /proc/net/if_inet6 ] &&
   ip addr add "$ip6_host/126" dev "$veth_host" nodad 2>/dev/null &&
   ip netns exec "$ns" ip addr add "$ip6_ns/126" dev "$veth_ns" nodad 2>/dev/null; then
  ipv6=1
fi
echo "netns $ns: $ip4_ns/30 <-> host $ip4_host/30${ipv6:+, $ip6_ns/126 <-> host $ip6_host/126}"

# 4. Control: a listener on the host side's addresses is reachable from
# the namespace; otherwise the path proves nothing. (Bound to the veth's
# addresses, not the wildcard, so that nothing is exposed elsewhere.)
python3 - "$work/control.port" "$ip4_host" ${ipv6:+"$ip6_host"} <<'EOF' &
import os, select, socket, sys
ports, socks = [], []
for host in sys.argv[2:]:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(8)
    socks.append(s)
    ports.append(str(s.getsockname()[1]))
open(sys.argv[1] + ".tmp", "w").write(" ".join(ports))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    ready, _, _ = select.select(socks, [], [], 30)
    if not ready:
        break
    for s in ready:
        s.accept()[0].close()
EOF
control=$!
for _ in $(seq 100); do [ -s "$work/control.port" ] && break; sleep 0.05; done
control4=""; control6=""
[ -s "$work/control.port" ] && read -r control4 control6 <"$work/control.port"
[ -n "$control4" ] || fail "the control listener did not start"
r=$(from_ns "$ip4_host" "$control4")
echo "netns -> $ip4_host:$control4 (control listener): $r"
[ "$r" = connected ] || skip "the veth path carries no connection here ($r)"
if [ -n "$ipv6" ]; then
  r=$(from_ns "$ip6_host" "$control6")
  echo "netns -> [$ip6_host]:$control6 (control listener): $r"
  [ "$r" = connected ] || { echo "IPv6 over the veth does not work here ($r): IPv4 only"; ipv6=""; }
fi

# 5. The check: tallyd's port at the host side's address is refused.
r=$(from_ns "$ip4_host" "$port")
echo "netns -> $ip4_host:$port (tallyd): $r"
[ "$r" = refused ] || fail "expected the connection from the namespace to be refused, got: $r"
if [ -n "$ipv6" ]; then
  r=$(from_ns "$ip6_host" "$port")
  echo "netns -> [$ip6_host]:$port (tallyd): $r"
  [ "$r" = refused ] || fail "expected the IPv6 connection from the namespace to be refused, got: $r"
fi
kill -0 "$pid" 2>/dev/null || fail "tallyd died"
echo "S1 default bind over netns/veth: ok"
