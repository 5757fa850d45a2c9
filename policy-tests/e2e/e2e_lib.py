"""Helpers for the mtls-authz end-to-end suite (stdlib only).

Processes: `Upstream` (envoy/upstream.py) and `Envoy` (a real Envoy with a
rendered config, its log captured to a file). Clients: `Gateway.request`
(http.client over TLS with a client certificate), `Gateway.raw` (bytes
written as-is on a TLS socket, for requests http.client refuses to send) and
`tls_attempt` (what happens to a connection, for the handshake tests).
"""

import http.client
import itertools
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_DIR = REPO / "envoy"
POLICY_FILE = ENVOY_DIR / "policy.json"
DEFAULT_WASM = REPO / "target" / "wasm32-wasip1" / "release" / "mtls_authz_filter.wasm"
DEFAULT_ENVOY = REPO / ".venv" / "bin" / "envoy"


def envoy_binary():
    """The Envoy to run: ENVOY_BIN (a bare name is looked up on PATH, a relative path is from the
    repository root), else the one scripts/setup.sh installs in .venv."""
    configured = os.environ.get("ENVOY_BIN")
    if not configured:
        return DEFAULT_ENVOY
    if os.sep not in configured:
        import shutil
        found = shutil.which(configured)
        return Path(found) if found else Path(configured)
    path = Path(configured)
    return path if path.is_absolute() else REPO / path
# The release CLI scripts/build.sh builds (MTLS_AUTHZ_CLI to use another).
CLI = Path(os.environ.get("MTLS_AUTHZ_CLI") or REPO / "target" / "release" / "mtls-authz")

if str(ENVOY_DIR) not in sys.path:
    sys.path.insert(0, str(ENVOY_DIR))
import render  # noqa: E402  (envoy/render.py)

import filter_constants  # noqa: E402  (filter/constants.json)

IO_TIMEOUT = 10.0
READY_TIMEOUT = float(os.environ.get("MTLS_AUTHZ_E2E_READY_TIMEOUT", "60"))

# Names the filter defines, from filter/constants.json (rendered from the Rust
# source; see filter_constants.py), never copied here.

# The filter's counters, by their short name. The full names the filter emits
# are `wasmcustom.mtls_authz.<short>` (METRIC_NAMES); `metric()` tolerates a different prefix.
METRICS = tuple(filter_constants.COUNTERS)
METRIC_NAMES = {short: c["stats"] for short, c in filter_constants.COUNTERS.items()}
METRIC_PREFIX = filter_constants.METRIC_PREFIX
# What a read of the counters waits first: three of the filter's flush periods,
# so that every response already received is counted (one period) even on a
# busy machine whose workers run their timers late.
COUNTER_SETTLE_SECONDS = 3 * filter_constants.COUNTER_FLUSH_SECONDS

PRINCIPAL_HEADER = filter_constants.PRINCIPAL_HEADER
RULE_HEADER = filter_constants.RULE_HEADER
DRY_RUN_HEADER = filter_constants.DRY_RUN_HEADER  # "deny" when a dry-run policy would have denied
REVISION_HEADER = filter_constants.REVISION_HEADER  # the policy's revision, when it has one
OWN_HEADERS = filter_constants.OWN_HEADERS  # set only by the filter


# --------------------------------------------------------------------------- processes

def _die_with_parent():
    """preexec_fn: have Linux SIGTERM the child when the test process dies,
    even if pytest itself is SIGKILLed (e.g. by a CI timeout), so no Envoy or
    upstream outlives the run."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, not on Linux
        pass


# Envoy's start-up inventory (extension lists, header maps): long and never the clue.
_NOISE = re.compile(r"\]\[info\]\[main\] \[source/server/server\.cc:\d+\]   ")


def _tail(path, lines=80):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log at %s)" % path
    kept = [l for l in text.splitlines() if not _NOISE.search(l)]
    return "\n".join(kept[-lines:])


class Upstream:
    """envoy/upstream.py on a free loopback port."""

    def __init__(self, log_path):
        self.log_path = Path(log_path)
        self.proc = None
        self.host, self.port = "127.0.0.1", None

    def start(self, timeout=15):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ENVOY_DIR / "upstream.py"), "--host", self.host, "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._log, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            if self.proc.poll() is not None:
                break
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        m = re.search(rb"listening on [^:]+:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("upstream.py did not start: %r\n%s" % (line, _tail(self.log_path)))
        self.port = int(m.group(1))
        return self

    def stop(self):
        _stop(self.proc)
        if getattr(self, "_log", None):
            self._log.close()


def _stop(proc, grace=5.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
    except ProcessLookupError:
        pass


class EnvoyExited(Exception):
    pass


_base_ids = itertools.count(1)


def unique_base_id():
    """A --base-id no other Envoy on this machine (other runs included) uses."""
    return (os.getpid() % 1_000_000) * 64 + next(_base_ids) % 64


class Envoy:
    """One Envoy process with a rendered config, its log in `<workdir>/<name>.log`."""

    def __init__(self, envoy_bin, workdir, name, config_text, concurrency=1):
        self.envoy_bin = str(envoy_bin)
        self.workdir = Path(workdir)
        self.name = name
        self.config_text = config_text
        self.concurrency = concurrency
        self.config_path = self.workdir / ("%s.yaml" % name)
        self.log_path = self.workdir / ("%s.log" % name)
        self.admin_path = self.workdir / ("%s.admin" % name)
        self.proc = None
        self.admin = None
        self.base_id = None
        self.started_by = None  # node id whose failures get this log tail (None: every failure)

    def start(self):
        self.config_path.write_text(self.config_text)
        if self.admin_path.exists():
            self.admin_path.unlink()
        self.base_id = unique_base_id()
        cmd = [self.envoy_bin, "-c", str(self.config_path), "--base-id", str(self.base_id), "-l", "info",
               "--concurrency", str(self.concurrency), "--admin-address-path", str(self.admin_path),
               "--drain-time-s", "1", "--parent-shutdown-time-s", "2"]
        self._log = open(self.log_path, "wb")
        self._log.write(("$ %s\n" % " ".join(cmd)).encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Wait for the admin /ready; raise EnvoyExited if Envoy dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise EnvoyExited("envoy %r exited with %s before becoming ready; log tail:\n%s"
                                  % (self.name, rc, self.log_tail()))
            if self.admin is None and self.admin_path.exists():
                addr = self.admin_path.read_text().strip()
                if addr:
                    self.admin = Admin(addr)
            if self.admin is not None and self.admin.is_ready():
                return self
            time.sleep(0.1)
        raise TimeoutError("envoy %r not ready after %ss; log tail:\n%s" % (self.name, timeout, self.log_tail()))

    def wait_exit(self, timeout=READY_TIMEOUT):
        """Wait for Envoy to exit by itself; return its exit code (None on timeout)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def listener_port(self, name):
        data = json.loads(self.admin.get("/listeners?format=json"))
        for l in data.get("listener_statuses", []):
            if l.get("name") == name:
                return int(l["local_address"]["socket_address"]["port_value"])
        raise KeyError("envoy %r has no listener %r" % (self.name, name))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        _stop(self.proc)
        if getattr(self, "_log", None):
            self._log.close()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=80):
        return _tail(self.log_path, lines)


def validate_config(envoy_bin, config_path, timeout=60):
    """`envoy --mode validate -c config`: (exit code, output)."""
    r = subprocess.run([str(envoy_bin), "--mode", "validate", "-c", str(config_path), "-l", "info",
                        "--base-id", str(unique_base_id())],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace")


def write_atomically(path, text):
    """What a careful editor (or `mtls-authz publish`) does: temp file, then rename."""
    tmp = path.with_name("." + path.name + ".edit")
    tmp.write_text(text)
    os.replace(tmp, path)


def wait_for(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def report(request, line):
    """Show a measurement in the test run's output (not only on failure), and keep it with the test."""
    request.node.user_properties.append(("measured", line))
    with request.getfixturevalue("capsys").disabled():
        print("\n[%s] %s" % (request.node.name, line))


# --------------------------------------------------------------------------- admin and metrics

class Admin:
    def __init__(self, hostport):
        self.hostport = hostport

    def get(self, path, timeout=IO_TIMEOUT):
        with urllib.request.urlopen("http://%s%s" % (self.hostport, path), timeout=timeout) as r:
            return r.read().decode()

    def is_ready(self):
        try:
            return self.get("/ready", timeout=2).strip() == "LIVE"
        except (OSError, http.client.HTTPException):
            return False

    def stats(self, filter_re="mtls_authz", settle=True):
        """Counters and gauges matching `filter_re`, as {name: int}.

        With `settle` (for the filter's counters) it first waits
        COUNTER_SETTLE_SECONDS: the filter's VMs sum their counts and hand
        them to Envoy on a timer tick, not with each response. Envoy's own
        stats need no wait (`settle=False`).
        """
        if settle:
            time.sleep(COUNTER_SETTLE_SECONDS)
        out = {}
        for line in self.get("/stats?filter=%s" % urllib.parse.quote(filter_re)).splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name.strip()] = int(value)
        return out

    def metric(self, short):
        return metric(self.stats(), short)


def metric(stats, short):
    """Value of the filter counter `short` (e.g. "requests_allowed") in a stats dict.

    Prefers the exact name: the counter's full name from filter/constants.json
    (`wasmcustom.mtls_authz.<short>`), or METRIC_PREFIX + short for a stat that
    is not the filter's (Envoy's ECDS `update_rejected`); otherwise accepts a
    single mtls_authz stat ending in `<short>`, so a small prefix change in the
    filter does not break every test, while ambiguity or absence fails loudly.
    """
    exact = METRIC_NAMES.get(short, METRIC_PREFIX + short)
    if exact in stats:
        return stats[exact]
    candidates = [n for n in stats if "mtls_authz" in n and re.search(r"(^|[._])%s$" % re.escape(short), n)]
    if len(candidates) == 1:
        return stats[candidates[0]]
    raise AssertionError("filter metric %r not found (expected %s); mtls_authz stats seen: %s"
                         % (short, exact, sorted(stats) or "none"))


# --------------------------------------------------------------------------- clients

@dataclass
class Response:
    status: int
    headers: list  # [(lower-case name, value)]
    body: bytes

    def header(self, name):
        vals = [v for k, v in self.headers if k == name.lower()]
        return vals[0] if vals else None

    def json(self):
        return json.loads(self.body.decode())

    @property
    def echo(self):
        """The upstream's echo ({method, path, headers}); fails if the upstream did not answer."""
        try:
            data = self.json()
        except ValueError:
            data = None
        if not (isinstance(data, dict) and "headers" in data and "path" in data):
            raise AssertionError("response did not come from the echo upstream: %d %r" % (self.status, self.body[:500]))
        return data

    def upstream_headers(self, name):
        """Every value of header `name` the upstream received."""
        return [v for k, v in self.echo["headers"] if k.lower() == name.lower()]

    def __str__(self):
        return "%d %s" % (self.status, self.body[:300].decode(errors="replace"))


@dataclass
class TlsResult:
    handshake_ok: bool
    version: str = None
    response: bytes = b""
    error: str = None

    @property
    def got_http_response(self):
        return self.response.startswith(b"HTTP/")


@dataclass
class Gateway:
    """Where the suite sends traffic: one Envoy mTLS listener and its admin."""

    host: str
    port: int
    certs: Path
    admin: Admin
    server_hostname: str = None
    raw_port: int = None  # listener with Envoy's path normalisation off (native mode only)
    envoy: Envoy = None
    extra: dict = field(default_factory=dict)

    def context(self, identity, tls_version=None):
        """TLS client context; `identity` is a cert name in the certs dir, a Path stem
        (`<stem>.crt` + `<stem>.key`), or None for no client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
        if identity:
            stem = identity if isinstance(identity, Path) else self.certs / identity
            ctx.load_cert_chain(str(stem) + ".crt", str(stem) + ".key")
        if tls_version == "1.2":
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        elif tls_version == "1.3":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx

    def _sni(self):
        return self.server_hostname or self.host

    def request(self, identity, method, path, headers=None, body=None, port=None):
        """One HTTP/1.1 request with client certificate `identity` (a name in the certs dir)."""
        conn = http.client.HTTPSConnection(self.host, port or self.port, context=self.context(identity),
                                           timeout=IO_TIMEOUT)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)
        finally:
            conn.close()

    def raw(self, identity, request_bytes, port=None, method="GET"):
        """Write `request_bytes` verbatim on a TLS connection and parse the response."""
        sock = socket.create_connection((self.host, port or self.port), timeout=IO_TIMEOUT)
        tls = self.context(identity).wrap_socket(sock, server_hostname=self._sni())
        try:
            tls.sendall(request_bytes)
            r = http.client.HTTPResponse(tls, method=method)
            r.begin()
            data = r.read()
            return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)
        finally:
            tls.close()

    def tls_attempt(self, identity, tls_version=None, port=None):
        """Connect, handshake, send a request and read: report how far it got.

        With TLS 1.3 the client finishes its handshake before the server has
        checked the client certificate, so a rejection shows up on the first
        read instead; both count as "refused" as long as no HTTP response arrives.
        """
        res = TlsResult(handshake_ok=False)
        sock = socket.create_connection((self.host, port or self.port), timeout=IO_TIMEOUT)
        try:
            tls = self.context(identity, tls_version).wrap_socket(sock, server_hostname=self._sni())
            res.handshake_ok, res.version = True, tls.version()
            tls.sendall(b"GET /api/payment/query HTTP/1.1\r\nHost: mtls-authz\r\nConnection: close\r\n\r\n")
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                res.response += chunk
        except (ssl.SSLError, OSError) as e:
            res.error = "%s: %s" % (type(e).__name__, e)
        finally:
            sock.close()
        return res


def http_request_bytes(method, target, headers, body=b"", host="mtls-authz"):
    """Build an HTTP/1.1 request byte-for-byte; `headers` is a list of (name, value), sent as given."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: %s" % host]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def policy_with(**top_level):
    """The example policy with top-level keys replaced, as JSON text."""
    doc = json.loads(POLICY_FILE.read_text())
    doc.update(top_level)
    return json.dumps(doc, indent=2) + "\n"


def issue_client_cert(certs, out_stem, subject, san=None):
    """Sign a fresh clientAuth certificate with the dev CA in `certs`; returns the Path stem.

    For tests that need a certificate no Envoy worker has seen yet.
    """
    out_stem = Path(out_stem)
    ext = out_stem.with_suffix(".ext")
    lines = ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature",
             "extendedKeyUsage = clientAuth"]
    if san:
        lines.append("subjectAltName = %s" % san)
    ext.write_text("\n".join(lines) + "\n")
    key, csr, crt = (str(out_stem) + s for s in (".key", ".csr", ".crt"))
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: E731
                                    timeout=30)
    # -utf8: a non-ASCII subject is meant as UTF-8, not as Latin-1 bytes.
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-utf8",
        "-keyout", key, "-subj", subject, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", str(Path(certs) / "ca.crt"), "-CAkey",
        str(Path(certs) / "ca.key"), "-set_serial", str(int.from_bytes(os.urandom(12), "big")), "-days", "2",
        "-extfile", str(ext), "-out", crt)
    return out_stem
