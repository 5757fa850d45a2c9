"""`mtls-authz doctor --connect` against the real Envoy: the cause it names for
a failed mTLS connection is the cause Envoy had.

The offline checks (expiry, chain, key, usage, CRL) are covered by the CLI's
own tests with generated certificates; here the live handshake is judged
against the same Envoy the rest of the suite talks to.
"""

import json
import subprocess

import pytest

from e2e_lib import CLI, REPO


def doctor(gateway, identity, *extra, key=True):
    if not CLI.is_file():
        pytest.fail("no mtls-authz CLI at %s; build it with `bash scripts/build.sh`" % CLI, pytrace=False)
    c = gateway.certs
    args = [str(CLI), "doctor", "--cert", str(c / (identity + ".crt")), "--ca", str(c / "ca.crt"),
            "--connect", "%s:%d" % (gateway.host, gateway.port), "--server-ca", str(c / "ca.crt"),
            "--sni", "localhost", "--format", "json", *extra]
    if key:
        args[4:4] = ["--key", str(c / (identity + ".key"))]
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode in (0, 1), "doctor exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace"))
    report = json.loads(r.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    return r.returncode, report, checks


def test_healthy_certificate_handshakes_and_is_allowed(gateway):
    rc, report, checks = doctor(gateway, "order-service", "--policy", str(REPO / "envoy" / "policy.json"),
                                "--method", "POST", "--path", "/api/payment/create")
    assert rc == 0 and report["ok"], report
    hs = checks["handshake"]
    assert hs["status"] == "pass", hs
    assert hs["summary"].startswith("handshake ok"), hs
    assert hs["data"]["client_cert_sent"] is True
    assert checks["policy"]["data"]["decision"] == "allow"
    assert checks["policy"]["data"]["rule"] == "orders-create-payment"


def test_rogue_ca_certificate_is_named_as_untrusted(gateway):
    # The rogue CA is not in --ca either, so the offline chain check fails too;
    # the point here is the live verdict from Envoy.
    rc, report, checks = doctor(gateway, "untrusted")
    assert rc == 1
    hs = checks["handshake"]
    assert hs["status"] == "fail", hs
    assert "server does not trust" in hs["summary"], hs
    assert hs["cause"] in ("server_untrusted_ca", "server_rejected_certificate"), hs


def test_missing_client_certificate_is_named(gateway):
    rc, report, checks = doctor(gateway, "order-service", key=False)
    assert rc == 1
    hs = checks["handshake"]
    assert hs["cause"] == "client_cert_required", hs
    assert "server demands a certificate" in hs["summary"], hs
    assert hs["data"]["client_cert_sent"] is False


def test_expired_certificate_is_named_offline_and_live(gateway):
    rc, report, checks = doctor(gateway, "expired")
    assert rc == 1
    assert checks["validity"]["cause"] == "expired", checks["validity"]
    assert checks["handshake"]["cause"] == "client_cert_expired", checks["handshake"]
