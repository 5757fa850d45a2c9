"""L4 mode against a real MQTT broker: mosquitto 2.0 (Debian) on a loopback
port, plain TCP, behind Envoy's mTLS listener with the filter as a network
filter before tcp_proxy (examples/mqtt/envoy.template.yaml, the example's
policy.json). Clients are mosquitto_pub / mosquitto_sub with
device certificates signed by the dev CA.

A denied connection must be closed with nothing reaching the broker:
mosquitto's own log must show no connection, and Envoy's counter of
upstream connections to the broker must not move. The bypass and fault
cases (test_l4_*) hold the same line with hand-made clients.
"""

import socket
import ssl
import subprocess
import time

import pytest

import e2e_lib
import render
from services import MQTT_POLICY, MQTT_TEMPLATE, Mosquitto, need

pytestmark = pytest.mark.filter


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def devices(certs, tmp_path_factory):
    d = tmp_path_factory.mktemp("devices")
    return {name: e2e_lib.issue_client_cert(certs, d / name, subject)
            for name, subject in [("dev-0001", "/OU=fleet/CN=dev-0001"), ("dev-0013", "/OU=fleet/CN=dev-0013"),
                                  ("laptop", "/OU=office/CN=laptop")]}


@pytest.fixture(scope="module")
def front(request, envoy_factory, broker):
    env = envoy_factory.start(
        "mqtt", MQTT_POLICY.read_text(), listeners=[render.Listener("mqtt", "127.0.0.1", 0)],
        policy_origin="examples/mqtt/policy.json", template_path=str(MQTT_TEMPLATE),
        owner=request.node.nodeid, upstream=("127.0.0.1", broker.port))
    env.port = env.listener_port("mqtt")
    return env


def upstream_connections(env):
    return env.admin.stats("cluster.broker.upstream_cx_total", settle=False).get("cluster.broker.upstream_cx_total", 0)


def counter(env, short):
    return env.admin.metric(short)


def mqtt(tool, front, certs, stem, *args, timeout=20):
    cmd = [need(tool), "-h", "127.0.0.1", "-p", str(front.port), "--cafile", str(certs / "ca.crt"),
           "--cert", str(stem) + ".crt", "--key", str(stem) + ".key", "-V", "mqttv311"] + list(args)
    return cmd if tool == "mosquitto_sub" else subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                              timeout=timeout)


class Quiet:
    """Asserts that nothing reached the broker while the block ran."""

    def __init__(self, broker, front):
        self.broker, self.front = broker, front

    def __enter__(self):
        self.log_at = len(self.broker.log())
        self.cx = upstream_connections(self.front)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            time.sleep(0.5)
            new = self.broker.log()[self.log_at:]
            assert "New connection" not in new and "New client" not in new, new
            assert upstream_connections(self.front) == self.cx, "Envoy opened a connection to the broker"


def test_a_fleet_device_publishes_and_its_message_arrives(front, broker, certs, devices):
    sub = subprocess.Popen(mqtt("mosquitto_sub", front, certs, devices["dev-0001"], "-t", "telemetry/#", "-C", "1",
                                "-W", "20", "-i", "ops-sub"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while "New client connected" not in broker.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        allowed = counter(front, "connections_allowed")
        r = mqtt("mosquitto_pub", front, certs, devices["dev-0001"], "-t", "telemetry/dev-0001", "-m", "21.5C",
                 "-i", "dev-0001")
        assert r.returncode == 0, r
        out, err = sub.communicate(timeout=20)
        assert out.strip() == b"21.5C", (out, err)
    finally:
        sub.kill()
        sub.wait(5)
    assert counter(front, "connections_allowed") == allowed + 1
    assert "as dev-0001" in broker.log()
    assert 'mtls-authz: connection allow principal="cn=dev-0001"' in front.log_text()


@pytest.mark.parametrize("device,rule", [("dev-0013", "rule=stolen-devices"), ("laptop", "rule=default")])
def test_a_denied_certificate_is_closed_and_the_broker_sees_no_client(front, broker, certs, devices, device, rule):
    denied = counter(front, "connections_denied")
    with Quiet(broker, front):
        r = mqtt("mosquitto_pub", front, certs, devices[device], "-t", "telemetry/x", "-m", "forged", "-i", device)
        assert r.returncode != 0, r
    assert counter(front, "connections_denied") == denied + 1
    lines = [l for l in front.log_text().splitlines() if "connection deny" in l and "cn=%s" % device in l]
    assert lines and rule in lines[-1] and "revision=mqtt-1" in lines[-1], lines


def test_an_untrusted_ca_fails_the_handshake(front, broker, certs):
    decided = counter(front, "connections_denied") + counter(front, "connections_allowed")
    with Quiet(broker, front):
        r = mqtt("mosquitto_pub", front, certs, certs / "untrusted", "-t", "telemetry/x", "-m", "x")
        assert r.returncode != 0, r
    assert counter(front, "connections_denied") + counter(front, "connections_allowed") == decided, \
        "refused by TLS, before the filter"


# --------------------------------------------------------------------------- L4 bypasses and faults

def tls_context(certs, stem=None, tls13=False):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if stem is not None:
        ctx.load_cert_chain(str(stem) + ".crt", str(stem) + ".key")
    if tls13:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def closed_by_peer(sock, timeout=5):
    """True once the peer closes (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError, ssl.SSLEOFError):
        return True
    except socket.timeout:
        return False


def test_l4_bytes_before_or_during_the_handshake_reach_nobody(front, broker, certs, devices):
    connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04evil"
    with Quiet(broker, front):
        # Plain MQTT where TLS is expected: not a ClientHello.
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as s:
            s.sendall(connect * 50)
            assert closed_by_peer(s)
        # A real ClientHello, then MQTT bytes before the handshake is done.
        ctx = tls_context(certs, devices["dev-0001"])
        raw = socket.create_connection(("127.0.0.1", front.port), timeout=5)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        raw.sendall(outgoing.read() + connect)
        assert closed_by_peer(raw)
        raw.close()


def test_l4_no_client_certificate_is_refused_by_tls(front, broker, certs):
    decided = counter(front, "connections_denied") + counter(front, "connections_allowed")
    with Quiet(broker, front):
        for tls13 in (False, True):
            try:
                with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
                    with tls_context(certs, None, tls13).wrap_socket(raw, server_hostname="localhost") as s:
                        # TLS 1.3 reports the missing certificate only after the client's Finished.
                        s.sendall(b"\x10\x00")
                        assert closed_by_peer(s)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                pass
    assert counter(front, "connections_denied") + counter(front, "connections_allowed") == decided


def test_l4_a_large_first_segment_of_a_denied_connection_is_not_forwarded(front, broker, certs, devices):
    denied = counter(front, "connections_denied")
    with Quiet(broker, front):
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
            with tls_context(certs, devices["dev-0013"]).wrap_socket(raw, server_hostname="localhost") as s:
                try:
                    s.sendall(b"\x10" + b"A" * (1 << 20))
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    pass
                assert closed_by_peer(s)
    assert counter(front, "connections_denied") == denied + 1


def test_l4_a_silent_client_is_never_connected_upstream(front, broker, certs, devices):
    """A server-first protocol's client waits for the server to speak. The
    filter decides on the first byte from the client, so such a client is
    never decided: Envoy opens no upstream connection (the broker sees
    nothing, so it never speaks) and the connection stays open, undecided,
    until the client gives up; tcp_proxy, not yet running, has no idle timer
    on it. When the client then closes without having sent a byte, the
    filter closes the connection without deciding: still no upstream
    connection. examples/mqtt/README.md says what this means for
    server-first services."""
    decided = counter(front, "connections_denied") + counter(front, "connections_allowed")
    with Quiet(broker, front):
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
            with tls_context(certs, devices["dev-0001"]).wrap_socket(raw, server_hostname="localhost") as s:
                assert not closed_by_peer(s, timeout=3), "still open, still undecided"
    assert counter(front, "connections_denied") + counter(front, "connections_allowed") == decided


def test_l4_tls13_early_data_is_not_accepted(front, broker, certs, devices, tmp_path):
    """A resumed TLS 1.3 session may carry 0-RTT data, sent before the
    handshake is done. Envoy's session tickets do not offer early data on a
    TCP listener (openssl then reports "Early data was not sent"; a client
    that sent it anyway would be refused it), so such bytes are never
    application data, let alone forwarded before the decision. (An undecided connection gets no session ticket at all:
    BoringSSL sends tickets with the server's first write, and nothing is
    written before the decision. So the ticket comes from an allowed
    device's connection that the broker answered.)"""
    openssl = need("openssl")
    sess = tmp_path / "sess.pem"
    early = tmp_path / "early.bin"
    connect = b"\x10\x12\x00\x04MQTT\x04\x02\x00\x3c\x00\x06early1"
    early.write_bytes(connect)
    base = [openssl, "s_client", "-connect", "127.0.0.1:%d" % front.port, "-CAfile", str(certs / "ca.crt"),
            "-cert", str(devices["dev-0001"]) + ".crt", "-key", str(devices["dev-0001"]) + ".key", "-tls1_3",
            "-servername", "localhost", "-ign_eof"]
    first = subprocess.Popen(base + ["-sess_out", str(sess)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    first.stdin.write(connect)
    first.stdin.flush()
    deadline = time.monotonic() + 10
    while not sess.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()
    first_out = first.communicate(timeout=20)[0].decode(errors="replace")
    assert sess.exists(), "no session ticket to resume: %s" % first_out
    with Quiet(broker, front):
        # Resumed, with the CONNECT as early data and nothing after it: only 0-RTT could carry it upstream.
        second = subprocess.run([a for a in base if a != "-ign_eof"] + ["-sess_in", str(sess), "-early_data", str(early)],
                                input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    out = second.stdout.decode(errors="replace")
    assert "Reused, TLSv1.3" in out, "the session was not resumed, so no early data was tried: %s" % out
    assert "Early data was accepted" not in out, out


def test_l4_a_thousand_connections_leak_nothing(front, broker, certs, devices):
    stats = lambda: front.admin.stats("mtls_authz|downstream_cx_active|upstream_cx_active|cx_destroy")  # noqa: E731
    allowed_before = counter(front, "connections_allowed")
    denied_before = counter(front, "connections_denied")
    parsed_before = counter(front, "certificates_parsed")
    good, bad = tls_context(certs, devices["dev-0001"]), tls_context(certs, devices["dev-0013"])
    # An MQTT CONNECT the broker answers with CONNACK, then DISCONNECT.
    connect = b"\x10\x12\x00\x04MQTT\x04\x02\x00\x3c\x00\x06loop-1"
    for i in range(1000):
        ctx = good if i % 2 == 0 else bad
        with socket.create_connection(("127.0.0.1", front.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                try:
                    s.sendall(connect)
                    if i % 2 == 0:
                        assert s.recv(4)[:1] == b"\x20", "CONNACK"
                        s.sendall(b"\xe0\x00")
                    else:
                        closed_by_peer(s)
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    assert i % 2 == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = stats()
        if all(v == 0 for k, v in now.items() if k.endswith("_cx_active") and k.startswith(("listener.", "cluster.broker"))):
            break
        time.sleep(0.2)
    gauges = {k: v for k, v in now.items() if k.endswith("_cx_active") and k.startswith(("listener.127", "cluster.broker"))}
    assert "cluster.broker.upstream_cx_active" in gauges and any(k.startswith("listener.127") for k in gauges), now
    assert not any(gauges.values()), "connections left open: %s" % gauges
    assert counter(front, "connections_allowed") - allowed_before == 500
    assert counter(front, "connections_denied") - denied_before == 500
    # Two certificates, each parsed at most once per worker VM: the cache, not 1,000 parses.
    assert counter(front, "certificates_parsed") - parsed_before <= 2
