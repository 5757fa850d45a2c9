"""Envoy's path canonicalisation on the production listener (envoy.yaml's
normalize_path, merge_slashes, path_with_escaped_slashes_action).

The decision and the upstream must see the same canonical path: a request
cannot be authorised as one path and served as another. (The filter's own
handling of raw paths, on the listener with normalisation off, is the bypass suite's (test_bypass.py).)
"""

import pytest

from e2e_lib import RULE_HEADER, http_request_bytes


@pytest.mark.parametrize("target", ["/api/payment/query%2Fx", "/api/payment/query%2fx", "/api/payment%5Cquery",
                                    "/api/payment/admin%2F..%2Fquery"])
def test_escaped_slashes_rejected_by_envoy(gateway, target):
    r = gateway.raw("report-service", http_request_bytes("GET", target, []))
    assert r.status == 400, "%s: %s" % (target, r)


@pytest.mark.filter
@pytest.mark.parametrize("target", ["/api/payment/admin/../query", "/api/payment/./query", "//api//payment///query",
                                    "/api/payment/%2e%2e/payment/query", "/api/x/%2E%2E/payment/query"])
def test_canonical_path_is_decided_and_forwarded(gateway, target):
    r = gateway.raw("report-service", http_request_bytes("GET", target, []))
    assert r.status == 200, "%s: %s" % (target, r)
    assert r.echo["path"] == "/api/payment/query", "%s reached the upstream as %r" % (target, r.echo["path"])
    assert r.upstream_headers(RULE_HEADER) == ["reports-read-payment"]


@pytest.mark.filter
@pytest.mark.parametrize("target", ["/api/payment/query/../admin/x", "//api/payment/admin//x",
                                    "/api/payment/query/%2e%2e/admin/x"])
def test_dot_segments_cannot_escape_into_admin(gateway, target):
    r = gateway.raw("report-service", http_request_bytes("GET", target, []))
    assert r.status == 403, "%s: %s" % (target, r)
    assert r.json()["rule"] == "nobody-on-admin", r
