"""Decisions of the example policy (envoy/policy.json), end to end.

Every allowed request is checked at the upstream: it must have received the
authorised path and exactly one filter-set identity header of each kind.
"""

import pytest

from e2e_lib import PRINCIPAL_HEADER, RULE_HEADER

pytestmark = pytest.mark.filter

ORDER_SPIFFE = "spiffe://shop.test/ns/prod/sa/order"


def assert_allowed(r, path, rule, principal=None):
    assert r.status == 200, "expected 200, got %s" % r
    echo = r.echo
    assert echo["path"] == path, "upstream received %r, not the authorised path %r" % (echo["path"], path)
    assert r.upstream_headers(RULE_HEADER) == [rule], echo["headers"]
    principals = r.upstream_headers(PRINCIPAL_HEADER)
    assert len(principals) == 1 and principals[0], echo["headers"]
    if principal is not None:
        assert principals == [principal], echo["headers"]


def assert_denied(r, rule=...):
    """403 with the filter's JSON body; `rule` (if given) is the expected "rule" field."""
    assert r.status == 403, "expected 403, got %s" % r
    ctype = r.header("content-type") or ""
    assert ctype.startswith("application/json"), "403 content-type %r" % ctype
    body = r.json()
    assert body.get("error") == "forbidden", body
    assert "rule" in body and (body["rule"] is None or isinstance(body["rule"], str)), body
    assert isinstance(body.get("reason"), str) and body["reason"].strip(), body
    if rule is not ...:
        assert body["rule"] == rule, body
    return body


def test_order_service_creates_payment(gateway):
    r = gateway.request("order-service", "POST", "/api/payment/create", body=b'{"amount": 1}')
    assert_allowed(r, "/api/payment/create", "orders-create-payment", principal="uri=" + ORDER_SPIFFE)
    assert r.echo["method"] == "POST"


def test_report_service_reads_payment(gateway):
    r = gateway.request("report-service", "GET", "/api/payment/query")
    assert_allowed(r, "/api/payment/query", "reports-read-payment")


def test_report_service_reads_below_query(gateway):
    r = gateway.request("report-service", "GET", "/api/payment/query/42")
    assert_allowed(r, "/api/payment/query/42", "reports-read-payment")


def test_report_service_head_allowed(gateway):
    r = gateway.request("report-service", "HEAD", "/api/payment/query")
    assert r.status == 200, r


def test_query_string_does_not_change_the_decision(gateway):
    r = gateway.request("report-service", "GET", "/api/payment/query?id=42")
    assert_allowed(r, "/api/payment/query?id=42", "reports-read-payment")
    # ...and a path-looking query cannot lend its rule to another path.
    assert_denied(gateway.request("report-service", "GET", "/api/payment/create?/api/payment/query"))


def test_report_service_cannot_create_payment(gateway):
    assert_denied(gateway.request("report-service", "POST", "/api/payment/create", body=b"{}"))


def test_order_service_wrong_method_denied(gateway):
    assert_denied(gateway.request("order-service", "GET", "/api/payment/create"))


@pytest.mark.parametrize("method,path", [("GET", "/api/payment/query"), ("POST", "/api/payment/create"),
                                         ("GET", "/")])
def test_unknown_identity_denied(gateway, method, path):
    body = assert_denied(gateway.request("unknown-service", method, path, body=b"" if method == "POST" else None))
    assert body["rule"] is None, body


@pytest.mark.parametrize("identity,method", [("order-service", "GET"), ("order-service", "POST"),
                                             ("report-service", "GET")])
def test_admin_denied_by_deny_rule(gateway, identity, method):
    r = gateway.request(identity, method, "/api/payment/admin/x", body=b"" if method == "POST" else None)
    assert_denied(r, rule="nobody-on-admin")


def test_cn_alone_does_not_make_report_service(gateway):
    # CN=report-service but no OU=reporting and a URI SAN of order: the
    # reports rule needs CN and OU together, so this certificate cannot read.
    assert_denied(gateway.request("confused", "GET", "/api/payment/query"))


def test_confused_cert_is_its_uri_san(gateway):
    # The same certificate matches the orders rule through its URI SAN, and the
    # upstream is told the SAN identity, not the CN it claims.
    r = gateway.request("confused", "POST", "/api/payment/create", body=b"")
    assert_allowed(r, "/api/payment/create", "orders-create-payment", principal="uri=" + ORDER_SPIFFE)
