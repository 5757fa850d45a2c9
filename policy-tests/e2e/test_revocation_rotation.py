"""examples/revocation-rotation for real: revoke by CRL, block by policy, rotate CAs and certificates.

One Envoy per test, never restarted (its pid is checked at the end), with the
listener certificate and the trusted client CAs + CRLs from file-watched SDS
(examples/pki.py publish) and the policy by ECDS (`mtls-authz watch`). Times
are measured and printed (`[test] ...` lines, also in the JUnit properties);
they are bounded only by generous deadlines, never asserted as performance.
"""

import http.client
import json
import ssl
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
    """A new connection with certificate `stem` ends before any HTTP response.

    A request read by its Content-Length, not a read to EOF: Envoy holds a
    connection it answered with `Connection: close` open for its
    delayed_close_timeout (1 s), which would swamp the times measured here.
    """
    try:
        gw.request(stem, "GET", "/ledger/entries")
    except (ssl.SSLError, OSError, http.client.HTTPException):
        return True
    return False


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


# --------------------------------------------------------------------------- rotation under load

class Load:
    """Requests at a bounded rate until stopped: kept-alive connections that outlive the
    rotation, and a new connection per request with whatever certificate the client holds now."""

    def __init__(self, gw, keep_alive_stems, rate=60):
        import threading
        self.gw, self.rate = gw, rate
        self.current = None  # the certificate new connections present (a client's rotated cert)
        self.samples = []  # (worker, t, status, error)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._contexts = {}
        workers = [("keep-alive-%d %s" % (i, s.name), s) for i, s in enumerate(keep_alive_stems)]
        workers += [("new-conn-%d" % i, None) for i in range(2)]
        self.threads = [threading.Thread(target=self._run, args=w, daemon=True) for w in workers]

    def context(self, stem):
        with self.lock:
            if stem not in self._contexts:
                self._contexts[stem] = self.gw.context(stem)
            return self._contexts[stem]

    def start(self, current):
        self.current = current
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self.samples

    def _run(self, name, stem):
        conn, n = None, 0
        while not self.stop.is_set() and n < self.rate * 120:  # bounded: two minutes at most
            n += 1
            status, error = None, None
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(self.gw.host, self.gw.port, timeout=e2e_lib.IO_TIMEOUT,
                                                       context=self.context(stem or self.current))
                conn.request("GET", "/ledger/entries")
                r = conn.getresponse()
                r.read()
                status = r.status
                if stem is None or r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                error = "%s: %s" % (type(e).__name__, e)
                conn = None
            with self.lock:
                self.samples.append((name, time.monotonic(), status, error))
            self.stop.wait(1.0 / self.rate)
        if conn is not None:
            conn.close()


def served_certificate(gw, stem):
    """SHA-256 of the certificate Envoy presents on a new connection."""
    import hashlib
    import socket
    with socket.create_connection((gw.host, gw.port), timeout=e2e_lib.IO_TIMEOUT) as sock:
        with gw.context(stem).wrap_socket(sock, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def test_ca_and_server_certificate_rotation_under_load_without_a_failed_request(envoy_factory, workdir, tmp_path,
                                                                                 request):
    pki_dir = examples_lib.generate_pki(tmp_path, EXAMPLE)
    p = lambda name: pki_dir / name  # noqa: E731
    pki.publish(pki_dir, trust=["shop-ca-2024"])  # before the rotation: the old CA only
    dep = examples_lib.start(envoy_factory, workdir, EXAMPLE, pki_dir=pki_dir)
    gw, pid = dep.gateway, dep.envoy.proc.pid
    assert refused(gw, p("billing-2025")), "the new CA is trusted before step 1"
    old_server = served_certificate(gw, p("billing-2024"))
    timings = []

    def step(name, change, took_effect):
        t0 = time.monotonic()
        change()
        t1 = time.monotonic()
        assert wait_for(took_effect, DEADLINE, interval=0.01), "%s never took effect" % name
        timings.append("%s: publish %.0f ms, in effect %.0f ms after the SDS file was renamed"
                       % (name, (t1 - t0) * 1000, (time.monotonic() - t1) * 1000))

    load = Load(gw, [p("billing-2024"), p("billing-2024")]).start(current=p("billing-2024"))
    try:
        time.sleep(1.0)
        # 1. Trust old and new.
        step("1 trust both CAs", lambda: pki.publish(pki_dir, trust=["shop-ca-2024", "shop-ca-2025"]),
             lambda: not refused(gw, p("billing-2025")))
        time.sleep(1.0)
        # 2. Reissue the leaves from the new CA; clients present the new certificate.
        rotated = pki.issue(pki_dir, "billing-rotated", "shop-ca-2025", "/O=shop/CN=billing")
        load.current = pki_dir / "billing-rotated"
        assert gw.request(load.current, "GET", "/ledger/entries").header("content-type") == "application/json"
        time.sleep(1.0)
        # 3. Drop the old CA.
        step("3 drop the old CA", lambda: pki.publish(pki_dir, trust=["shop-ca-2025"]),
             lambda: refused(gw, p("billing-2024")))
        t_dropped = time.monotonic()
        time.sleep(1.0)
        # And a server certificate rotation (same server CA, new key).
        pki.issue(pki_dir, "server-2", "ca", "/CN=envoy", eku="serverAuth", san=pki.SERVER_SAN)
        new_server = pki.sha256_of(pki_dir / "server-2.crt")
        step("server certificate", lambda: pki.publish(pki_dir, server="server-2"),
             lambda: served_certificate(gw, load.current) == new_server)
        time.sleep(1.0)
    finally:
        samples = load.finish()
    for line in timings:
        report(request, "rotation %s" % line)
    failed = [s for s in samples if s[3] or s[2] != 200]
    per_worker = {}
    for name, _, _, _ in samples:
        per_worker[name] = per_worker.get(name, 0) + 1
    report(request, "rotation load: %d requests (%s), %d failed or reset"
           % (len(samples), ", ".join("%s %d" % kv for kv in sorted(per_worker.items())), len(failed)))
    assert not failed, "failed or reset during the rotation: %s" % failed[:5]
    assert all(n >= 10 for n in per_worker.values()), per_worker
    # Connections opened with an old-CA certificate before step 3 are still
    # served: like a revocation, dropping a CA is checked at the handshake only.
    old_live = [s for s in samples if s[0].startswith("keep-alive") and s[1] > t_dropped + 0.5]
    report(request, "rotation: %d requests on kept-alive old-CA connections after the old CA was dropped, all "
           "served (not re-validated)" % len(old_live))
    assert old_live and all(s[2] == 200 for s in old_live)
    # After step 3 the old-CA client is refused on a new connection; the rotated one is served.
    assert refused(gw, p("billing-2024"))
    assert gw.request(rotated.with_suffix(""), "POST", "/ledger/entries").status == 200
    assert old_server != new_server
    assert dep.envoy.running() and dep.envoy.proc.pid == pid, "Envoy was restarted"
