#!/usr/bin/env bash
# Generates a throwaway test PKI into DIR with the openssl CLI (EC P-256:
# fast). Nothing here is ever committed: tls_test runs it at test time.
#   ca.pem            the test CA           other_ca.pem    an unrelated CA
#   server.{pem,key}  CN/SAN localhost, 127.0.0.1, ::1, signed by ca
#   wrong_host.*      SAN wrong.example only, signed by ca
#   expired.*         SAN localhost, 127.0.0.1, already expired, signed by ca
#   client.*          a client certificate (clientAuth), signed by ca
#   other_client.*    a client certificate signed by other_ca
# Usage: make_pki.sh DIR
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() {  # name
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=tally test $1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_leaf() {  # name ca days extensions
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
  printf '%s\n' "basicConstraints=CA:FALSE" "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days "$3" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

make_ca ca
make_ca other_ca
server_san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
make_leaf server ca 30 "$server_san
extendedKeyUsage=serverAuth"
make_leaf wrong_host ca 30 "subjectAltName=DNS:wrong.example
extendedKeyUsage=serverAuth"
# -days -1: notAfter is a day before notBefore (now), so already expired.
make_leaf expired ca -1 "$server_san
extendedKeyUsage=serverAuth"
make_leaf client ca 30 "extendedKeyUsage=clientAuth"
make_leaf other_client other_ca 30 "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
chmod 644 ./*.pem
