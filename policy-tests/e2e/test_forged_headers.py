"""Client-supplied identity headers neither decide nor reach the upstream.

The identity comes from the verified TLS connection only. A client that sends
its own x-forwarded-client-cert or the filter's x-mtls-authz-* headers must
get the same decision as without them, and the upstream must see the
filter's values (or none), never the client's.
"""

from pathlib import Path

import pytest

import rawhttp
from e2e_lib import DRY_RUN_HEADER, OWN_HEADERS, POLICY_FILE, PRINCIPAL_HEADER, RULE_HEADER, http_request_bytes, policy_with

pytestmark = pytest.mark.filter

ORDER_SPIFFE = "spiffe://shop.test/ns/prod/sa/order"
REPORT_PRINCIPAL = "uri=spiffe://shop.test/ns/prod/sa/report"  # what the filter says for report-service
FORGED_XFCC = ('By=spiffe://shop.test/ns/prod/sa/payment;Hash=00;'
               'Subject="CN=order-service,O=shop";URI=%s' % ORDER_SPIFFE)
FORGED = {
    "x-forwarded-client-cert": FORGED_XFCC,
    PRINCIPAL_HEADER: ORDER_SPIFFE,
    RULE_HEADER: "orders-create-payment",
    DRY_RUN_HEADER: "deny",
}


def _assert_not_forwarded(r):
    got = r.echo["headers"]
    assert r.upstream_headers("x-forwarded-client-cert") == [], "client XFCC reached the upstream: %s" % got
    assert r.upstream_headers(PRINCIPAL_HEADER) == [REPORT_PRINCIPAL], got
    assert r.upstream_headers(RULE_HEADER) == ["reports-read-payment"], got
    assert r.upstream_headers(DRY_RUN_HEADER) == [], got


def test_forged_headers_do_not_grant_access(gateway):
    r = gateway.request("report-service", "POST", "/api/payment/create", headers=FORGED, body=b"{}")
    assert r.status == 403, r
    assert r.json()["error"] == "forbidden"


def test_forged_headers_do_not_grant_access_to_unknown(gateway):
    r = gateway.request("unknown-service", "POST", "/api/payment/create", headers=FORGED, body=b"{}")
    assert r.status == 403, r


def test_forged_headers_replaced_on_allowed_request(gateway):
    r = gateway.request("report-service", "GET", "/api/payment/query", headers=FORGED)
    assert r.status == 200, r
    _assert_not_forwarded(r)


@pytest.mark.parametrize("variant", ["duplicates", "upper-case", "comma-joined"])
def test_forged_header_variants(gateway, variant):
    if variant == "duplicates":
        forged = [(PRINCIPAL_HEADER, ORDER_SPIFFE), (PRINCIPAL_HEADER, ORDER_SPIFFE),
                  (RULE_HEADER, "orders-create-payment"), (RULE_HEADER, "orders-create-payment"),
                  (DRY_RUN_HEADER, "deny"), (DRY_RUN_HEADER, "deny"),
                  ("x-forwarded-client-cert", FORGED_XFCC), ("x-forwarded-client-cert", FORGED_XFCC)]
    elif variant == "upper-case":
        forged = [(PRINCIPAL_HEADER.upper(), ORDER_SPIFFE), ("X-Mtls-Authz-Rule", "orders-create-payment"),
                  ("X-MTLS-AUTHZ-DRY-RUN", "deny"),
                  ("X-Forwarded-Client-Cert", FORGED_XFCC)]
    else:
        forged = [(PRINCIPAL_HEADER, "%s, %s" % (ORDER_SPIFFE, ORDER_SPIFFE)),
                  (RULE_HEADER, "orders-create-payment, reports-read-payment")]
    # Denied stays denied...
    r = gateway.raw("report-service", http_request_bytes("POST", "/api/payment/create", forged), method="POST")
    assert r.status == 403, r
    # ...and on an allowed request the upstream sees only the filter's headers.
    r = gateway.raw("report-service", http_request_bytes("GET", "/api/payment/query", forged))
    assert r.status == 200, r
    _assert_not_forwarded(r)


# --------------------------------------------------------------------------- "upstream_headers" off


@pytest.fixture(scope="module")
def quiet(request, envoy_factory):
    """The example policy with a revision, and every upstream identity header turned off."""
    policy = policy_with(revision="quiet-1", upstream_headers={"principal": False, "rule": False, "revision": False})
    env = envoy_factory.start("upstream-headers-off", policy, owner=request.node.nodeid)
    return envoy_factory.gateway(env)


def test_headers_off_the_upstream_gets_none_of_the_filters_headers(quiet):
    r = quiet.request("order-service", "POST", "/api/payment/create", body=b"{}")
    assert r.status == 200, r
    for name in OWN_HEADERS:
        assert r.upstream_headers(name) == [], "%s reached the upstream: %s" % (name, r.echo["headers"])


def test_headers_off_forged_copies_are_still_removed(quiet):
    forged = [(name, ORDER_SPIFFE) for name in OWN_HEADERS] + [(name.upper(), "admin") for name in OWN_HEADERS]
    r = quiet.raw("report-service", http_request_bytes("GET", "/api/payment/query", forged))
    assert r.status == 200, r
    for name in OWN_HEADERS:
        assert r.upstream_headers(name) == [], "the client's %s reached the upstream: %s" % (name, r.echo["headers"])
    # The decision is the policy's, not the forged headers': still denied where it was.
    r = quiet.raw("report-service", http_request_bytes("POST", "/api/payment/create", forged), method="POST")
    assert r.status == 403, r


# --------------------------------------------------------------------------- trailers

# The shipped upstream is HTTP/1.1, where Envoy drops request trailers unless
# told otherwise; an upstream that is sent them (HTTP/2, or HTTP/1.1 with
# trailers on, as here) could merge them into the headers.
UPSTREAM_CLUSTER = "  - name: upstream\n    type: STRICT_DNS\n"
UPSTREAM_TRAILERS_ON = """  - name: upstream
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http_protocol_options: { enable_trailers: true }
    type: STRICT_DNS
"""


def _forward_trailers(config):
    assert UPSTREAM_CLUSTER in config, "the upstream cluster's first lines changed in envoy.template.yaml"
    return config.replace(UPSTREAM_CLUSTER, UPSTREAM_TRAILERS_ON, 1)


@pytest.fixture(scope="module")
def trailers_gateway(request, envoy_factory):
    """The example policy, with the upstream sent the request trailers."""
    env = envoy_factory.start("upstream-trailers", POLICY_FILE.read_text(), owner=request.node.nodeid,
                              transform=_forward_trailers)
    return envoy_factory.gateway(env)


@pytest.fixture(scope="module")
def dry_run_trailers_gateway(request, envoy_factory):
    """As trailers_gateway, in dry-run mode: a held body's trailers refuse nothing there."""
    env = envoy_factory.start("upstream-trailers-dry-run", policy_with(mode="dry_run"), owner=request.node.nodeid,
                              transform=_forward_trailers)
    return envoy_factory.gateway(env)


def _h2_with_trailers(gw, identity, method, path, trailers, headers=(), body=b"{}"):
    headers = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "localhost")] + list(headers)
    return rawhttp.send_h2_frames(gw.host, gw.port, gw.certs, Path(gw.certs) / identity, headers, body=body,
                                  trailers=trailers)


def test_trailers_reach_this_upstream(trailers_gateway):
    """The check below could not fail if the upstream were never sent trailers."""
    r = _h2_with_trailers(trailers_gateway, "report-service", "GET", "/api/payment/query", [("x-checksum", "abc")])
    assert r.status == 200, r
    assert r.json()["trailers"] == [["x-checksum", "abc"]], r.json()


def test_forged_trailers_do_not_reach_the_upstream(trailers_gateway):
    # HTTP/2 field names are lower-case (nghttp2 resets a stream with an
    # upper-case one), so the variants are duplicates.
    forged = [(name, ORDER_SPIFFE) for name in OWN_HEADERS] + [(name, "admin") for name in OWN_HEADERS]
    r = _h2_with_trailers(trailers_gateway, "report-service", "GET", "/api/payment/query",
                          forged + [("x-checksum", "abc")])
    assert r.status == 200, r
    echo = r.json()
    assert echo["trailers"] == [["x-checksum", "abc"]], "the client's trailers reached the upstream: %s" % echo
    assert [v for k, v in echo["headers"] if k == PRINCIPAL_HEADER] == [REPORT_PRINCIPAL], echo["headers"]


def test_dry_run_held_body_with_forged_trailers(dry_run_trailers_gateway):
    # A form POST the policy allows has its body held for a _method check;
    # trailers before its end leave the body unjudged, which a dry run lets go on.
    r = _h2_with_trailers(dry_run_trailers_gateway, "order-service", "POST", "/api/payment/create",
                          [(PRINCIPAL_HEADER, "cn=admin"), ("x-checksum", "abc")],
                          headers=[("content-type", "application/x-www-form-urlencoded")], body=b"amount=10")
    assert r.status == 200, r
    echo = r.json()
    assert echo["trailers"] == [["x-checksum", "abc"]], "the client's trailers reached the upstream: %s" % echo
