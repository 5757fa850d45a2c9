#!/usr/bin/env bash
# Generate the development PKI for mtls-authz into OUT_DIR (default: envoy/certs).
#
#   ca.crt / ca.key               dev CA that Envoy trusts for client certificates
#   server.crt / server.key       Envoy's listener cert: DNS:localhost, DNS:envoy, IP:127.0.0.1, serverAuth
#   order-service.{crt,key}       CN=order-service, O=shop, URI spiffe://shop.test/ns/prod/sa/order, DNS order.shop.test
#   report-service.{crt,key}      CN=report-service, OU=reporting, URI spiffe://shop.test/ns/prod/sa/report
#   unknown-service.{crt,key}     CN=unknown-service (matches no rule)
#   expired.{crt,key}             CN=order-service, valid only in 2020 (Envoy must refuse it)
#   untrusted.{crt,key}           CN=order-service signed by rogue-ca (Envoy does not trust it)
#   confused.{crt,key}            CN=report-service but URI SAN of order (SAN-vs-CN confusion tests)
#   rogue-ca.{crt,key}            the CA behind "untrusted"
#
# Idempotent: existing files are kept, so re-running is cheap and does not
# invalidate certificates a running Envoy already loaded. Files are
# regenerated when the CA is (re)created or when this script's layout version
# changes. Private keys are written 0600 and must never be committed
# (/envoy/certs/ is git-ignored).
#
# Portable to any POSIX-ish shell environment with bash and the openssl CLI
# (OpenSSL 1.1.1 or 3.x; the expired certificate uses `openssl ca -startdate/-enddate`
# because `openssl x509 -not_before` only exists from OpenSSL 3.4).
set -euo pipefail

LAYOUT_VERSION=1
OUT_DIR=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/certs"}
DAYS=${CERT_DAYS:-825}

command -v openssl >/dev/null 2>&1 || { echo "gen-certs.sh: the openssl CLI is required" >&2; exit 1; }

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
umask 077
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

stamp="$OUT_DIR/.layout-version"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$LAYOUT_VERSION" ]; then
    # Unknown or older layout: start from scratch rather than mix generations.
    rm -f "$OUT_DIR"/*.crt "$OUT_DIR"/*.key "$OUT_DIR"/*.srl
fi

FORCE=0

new_key() { # new_key PATH
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

serial() { echo "0x$(openssl rand -hex 15)"; }

make_ca() { # make_ca NAME SUBJECT
    local name=$1 subject=$2
    if [ -f "$OUT_DIR/$name.crt" ] && [ -f "$OUT_DIR/$name.key" ]; then
        return 1
    fi
    new_key "$OUT_DIR/$name.key"
    cat >"$WORK/$name.ext" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -x509 -key "$OUT_DIR/$name.key" -subj "$subject" -days 3650 \
        -set_serial "$(serial)" -config "$WORK/$name.ext" -extensions v3_ca \
        -out "$OUT_DIR/$name.crt"
    chmod 644 "$OUT_DIR/$name.crt"
    return 0
}

# leaf NAME SUBJECT EKU SAN [CA]   (SAN may be empty)
leaf() {
    local name=$1 subject=$2 eku=$3 san=$4 ca=${5:-ca}
    if [ "$FORCE" = 0 ] && [ -f "$OUT_DIR/$name.crt" ] && [ -f "$OUT_DIR/$name.key" ]; then
        return 0
    fi
    new_key "$OUT_DIR/$name.key"
    {
        echo "[v3_leaf]"
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature"
        echo "extendedKeyUsage = $eku"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
        if [ -n "$san" ]; then echo "subjectAltName = $san"; fi
    } >"$WORK/$name.ext"
    openssl req -new -key "$OUT_DIR/$name.key" -subj "$subject" -out "$WORK/$name.csr"
    openssl x509 -req -in "$WORK/$name.csr" -CA "$OUT_DIR/$ca.crt" -CAkey "$OUT_DIR/$ca.key" \
        -set_serial "$(serial)" -days "$DAYS" -sha256 \
        -extfile "$WORK/$name.ext" -extensions v3_leaf -out "$OUT_DIR/$name.crt" 2>/dev/null
    chmod 644 "$OUT_DIR/$name.crt"
}

# A certificate whose whole validity lies in the past. `openssl ca` is the
# portable way to set explicit start and end dates.
expired_leaf() {
    local name=$1 subject=$2 san=$3
    if [ "$FORCE" = 0 ] && [ -f "$OUT_DIR/$name.crt" ] && [ -f "$OUT_DIR/$name.key" ]; then
        return 0
    fi
    new_key "$OUT_DIR/$name.key"
    openssl req -new -key "$OUT_DIR/$name.key" -subj "$subject" -out "$WORK/$name.csr"
    mkdir -p "$WORK/ca-db/new"
    : >"$WORK/ca-db/index.txt"
    openssl rand -hex 15 >"$WORK/ca-db/serial"
    cat >"$WORK/ca.cnf" <<EOF
[ca]
default_ca = dev
[dev]
database = $WORK/ca-db/index.txt
new_certs_dir = $WORK/ca-db/new
serial = $WORK/ca-db/serial
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[anything]
commonName = supplied
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $san
EOF
    openssl ca -batch -notext -preserveDN -config "$WORK/ca.cnf" -extensions v3_leaf \
        -cert "$OUT_DIR/ca.crt" -keyfile "$OUT_DIR/ca.key" \
        -startdate 20200101000000Z -enddate 20200201000000Z \
        -in "$WORK/$name.csr" -out "$OUT_DIR/$name.crt" 2>/dev/null
    chmod 644 "$OUT_DIR/$name.crt"
}

if make_ca ca "/O=mtls-authz dev/CN=mtls-authz dev CA"; then FORCE=1; fi
leaf server "/CN=envoy" serverAuth "DNS:localhost, DNS:envoy, IP:127.0.0.1"
leaf order-service "/O=shop/CN=order-service" clientAuth \
    "URI:spiffe://shop.test/ns/prod/sa/order, DNS:order.shop.test"
leaf report-service "/OU=reporting/CN=report-service" clientAuth \
    "URI:spiffe://shop.test/ns/prod/sa/report"
leaf unknown-service "/CN=unknown-service" clientAuth ""
leaf confused "/CN=report-service" clientAuth "URI:spiffe://shop.test/ns/prod/sa/order"
expired_leaf expired "/O=shop/CN=order-service" "URI:spiffe://shop.test/ns/prod/sa/order"

FORCE_ROGUE=0
if make_ca rogue-ca "/O=rogue/CN=rogue CA"; then FORCE_ROGUE=1; fi
saved=$FORCE; [ "$FORCE_ROGUE" = 1 ] && FORCE=1
leaf untrusted "/O=shop/CN=order-service" clientAuth \
    "URI:spiffe://shop.test/ns/prod/sa/order" rogue-ca
FORCE=$saved

echo "$LAYOUT_VERSION" >"$stamp"
chmod 644 "$stamp"
echo "gen-certs.sh: certificates in $OUT_DIR"
