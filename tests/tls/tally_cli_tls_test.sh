#!/usr/bin/env bash
# tallyd's --tls_* flags and the `tally` CLI over TLS, end to end:
#   - tallyd with a world-readable key, or a key without a cert, refuses to
#     start and says how to fix it;
#   - tallyd --tls_cert_file/--tls_key_file/--tls_client_ca_file
#     --tls_require_client_cert (mutual TLS) on a port it picks;
#   - tally --tls_ca_file --tls_cert_file --tls_key_file: ADD then QUERY;
#   - tally without a client cert, with the wrong CA, or in plaintext: refused.
# Usage: tally_cli_tls_test.sh TALLYD TALLY
set -euo pipefail
tallyd="$1"; tally="$2"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/tally-cli-tls-XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$here/make_pki.sh" "$work/pki" >"$work/pki.log" 2>&1 || { cat "$work/pki.log"; fail "make_pki"; }
pki="$work/pki"

# Refusals at start.
cp "$pki/server.key" "$work/open.key"; chmod 644 "$work/open.key"
if timeout 30 "$tallyd" --allow_root --unsafe_no_wal --port=0 --tls_cert_file="$pki/server.pem" \
     --tls_key_file="$work/open.key" >"$work/open.out" 2>&1; then
  fail "tallyd started with a world-readable key"
fi
grep -q "chmod 600" "$work/open.out" || { cat "$work/open.out"; fail "no fix named for the open key"; }
if timeout 30 "$tallyd" --allow_root --unsafe_no_wal --port=0 --tls_key_file="$pki/server.key" \
     >"$work/nocert.out" 2>&1; then
  fail "tallyd started with --tls_key_file but no --tls_cert_file"
fi
grep -q -- "--tls_cert_file" "$work/nocert.out" || { cat "$work/nocert.out"; fail "no fix named"; }

# A mutual-TLS tallyd. The output file exists before it starts: a
# background command's redirection happens in the child, so the polling
# below could otherwise read before the file is created.
: >"$work/tallyd.out"
"$tallyd" --allow_root --unsafe_no_wal --port=0 --tls_cert_file="$pki/server.pem" --tls_key_file="$pki/server.key" \
  --tls_client_ca_file="$pki/ca.pem" --tls_require_client_cert --tls_handshake_timeout_ms=5000 \
  >"$work/tallyd.out" 2>"$work/tallyd.err" &
pid=$!
port=""
for _ in $(seq 1 150); do
  port="$(sed -n 's/^tallyd ready port=\([0-9]*\).*/\1/p' "$work/tallyd.out")"
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/tallyd.err"; fail "tallyd exited"; }
  sleep 0.1
done
[ -n "$port" ] || fail "tallyd did not report its port"

cli() { timeout 60 "$tally" -p "$port" -t 5 "$@"; }
mtls=(--tls_ca_file "$pki/ca.pem" --tls_cert_file "$pki/client.pem" --tls_key_file "$pki/client.key")

cli "${mtls[@]}" ADD user:1 AMOUNT 5 >"$work/add.out" 2>&1 || { cat "$work/add.out"; fail "ADD over mTLS"; }
cli "${mtls[@]}" --tls_server_name localhost --json QUERY user:1 WINDOW 1m >"$work/q.out" 2>&1 \
  || { cat "$work/q.out"; fail "QUERY over mTLS"; }
grep -q '"count":1' "$work/q.out" || { cat "$work/q.out"; fail "QUERY did not see the ADD"; }

if cli --tls_ca_file "$pki/ca.pem" PING >"$work/nocert.out" 2>&1; then fail "accepted a client without a cert"; fi
if cli --tls_ca_file "$pki/other_ca.pem" --tls_cert_file "$pki/client.pem" --tls_key_file "$pki/client.key" PING \
     >"$work/badca.out" 2>&1; then fail "accepted a server cert from another CA"; fi
grep -q "certificate verify failed" "$work/badca.out" || { cat "$work/badca.out"; fail "bad CA not named"; }
if cli PING >"$work/plain.out" 2>&1; then fail "plaintext accepted on the TLS port"; fi
echo "tally_cli_tls_test: ok"
