#!/usr/bin/env bash
# The main job, end to end on this machine: build, generate dev certificates
# into .work/certs, start the echo upstream and a real Envoy with the filter
# and envoy/policy.json, then show allowed and denied requests with curl
# (status and body), and stop everything. Exits non-zero if any request does
# not get the expected answer.
#
#   bash scripts/demo.sh              # build first
#   DEMO_SKIP_BUILD=1 bash scripts/demo.sh
#   DEMO_PORT=10000 bash scripts/demo.sh   # fixed listener port (default: any free port)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORK="$ROOT/.work/demo"
CERTS="$ROOT/.work/certs"
WASM="${MTLS_AUTHZ_WASM:-$ROOT/target/wasm32-wasip1/release/mtls_authz_filter.wasm}"
ENVOY="${ENVOY_BIN:-$ROOT/.venv/bin/envoy}"
PY="$ROOT/.venv/bin/python"

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    bash scripts/build.sh
fi
[ -x "$ENVOY" ] || { echo "demo: no Envoy at $ENVOY; run bash scripts/setup.sh" >&2; exit 1; }
[ -f "$WASM" ] || { echo "demo: no filter at $WASM; run bash scripts/build.sh" >&2; exit 1; }
[ -x "$PY" ] || PY=python3

mkdir -p "$WORK"
rm -f "$WORK"/*.admin
bash envoy/gen-certs.sh "$CERTS" >/dev/null

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Upstream on a free port; it prints "upstream listening on HOST:PORT".
"$PY" -u envoy/upstream.py --host 127.0.0.1 --port 0 >"$WORK/upstream.out" 2>"$WORK/upstream.log" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$WORK/upstream.out" 2>/dev/null && break; sleep 0.1; done
UP_PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$WORK/upstream.out")
[ -n "$UP_PORT" ] || { echo "demo: upstream did not start" >&2; cat "$WORK/upstream.log" >&2; exit 1; }

"$PY" envoy/render.py --policy envoy/policy.json --cert-dir "$CERTS" --wasm "$WASM" \
    --admin 127.0.0.1:0 --listener "mtls=127.0.0.1:${DEMO_PORT:-0}" --upstream "127.0.0.1:$UP_PORT" \
    --out "$WORK/envoy.yaml"

"$ENVOY" -c "$WORK/envoy.yaml" --base-id $(( $$ % 100000 * 64 + 63 )) -l info --concurrency 1 \
    --admin-address-path "$WORK/envoy.admin" >"$WORK/envoy.log" 2>&1 &
ENVOY_PID=$!
pids+=("$ENVOY_PID")
ADMIN=
for _ in $(seq 300); do
    if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
        echo "demo: Envoy exited; log tail:" >&2; tail -20 "$WORK/envoy.log" >&2; exit 1
    fi
    if [ -s "$WORK/envoy.admin" ]; then
        ADMIN=$(cat "$WORK/envoy.admin")
        [ "$(curl -s "http://$ADMIN/ready" || true)" = "LIVE" ] && break
    fi
    sleep 0.1
done
[ "$(curl -s "http://$ADMIN/ready" || true)" = "LIVE" ] || { echo "demo: Envoy not ready" >&2; tail -20 "$WORK/envoy.log" >&2; exit 1; }
PORT=$(curl -s "http://$ADMIN/listeners?format=json" | "$PY" -c \
    'import json,sys; print(json.load(sys.stdin)["listener_statuses"][0]["local_address"]["socket_address"]["port_value"])')
BASE="https://127.0.0.1:$PORT"

echo
echo "Envoy with mtls-authz on $BASE (admin http://$ADMIN), policy envoy/policy.json"
echo "Log: $WORK/envoy.log"

failures=0
# show EXPECTED IDENTITY METHOD PATH [extra curl args...]
# EXPECTED is an HTTP status, or "tls" for a connection refused during TLS.
show() {
    local expected=$1 who=$2 method=$3 path=$4
    shift 4
    local cert=()
    [ "$who" != "no-cert" ] && cert=(--cert "$CERTS/$who.crt" --key "$CERTS/$who.key")
    echo
    echo "== $who: $method $path $*  (expect $expected)"
    local status version rc=0
    # HTTP/1.1 by default: over HTTP/2, Envoy answers a denied request before
    # the client has sent its body and then resets the stream (RFC 9113 8.1
    # allows it), which curl 7.88 reports as error 92 instead of the 403. The
    # last request below shows a (body-less) deny over HTTP/2.
    status=$(curl -sS -v -o "$WORK/body" -w '%{http_code} %{http_version}' --http1.1 --cacert "$CERTS/ca.crt" "${cert[@]}" \
        -X "$method" "$@" "$BASE$path" 2>"$WORK/curl.err") || rc=$?
    if [ "$rc" != 0 ]; then
        # The TLS alert Envoy sent says why; curl's own summary can mislead
        # (it calls an expired *client* certificate a server verification failure).
        local why
        why=$(grep -oE 'TLS alert, [A-Za-z ]+' "$WORK/curl.err" | head -1 | sed 's/ *$//' || true)
        [ -n "$why" ] || why=$(grep -E '^curl: ' "$WORK/curl.err" | head -1 || true)
        echo "   connection refused (curl exit $rc): ${why:-see $WORK/curl.err}"
        status=tls
    else
        read -r status version <<<"$status"
        echo "   HTTP/$version $status"
        if [ "$status" = 200 ]; then
            # What the upstream received: path and the identity headers the filter set.
            "$PY" -c 'import json,sys
e = json.load(open(sys.argv[1]))
print("   upstream saw: %s %s" % (e["method"], e["path"]))
for k, v in e["headers"]:
    if k.startswith("x-mtls-authz-") or k == "x-forwarded-client-cert":
        print("     %s: %s" % (k, v))' "$WORK/body"
        else
            echo "   body: $(cat "$WORK/body")"
        fi
    fi
    if [ "$status" != "$expected" ]; then
        echo "   UNEXPECTED: wanted $expected"
        failures=$((failures + 1))
    fi
}

show 200 order-service   POST /api/payment/create -d '{"amount": 10}'
show 200 report-service  GET  /api/payment/query
show 200 report-service  GET  /api/payment/query/42
show 403 report-service  POST /api/payment/create -d '{}'
show 403 unknown-service GET  /api/payment/query
show 403 order-service   GET  /api/payment/admin/x
show 403 report-service  POST /api/payment/create -H 'x-mtls-authz-principal: spiffe://shop.test/ns/prod/sa/order' \
    -H 'x-forwarded-client-cert: URI=spiffe://shop.test/ns/prod/sa/order' -d '{}'
show 403 unknown-service GET  /api/payment/query --http2
# TLS 1.2 for the refusals: the server's alert then arrives inside the
# handshake, so curl can say why (with TLS 1.3 it races the first write).
show tls no-cert         GET  /api/payment/query --tls-max 1.2
show tls expired         GET  /api/payment/query --tls-max 1.2
show tls untrusted       GET  /api/payment/query --tls-max 1.2

echo
echo "== filter counters (admin /stats?filter=mtls_authz)"
# The filter hands its counts to Envoy every 100 ms (metrics.flush_period_ms
# in filter/constants.json), not with each response.
sleep 0.3
curl -s "http://$ADMIN/stats?filter=mtls_authz" | sed 's/^/   /'

echo
if [ "$failures" -gt 0 ]; then
    echo "demo: $failures request(s) did not get the expected answer" >&2
    exit 1
fi
echo "demo: all requests got the expected answers; stopping Envoy and upstream"
echo "demo: to see who can reach what under this policy, in a browser: target/release/mtls-authz playground"
