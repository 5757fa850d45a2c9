"""examples/revocation-rotation for real: revoke by CRL, block by policy, rotate CAs and certificates.

One Envoy per test, never restarted (its pid is checked at the end), with the
listener certificate and the trusted client CAs + CRLs from file-watched SDS
(examples/pki.py publish) and the policy by ECDS (`mtls-authz watch`). Times
are measured and printed (`[test] ...` lines, also in the JUnit properties);
they are bounded only by generous deadlines, never asserted as performance.
"""

import http.client
import json
import subprocess
import time

import pytest

import e2e_lib
import examples_lib
from e2e_lib import CLI, _die_with_parent, report, wait_for, write_atomically
from examples_lib import EXAMPLES_DIR, pki

pytestmark = pytest.mark.filter

EXAMPLE = "revocation-rotation"
DEADLINE = 20.0  # seconds: far above what any reload takes, only so a broken reload fails


def published_deployment(envoy_factory, workdir, tmp_path, policy_text=None):
    """The example with its policy published by `mtls-authz publish` for ECDS; (deployment, policy file, ecds file)."""
    src = tmp_path / "policy.json"
    src.write_text(policy_text or (EXAMPLES_DIR / EXAMPLE / "policy.json").read_text())
    ecds = tmp_path / "ecds"
    ecds.mkdir()
    out = ecds / "mtls_authz.yaml"
    r = examples_lib.run_cli("publish", src, "--out", out, "--wasm", envoy_factory.wasm_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    pki_dir = examples_lib.generate_pki(tmp_path, EXAMPLE)
    dep = examples_lib.start(envoy_factory, workdir, EXAMPLE, pki_dir=pki_dir, ecds_dir=str(ecds))
    return dep, src, out


def keep_alive(gw, stem):
    return http.client.HTTPSConnection(gw.host, gw.port, context=gw.context(stem), timeout=e2e_lib.IO_TIMEOUT)


def get(conn, path="/ledger/entries"):
    """One request on a kept-alive connection: (status, body as JSON or None)."""
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    assert r.getheader("connection", "").lower() != "close", "Envoy closed the kept-alive connection"
    try:
        return r.status, json.loads(body)
    except ValueError:
        return r.status, None


def refused(gw, stem):
    """A new connection with certificate `stem` ends before any HTTP response."""
    return not gw.tls_attempt(stem).got_http_response


def doctor(dep, name, *extra):
    p = dep.pki_dir
    r = examples_lib.run_cli("doctor", "--cert", p / (name + ".crt"), "--key", p / (name + ".key"),
                             "--ca", p / "client-ca-bundle.pem", "--crl", p / "crl.pem", "--format", "json", *extra)
    assert r.returncode in (0, 1), r.stderr.decode(errors="replace")
    return json.loads(r.stdout)


def causes(report_doc):
    return {c["cause"] for c in report_doc["checks"] if c.get("cause")}


def test_a_crl_revocation_refuses_new_connections_and_the_policy_stops_live_ones(envoy_factory, workdir, tmp_path,
                                                                                  request):
    dep, src, ecds_file = published_deployment(envoy_factory, workdir, tmp_path)
    gw, pid = dep.gateway, dep.envoy.proc.pid
    victim = dep.pki_dir / "billing-2024"  # not yet blocked by any rule: INC-4712, the second leak
    live = keep_alive(gw, victim)
    status, echo = get(live)
    assert status == 200, echo
    assert not refused(gw, victim)

    # Revoke: regenerate the CRL of Shop CA 2024 and publish it to the SDS directory.
    t_revoke = time.monotonic()
    serial = pki.revoke(dep.pki_dir, "billing-2024")
    t_published = time.monotonic()
    assert wait_for(lambda: refused(gw, victim), DEADLINE, interval=0.01), "the CRL never took effect"
    t_refused = time.monotonic()
    report(request, "CRL revocation: pki.py revoke (CRLs + SDS file) %.0f ms, SDS file renamed -> first refused "
           "new connection %.0f ms, no restart" % ((t_published - t_revoke) * 1000, (t_refused - t_published) * 1000))
    # Other certificates of the same CA, and of the new CA, still connect.
    assert gw.request(dep.pki_dir / "billing-2025", "GET", "/ledger/entries").status == 200
    assert gw.request(dep.pki_dir / "billing-2025-same-serial", "GET", "/ledger/entries").status == 200

    # The caveat: the kept-alive connection passed its handshake before the
    # revocation, and Envoy does not validate it again.
    status, echo = get(live)
    assert status == 200, "the live connection was re-validated after all: %s" % echo

    # doctor names the revocation, offline from the CRL and live from Envoy's alert.
    offline = doctor(dep, "billing-2024")
    assert "revoked" in causes(offline), offline
    revoked_check = next(c for c in offline["checks"] if c.get("cause") == "revoked")
    assert serial.lower().lstrip("0") in revoked_check["summary"].lower(), revoked_check
    live_doc = doctor(dep, "billing-2024", "--connect", "%s:%d" % (gw.host, gw.port), "--server-ca",
                      dep.pki_dir / "ca.crt", "--sni", "localhost")
    assert "client_cert_revoked" in causes(live_doc), live_doc

    # The instant block: a deny rule on the serial (and issuer: serials are
    # unique per CA only), published by `mtls-authz watch`.
    watch_log = tmp_path / "watch.log"
    with open(watch_log, "wb") as log:
        watch = subprocess.Popen([str(CLI), "watch", str(src), "--out", str(ecds_file), "--wasm",
                                  str(envoy_factory.wasm_path), "--interval-ms", "50"],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 preexec_fn=_die_with_parent)
    request.addfinalizer(lambda: (watch.kill(), watch.wait(10)))
    assert wait_for(lambda: "unchanged: " in watch_log.read_text(), 10), watch_log.read_text()
    doc = json.loads(src.read_text())
    doc["revision"] = "rotation-2025-03-inc-4712"
    doc["rules"].append({"name": "revoked-billing-2024-inc-4712", "action": "deny",
                         "description": "INC-4712: blocks live connections too, which a CRL does not reach.",
                         "principals": [{"serial": serial, "issuer_cn": "Shop CA 2024"}], "paths": ["/**"]})
    t_edit = time.monotonic()
    write_atomically(src, json.dumps(doc, indent=2) + "\n")
    blocked = {}

    def live_is_denied():
        status, body = get(live)
        blocked.update(status=status, body=body)
        return status == 403

    assert wait_for(live_is_denied, DEADLINE, interval=0.01), (blocked, watch_log.read_text())
    t_blocked = time.monotonic()
    report(request, "policy deny rule: policy file edited -> live keep-alive connection denied %.0f ms "
           "(mtls-authz watch polling every 50 ms)" % ((t_blocked - t_edit) * 1000))
    assert blocked["body"]["rule"] == "revoked-billing-2024-inc-4712", blocked
    # billing-2025 on its own live connection is untouched by the new rule.
    assert gw.request(dep.pki_dir / "billing-2025", "GET", "/ledger/entries").status == 200
    live.close()
    assert dep.envoy.running() and dep.envoy.proc.pid == pid, "Envoy was restarted"
