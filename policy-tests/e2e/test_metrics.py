"""The filter's counters on the admin /stats endpoint move with the traffic."""

import pytest

from e2e_lib import METRICS, metric

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


def test_certificates_parsed_counter(gateway, metrics):
    # Each request here is a new TLS connection, so at least one parse.
    r = gateway.request("report-service", "GET", "/api/payment/query")
    assert r.status == 200, r
    assert metrics.delta("certificates_parsed") >= 1
    assert metrics.delta("errors") == 0
