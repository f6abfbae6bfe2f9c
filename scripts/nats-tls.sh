#!/usr/bin/env bash
# Makes a private CA and a server certificate for nats-server, for the TLS
# block of dist/nats-server.conf:
#
#   scripts/nats-tls.sh OUT_DIR NAME...
#
# NAME: every host name or IP address clients use to reach the server
# (e.g. nats.example.net 203.0.113.7); `localhost` and 127.0.0.1 are
# always added. Writes into OUT_DIR:
#
#   ca.pem           the CA certificate: give it to every worker
#                    (worker.toml `nats.tls_ca_file`) and CI
#                    (`hostkit --tls-ca`, HOSTKIT_TLS_CA)
#   ca-key.pem       the CA key (0600): keep it off the servers
#   server-cert.pem  the server certificate, signed by the CA
#   server-key.pem   its key (0600): for nats-server only
#
# An existing CA in OUT_DIR is kept and signs the new server certificate,
# so re-running it with more names (or to renew) does not invalidate what
# clients trust. Needs openssl.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 OUT_DIR [NAME...]" >&2
    exit 2
fi
out=$1
shift
command -v openssl >/dev/null || {
    echo "error: openssl is needed (apt-get install openssl)" >&2
    exit 1
}
mkdir -p "$out"
umask 077

# Subject alternative names: DNS names and IP addresses.
sans="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
        sans+=",IP:$name"
    else
        sans+=",DNS:$name"
    fi
done

if [[ ! -f $out/ca.pem || ! -f $out/ca-key.pem ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$out/ca-key.pem" -out "$out/ca.pem" -days 3650 \
        -subj "/CN=HostKit NATS CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    echo "made a CA: $out/ca.pem"
fi

openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$out/server-key.pem" -out "$out/server.csr" \
    -subj "/CN=${1:-localhost}" 2>/dev/null
extensions=$(mktemp)
trap 'rm -f "$extensions" "$out/server.csr"' EXIT
cat >"$extensions" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$sans
EOF
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" \
    -CAcreateserial -out "$out/server-cert.pem" -days 825 -extfile "$extensions" 2>/dev/null
chmod 0644 "$out/ca.pem" "$out/server-cert.pem"
echo "made a server certificate for $sans: $out/server-cert.pem"
