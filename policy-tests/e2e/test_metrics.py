"""The filter's counters on the admin /stats endpoint move with the traffic."""

import pytest

from e2e_lib import METRICS, issue_client_cert, metric

pytestmark = pytest.mark.filter


def test_all_counters_exposed(gateway):
    stats = gateway.admin.stats()
    for short in METRICS:
        metric(stats, short)  # raises with the list of names seen


def test_allowed_counter(gateway, metrics):
    r = gateway.request("order-service", "POST", "/api/payment/create", body=b"")
    assert r.status == 200, r
    assert metrics.delta("requests_allowed") == 1
    assert metrics.delta("requests_denied") == 0
    assert metrics.delta("errors") == 0


def test_denied_counter(gateway, metrics):
    for _ in range(3):
        r = gateway.request("unknown-service", "GET", "/api/payment/query")
        assert r.status == 403, r
    assert metrics.delta("requests_denied") == 3
    assert metrics.delta("requests_allowed") == 0
    assert metrics.delta("requests_dry_run_denied") == 0


def test_certificates_parsed_counter(gateway, metrics, tmp_path):
    # The filter caches parsed certificates per VM, so only a certificate no
    # worker has seen yet is guaranteed to be parsed.
    fresh = issue_client_cert(gateway.certs, tmp_path / "fresh", "/OU=reporting/CN=report-service",
                              "URI:spiffe://shop.test/ns/prod/sa/report")
    r = gateway.request(fresh, "GET", "/api/payment/query")
    assert r.status == 200, r
    assert metrics.delta("certificates_parsed") >= 1
    assert metrics.delta("errors") == 0
