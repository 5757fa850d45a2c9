"""Dry-run mode: the policy decides and counts, but nothing is blocked.

A separate Envoy runs the example policy with "mode": "dry_run".
"""

import pytest

from e2e_lib import DRY_RUN_HEADER, PRINCIPAL_HEADER, RULE_HEADER, metric, policy_with

pytestmark = pytest.mark.filter

ORDER_SPIFFE = "spiffe://shop.test/ns/prod/sa/order"


@pytest.fixture(scope="module")
def dry(request, envoy_factory):
    env = envoy_factory.start("dry-run", policy_with(mode="dry_run"), owner=request.node.nodeid)
    return envoy_factory.gateway(env)


def test_would_be_denied_request_passes_and_is_counted(dry):
    before = dry.admin.stats()
    r = dry.request("unknown-service", "GET", "/api/payment/query")
    assert r.status == 200, r
    assert r.echo["path"] == "/api/payment/query"
    assert r.upstream_headers(DRY_RUN_HEADER) == ["deny"], r.echo["headers"]
    after = dry.admin.stats()
    assert metric(after, "requests_dry_run_denied") == metric(before, "requests_dry_run_denied") + 1
    assert metric(after, "requests_denied") == metric(before, "requests_denied"), "dry run counted a real denial"


def test_deny_rule_only_counted(dry):
    before = dry.admin.stats()
    r = dry.request("order-service", "GET", "/api/payment/admin/x")
    assert r.status == 200, r
    assert r.upstream_headers(DRY_RUN_HEADER) == ["deny"], r.echo["headers"]
    assert r.upstream_headers(RULE_HEADER) == ["nobody-on-admin"], r.echo["headers"]
    after = dry.admin.stats()
    assert metric(after, "requests_dry_run_denied") == metric(before, "requests_dry_run_denied") + 1


def test_allowed_request_unchanged(dry):
    before = dry.admin.stats()
    r = dry.request("order-service", "POST", "/api/payment/create", body=b"{}")
    assert r.status == 200, r
    assert r.upstream_headers(PRINCIPAL_HEADER) == ["uri=" + ORDER_SPIFFE], r.echo["headers"]
    assert r.upstream_headers(RULE_HEADER) == ["orders-create-payment"], r.echo["headers"]
    assert r.upstream_headers(DRY_RUN_HEADER) == [], r.echo["headers"]
    after = dry.admin.stats()
    assert metric(after, "requests_allowed") == metric(before, "requests_allowed") + 1


def test_forged_identity_not_forwarded_in_dry_run(dry):
    # A request that passes only because of dry-run must not carry a client's
    # forged identity to the upstream either.
    r = dry.request("unknown-service", "GET", "/api/payment/query",
                    headers={PRINCIPAL_HEADER: ORDER_SPIFFE, RULE_HEADER: "orders-create-payment"})
    assert r.status == 200, r
    assert ORDER_SPIFFE not in r.upstream_headers(PRINCIPAL_HEADER), r.echo["headers"]
    assert "orders-create-payment" not in r.upstream_headers(RULE_HEADER), r.echo["headers"]


def test_forged_dry_run_marker_removed(dry):
    r = dry.request("order-service", "POST", "/api/payment/create", headers={DRY_RUN_HEADER: "deny"}, body=b"")
    assert r.status == 200, r
    assert r.upstream_headers(DRY_RUN_HEADER) == [], r.echo["headers"]
