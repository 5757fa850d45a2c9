#!/usr/bin/env python3
"""The cost of the L4 (connection-level) decision: bench/results-l4.md.

A new TLS connection per request, through Envoy's tcp_proxy, three ways:

  tcp-none   mTLS listener -> tcp_proxy: the floor
  tcp-authz  the same, with the mtls-authz network filter (root_id
             mtls_authz_l4, examples/mqtt's policy shape) before tcp_proxy
  tcp-rbac   the same, with Envoy's network RBAC filter allowing the same
             certificate by its subject (the native alternative)

Topology, all on 127.0.0.1, every Envoy with one worker:
  wrk --HTTP/1.1 keep-alive--> client Envoy (max_requests_per_connection 1:
  a new mTLS connection, full handshake, per request) --> server Envoy
  (variant listener: filter, tcp_proxy) --> backend Envoy (plain HTTP,
  direct_response 200).
Rounds are interleaved so machine noise hits each variant alike; the table
has the medians. Reuses bench/run.py's process, Envoy and wrk helpers.

    python3 bench/l4.py [--rounds 3] [--duration 10] [--connections 8]
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as harness  # noqa: E402  (bench/run.py)

ROOT = harness.ROOT
VARIANTS = ("tcp-none", "tcp-authz", "tcp-rbac")
POLICY = """{"version": 1, "default_action": "deny", "revision": "bench-l4",
 "connection_rules": [{"name": "orders", "action": "allow", "principals": [{"cn": "order-service"}]},
                      {"name": "nobody-revoked", "action": "deny", "principals": [{"serial": "01"}]}]}"""

WASM_FILTER = """
      - name: mtls_authz
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: mtls_authz
            root_id: mtls_authz_l4
            vm_config: {{ vm_id: mtls_authz, runtime: envoy.wasm.runtime.v8, code: {{ local: {{ filename: "{wasm}" }} }} }}
            failure_policy: FAIL_CLOSED
            configuration: {{ "@type": type.googleapis.com/google.protobuf.StringValue, value: {policy} }}"""
RBAC_FILTER = """
      - name: envoy.filters.network.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
          stat_prefix: rbac
          rules:
            action: ALLOW
            policies:
              orders:
                permissions: [{ any: true }]
                principals: [{ authenticated: { principal_name: { safe_regex: { regex: "^(.*,)?CN=order-service(,.*)?$" } } } }]"""


def server_config(certs, wasm, backend_port):
    listeners = []
    for name in VARIANTS:
        extra = {"tcp-none": "", "tcp-authz": WASM_FILTER.format(wasm=wasm, policy=json_quote(POLICY)),
                 "tcp-rbac": RBAC_FILTER}[name]
        # tcp_proxy as examples/mqtt sets it up for the filter (IMMEDIATE, max_early_data_bytes 0), on every row alike.
        listeners.append("""
  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates: [{{ certificate_chain: {{ filename: "{certs}/server.crt" }}, private_key: {{ filename: "{certs}/server.key" }} }}]
            validation_context: {{ trusted_ca: {{ filename: "{certs}/ca.crt" }} }}
      filters:{extra}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: {name}
          cluster: backend
          max_early_data_bytes: 0""".format(name=name, certs=certs, extra=extra))
    return """node: {{ id: bench-l4-server, cluster: bench }}
admin: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }} }}
static_resources:
  listeners:{listeners}
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 2s
    circuit_breakers: {{ thresholds: [{{ max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 }}] }}
    load_assignment:
      cluster_name: backend
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
""".format(listeners="".join(listeners), port=backend_port)


def json_quote(text):
    import json
    return json.dumps(text)


BACKEND = """node: { id: bench-l4-backend, cluster: bench }
admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
static_resources:
  listeners:
  - name: backend
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: backend
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
"""


def client_config(certs, ports):
    listeners, clusters = [], []
    for name, port in ports.items():
        listeners.append("""
  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts: [{{ name: all, domains: ["*"], routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: {name} }} }}] }}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}""".format(name=name))
        clusters.append("""
  - name: {name}
    type: STATIC
    connect_timeout: 2s
    circuit_breakers: {{ thresholds: [{{ max_connections: 100000, max_pending_requests: 100000, max_requests: 100000 }}] }}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        common_http_protocol_options: {{ max_requests_per_connection: 1 }}
        explicit_http_config: {{ http_protocol_options: {{}} }}
    load_assignment:
      cluster_name: {name}
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
        max_session_keys: 0
        common_tls_context:
          tls_certificates: [{{ certificate_chain: {{ filename: "{certs}/order-service.crt" }}, private_key: {{ filename: "{certs}/order-service.key" }} }}]
          validation_context: {{ trusted_ca: {{ filename: "{certs}/ca.crt" }} }}""".format(name=name, port=port, certs=certs))
    return """node: {{ id: bench-l4-client, cluster: bench }}
admin: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }} }}
static_resources:
  listeners:{l}
  clusters:{c}
""".format(l="".join(listeners), c="".join(clusters))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--envoy", default=os.path.join(ROOT, ".venv", "bin", "envoy"))
    ap.add_argument("--wasm", default=os.path.join(ROOT, "target", "wasm32-wasip1", "release", "mtls_authz_filter.wasm"))
    ap.add_argument("--out", default=os.path.join(HERE, "results-l4.md"))
    args = ap.parse_args(argv)
    args.envoy_log_level, args.callgrind = "warning", False
    work = os.path.join(ROOT, ".work", "bench-l4")
    os.makedirs(work, exist_ok=True)
    certs = os.path.join(work, "certs")
    subprocess.run(["bash", os.path.join(ROOT, "envoy", "gen-certs.sh"), certs], check=True, stdout=subprocess.DEVNULL)
    procs = harness.Procs()
    try:
        backend = harness.Envoy(procs, "backend", BACKEND, args, work)
        backend.wait_ready(60)
        server = harness.Envoy(procs, "server", server_config(certs, os.path.abspath(args.wasm), backend.listener_ports()["backend"]),
                               args, work)
        server.wait_ready(120)
        client = harness.Envoy(procs, "client", client_config(certs, {v: server.listener_ports()[v] for v in VARIANTS}), args, work)
        client.wait_ready(60)
        ports = client.listener_ports()
        results = {v: [] for v in VARIANTS}
        for r in range(args.rounds):
            for v in VARIANTS:
                cpu = server.cpu_seconds()
                res = harness.run_wrk(args, ports[v], args.duration, None)
                res["cpu_us"] = (server.cpu_seconds() - cpu) * 1e6 / max(1, res["requests"])
                if res.get("non_2xx_3xx"):
                    raise harness.BenchError("%s: %d non-2xx responses" % (v, res["non_2xx_3xx"]))
                res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
                res["p50"], res["p99"] = res["latency_us"]["p50"], res["latency_us"]["p99"]
                results[v].append(res)
                harness.log("round %d %s: %.0f req/s" % (r + 1, v, res["rps"]))
        time.sleep(3 * harness.COUNTER_FLUSH_S)  # the filter's counts reach Envoy on a tick
        counters = server.counters()
    finally:
        procs.stop_all()
    rows = []
    base = statistics.median(x["rps"] for x in results["tcp-none"])
    for v in VARIANTS:
        rps = statistics.median(x["rps"] for x in results[v])
        p50 = statistics.median(x["p50"] for x in results[v])
        p99 = statistics.median(x["p99"] for x in results[v])
        cpu = statistics.median(x["cpu_us"] for x in results[v])
        rows.append("| %s | %.0f | %+.1f%% | %.0f | %.0f | %.0f |" % (v, rps, 100 * (rps - base) / base, p50, p99, cpu))
    decided = counters.get("wasmcustom.mtls_authz.connections_allowed", 0)
    parsed = counters.get("wasmcustom.mtls_authz.certificates_parsed", 0)
    text = """# L4 (connection-level) decision: results

Generated by `python3 bench/l4.py` on {date}: {rounds} interleaved rounds of
{duration} s per variant, {conns} wrk connections, a new mTLS connection (full
handshake, no session resumption) per request, one Envoy worker each. Medians.

| variant | req/s | vs tcp-none | p50 µs | p99 µs | server CPU µs/connection |
|---|---|---|---|---|---|
{rows}

The filter decided {decided} connections in this run
(`wasmcustom.mtls_authz.connections_allowed`) and parsed the certificate
{parsed} time(s) (`certificates_parsed`): every other decision was a cache
hit. Server CPU is the server Envoy's user+system time over the run divided
by the requests (each a new connection). See bench/README.md ("L4 mode").
""".format(parsed=parsed, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), rounds=args.rounds,
           duration=args.duration, conns=args.connections, rows="\n".join(rows), decided=decided)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
