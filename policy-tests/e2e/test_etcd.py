"""etcd behind Envoy, with the example policy examples/etcd/policy.json.

A real etcd 3.4 (Debian's etcd-server) on a loopback port, plain gRPC; Envoy
terminates mTLS in front of it (examples/etcd/envoy.template.yaml); etcdctl
(Debian's etcd-client) is the gRPC client, once per identity from the dev PKI.
Denied calls must come back as gRPC PERMISSION_DENIED with the readable
reason, and a denied write must leave etcd unchanged, checked against etcd
directly, past Envoy.
"""

import os
import select
import subprocess
import time

import pytest

import render
from services import ETCD_POLICY, ETCD_TEMPLATE, Etcd, need

pytestmark = pytest.mark.filter

# Longer than Envoy's default route timeout (15 s), which would end a watch.
WATCH_HOLD = 17


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    e = Etcd(tmp_path_factory.mktemp("etcd")).start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def front(request, envoy_factory, etcd):
    """Envoy with the etcd example's template and policy, upstream the real etcd."""
    env = envoy_factory.start(
        "etcd", ETCD_POLICY.read_text(), listeners=[render.Listener("etcd", "127.0.0.1", 0)],
        policy_origin="examples/etcd/policy.json", template_path=str(ETCD_TEMPLATE),
        owner=request.node.nodeid, upstream=("127.0.0.1", etcd.port))
    return "https://127.0.0.1:%d" % env.listener_port("etcd"), env


def ctl(etcd, front, certs, identity, *args, **kw):
    return etcd.ctl(*args, endpoint=front[0], identity=identity, certs=certs, **kw)


def denied(result, rule=None, reason="no rule matched; default_action is deny"):
    """The call failed as gRPC PERMISSION_DENIED, with the sentence the filter sends."""
    err = result.stderr.decode(errors="replace")
    assert result.returncode != 0, result
    assert "code = PermissionDenied" in err, err
    expected = "forbidden: %s" % reason + (" (rule %s)" % rule if rule else "")
    assert "desc = %s" % expected in err, err
    assert '{"error"' not in err, "a sentence, not the JSON body: %s" % err


def test_orders_write_and_read(etcd, front, certs):
    r = ctl(etcd, front, certs, "order-service", "put", "/orders/1", "paid")
    assert r.returncode == 0 and r.stdout.strip() == b"OK", r
    r = ctl(etcd, front, certs, "report-service", "get", "/orders/1", "--print-value-only")
    assert (r.returncode, r.stdout.strip()) == (0, b"paid"), r
    r = ctl(etcd, front, certs, "order-service", "txn", stdin=b"\nput /orders/2 shipped\n\n\n")
    assert r.returncode == 0 and b"SUCCESS" in r.stdout, r
    r = ctl(etcd, front, certs, "order-service", "del", "/orders/2")
    assert (r.returncode, r.stdout.strip()) == (0, b"1"), r


def test_a_denied_write_is_permission_denied_and_changes_nothing(etcd, front, certs):
    assert etcd.ctl("put", "/reports/k", "before").returncode == 0
    denied(ctl(etcd, front, certs, "report-service", "put", "/reports/k", "after"))
    denied(ctl(etcd, front, certs, "report-service", "del", "/reports/k"))
    denied(ctl(etcd, front, certs, "report-service", "txn", stdin=b"\nput /reports/k txn\n\n\n"))
    denied(ctl(etcd, front, certs, "unknown-service", "put", "/reports/new", "x"))
    # Past Envoy: etcd itself still has the old value and no new key.
    r = etcd.ctl("get", "/reports/", "--prefix")
    assert r.returncode == 0 and r.stdout.split() == [b"/reports/k", b"before"], r


def test_nobody_administers(etcd, front, certs):
    for identity in ("order-service", "report-service"):
        denied(ctl(etcd, front, certs, identity, "endpoint", "status"), rule="nobody-maintenance", reason="matched a deny rule")
        denied(ctl(etcd, front, certs, identity, "defrag"), rule="nobody-maintenance", reason="matched a deny rule")
        denied(ctl(etcd, front, certs, identity, "user", "add", "mallory:pw"), rule="nobody-auth", reason="matched a deny rule")
        denied(ctl(etcd, front, certs, identity, "auth", "enable"), rule="nobody-auth", reason="matched a deny rule")
    assert b"mallory" not in etcd.ctl("user", "list").stdout


def test_a_watch_stays_open_past_the_route_timeout(etcd, front, certs):
    cmd = [need("etcdctl"), "--endpoints", front[0], "--cacert", str(certs / "ca.crt"),
           "--cert", str(certs / "report-service.crt"), "--key", str(certs / "report-service.key"),
           "watch", "/watched"]
    watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"ETCDCTL_API": "3"})
    try:
        time.sleep(WATCH_HOLD)
        assert watch.poll() is None, "the watch ended early: %r" % (watch.communicate(timeout=5),)
        r = ctl(etcd, front, certs, "order-service", "put", "/watched", "late-event")
        assert r.returncode == 0, r
        deadline = time.monotonic() + 10
        seen = b""
        while b"late-event" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([watch.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(watch.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"PUT\n/watched\nlate-event" in seen, seen
    finally:
        watch.kill()
        watch.wait(5)


def test_without_a_client_certificate_there_is_no_call(etcd, front, certs):
    r = etcd.ctl("--cacert", str(certs / "ca.crt"), "get", "/orders/1", endpoint=front[0], timeout=40)
    assert r.returncode != 0 and b"paid" not in r.stdout, r
