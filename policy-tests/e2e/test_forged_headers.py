"""Client-supplied identity headers neither decide nor reach the upstream.

The identity comes from the verified TLS connection only. A client that sends
its own x-forwarded-client-cert or the filter's x-mtls-authz-* headers must
get the same decision as without them, and the upstream must see the
filter's values (or none), never the client's.
"""

import pytest

from e2e_lib import DRY_RUN_HEADER, OWN_HEADERS, PRINCIPAL_HEADER, RULE_HEADER, http_request_bytes, policy_with

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


# --------------------------------------------------------------------------- "upstream_headers.set_by"

# Requests an allowed identity sends, with forged copies of every header of
# the filter's in two spellings: what the upstream gets must not depend on
# who writes the identity headers.
WRITER_REQUESTS = [
    ("order-service", "POST", "/api/payment/create"),
    ("report-service", "GET", "/api/payment/query/42?x=1"),
    ("report-service", "GET", "/api/payment/query"),
]
WRITER_FORGED = [(name, ORDER_SPIFFE) for name in OWN_HEADERS] + [(name.upper(), "admin") for name in OWN_HEADERS]


@pytest.fixture(scope="module")
def writers(request, envoy_factory):
    """One Envoy per `set_by`, the shipped route configuration's identity headers block in both."""
    gateways = {}
    for set_by in ("filter", "route"):
        policy = policy_with(revision="w-1", upstream_headers={"set_by": set_by})
        env = envoy_factory.start("set-by-" + set_by, policy, owner=request.node.nodeid)
        gateways[set_by] = envoy_factory.gateway(env)
    return gateways


def _own_headers_upstream(gw, identity, method, path, forged):
    raw = http_request_bytes(method, path, forged, body=b"{}" if method == "POST" else b"")
    r = gw.raw(identity, raw, method=method)
    assert r.status == 200, r
    return {name: r.upstream_headers(name) for name in OWN_HEADERS}


@pytest.mark.parametrize("identity,method,path", WRITER_REQUESTS)
@pytest.mark.parametrize("forged", [False, True], ids=["clean", "forged"])
def test_the_route_writes_what_the_filter_would(writers, identity, method, path, forged):
    extra = WRITER_FORGED if forged else []
    by_filter = _own_headers_upstream(writers["filter"], identity, method, path, extra)
    by_route = _own_headers_upstream(writers["route"], identity, method, path, extra)
    assert by_route == by_filter
    assert by_route[RULE_HEADER] and by_route[PRINCIPAL_HEADER], by_route
    assert by_route[DRY_RUN_HEADER] == [], by_route


def test_set_by_route_without_the_routes_block_forwards_no_identity(request, envoy_factory, tmp_path):
    """A route config that lacks the block: the upstream gets no identity
    headers, and still none of the client's."""
    import render
    template = tmp_path / "no-identity-headers.template.yaml"
    text = open(render.DEFAULT_TEMPLATE, encoding="utf-8").read()
    assert render.IDENTITY_HEADERS_MARKER in text
    template.write_text(text.replace(render.IDENTITY_HEADERS_MARKER, "# (no identity headers)"))
    policy = policy_with(revision="w-1", upstream_headers={"set_by": "route"})
    env = envoy_factory.start("set-by-route-no-block", policy, owner=request.node.nodeid, template_path=str(template))
    gw = envoy_factory.gateway(env)
    for identity, method, path in WRITER_REQUESTS:
        got = _own_headers_upstream(gw, identity, method, path, WRITER_FORGED)
        assert got == {name: [] for name in OWN_HEADERS}, (identity, path, got)
