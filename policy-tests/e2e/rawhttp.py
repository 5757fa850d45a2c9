"""Clients that send requests exactly as written, and an upstream that remembers
what it received (for the bypass suite, test_bypass.py).

- `send_h1`: HTTP/1.1 bytes written verbatim on a mutual-TLS socket.
- `send_curl_h2`: HTTP/2 through `curl --http2 --request-target`, so the
  `:path` is exactly the given target (no dot-segment removal, no fragment
  stripping by curl).
- `send_h2_frames`: HTTP/2 from the `h2` library with its header validation
  off, for what no sane client sends (no `:path`, two `:path`s, an empty one).
- `RecordingUpstream`: envoy/upstream.py's echo handler, in this process, that
  also records every request by its `x-case-id` header, so a test can prove a
  denied request never reached the upstream (not only that Envoy said 403).

Every client returns a `Result`; a request that got no HTTP response at all (a
reset stream, a closed connection) has `status=None` and says why in `error`.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import upstream as echo_upstream  # envoy/upstream.py (e2e_lib puts envoy/ on sys.path)

IO_TIMEOUT = 10.0
CASE_HEADER = "x-case-id"


@dataclass
class Result:
    status: int = None  # None: no HTTP response (see error)
    headers: list = field(default_factory=list)  # [(lower-case name, value)]
    body: bytes = b""
    error: str = None
    protocol: str = None  # "HTTP/1.1", "2"
    more: list = field(default_factory=list)  # pipelined responses after the first
    resumed: bool = None  # send_h1_resumed: whether the TLS session was resumed

    def json(self):
        try:
            return json.loads(self.body.decode())
        except (ValueError, UnicodeDecodeError):
            return None

    def __str__(self):
        if self.status is None:
            return "no response (%s)" % self.error
        return "%s %s" % (self.status, self.body[:300].decode(errors="replace"))


# --------------------------------------------------------------------------- TLS

def tls_context(certs, identity, alpn=None):
    """Client context trusting the dev CA, presenting `identity` (a Path stem: .crt + .key; None: no certificate)."""
    ctx = ssl.create_default_context(cafile=str(Path(certs) / "ca.crt"))
    if identity is not None:
        ctx.load_cert_chain(str(identity) + ".crt", str(identity) + ".key")
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def _connect(host, port, ctx):
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    try:
        return ctx.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


# --------------------------------------------------------------------------- HTTP/1.1

def h1_request(method, target, headers=(), body=b"", host="localhost", close=True):
    """One HTTP/1.1 request, byte for byte as given (`headers`: [(name, value)], sent in order).

    `target` and header values may be str (latin-1) or bytes. A Host header is
    added first unless host is None; Content-Length when there is a body or
    the method is POST.
    """
    enc = lambda s: s if isinstance(s, bytes) else s.encode("latin-1")  # noqa: E731
    lines = [enc(method) + b" " + enc(target) + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + enc(host))
    lines += [enc(k) + b": " + enc(v) for k, v in headers]
    if body or method == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _parse_h1_responses(data, head_only=False):
    """Every complete response in `data` (Content-Length delimited, or up to EOF), in order."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/"):
            break
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
        length = next((int(v) for k, v in headers if k == "content-length"), None)
        if head_only:
            length = 0
        if length is not None and len(rest) < length:
            break
        body = rest[:length] if length is not None else rest
        r = Result(int(parts[1]), headers, body, protocol=parts[0].decode())
        r.delimited = length is not None  # else the body runs to EOF
        out.append(r)
        data = rest[len(body):]
    return out


def _read_h1(tls, request_bytes, responses, head_only):
    data = b""
    error = None
    try:
        tls.sendall(request_bytes)
        while True:
            parsed = _parse_h1_responses(data, head_only)
            if len(parsed) >= responses and all(r.delimited for r in parsed):
                break
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as e:
        error = "%s: %s" % (type(e).__name__, e)
    finally:
        tls.close()
    parsed = _parse_h1_responses(data, head_only)
    if not parsed:
        return Result(error=error or "no HTTP response; got %r" % data[:200])
    first = parsed[0]
    first.more = parsed[1:]
    return first


def send_h1(host, port, certs, identity, request_bytes, responses=1, head_only=False):
    """Write `request_bytes` on a fresh mTLS connection; return the first response
    (`.more`: the next ones, when `responses` > 1 pipelined requests were sent)."""
    try:
        tls = _connect(host, port, tls_context(certs, identity, ["http/1.1"]))
    except (OSError, ssl.SSLError) as e:
        return Result(error="TLS: %s: %s" % (type(e).__name__, e))
    return _read_h1(tls, request_bytes, responses, head_only)


def send_h1_resumed(host, port, certs, identity, request_bytes, warm_up):
    """Send `warm_up` on a first connection, then `request_bytes` on a second one
    that resumes the first's TLS session; `.resumed` says whether it did."""
    ctx = tls_context(certs, identity, ["http/1.1"])
    try:
        first = _connect(host, port, ctx)
    except (OSError, ssl.SSLError) as e:
        return Result(error="TLS: %s: %s" % (type(e).__name__, e))
    try:
        first.sendall(warm_up)
        while first.recv(65536):  # warm_up ends with Connection: close
            pass
        session = first.session  # TLS 1.3 tickets arrive after the handshake: read before closing
    except (OSError, ssl.SSLError) as e:
        return Result(error="warm-up: %s: %s" % (type(e).__name__, e))
    finally:
        first.close()
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    try:
        tls = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    except (OSError, ssl.SSLError) as e:
        sock.close()
        return Result(error="TLS resume: %s: %s" % (type(e).__name__, e))
    resumed = tls.session_reused
    r = _read_h1(tls, request_bytes, 1, False)
    r.resumed = resumed
    return r


# --------------------------------------------------------------------------- HTTP/2 via curl

def curl_path():
    return shutil.which("curl")


def send_curl_h2(host, port, certs, identity, method, target, headers=(), body=None):
    """HTTP/2 (ALPN h2, no fallback) with `:path` = `target` exactly (curl --request-target)."""
    curl = curl_path()
    if not curl:
        return Result(error="curl not found")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "body")
        hdr = os.path.join(d, "headers")
        cmd = [curl, "-sS", "--http2", "--path-as-is", "--max-time", str(int(IO_TIMEOUT)),
               "--cacert", str(Path(certs) / "ca.crt"), "--cert", str(identity) + ".crt",
               "--key", str(identity) + ".key", "--request-target", target,
               "-o", out, "-D", hdr, "-w", "%{http_code} %{http_version}",
               "-H", "Accept:", "-H", "User-Agent: mtls-authz-bypass"]
        # `-X HEAD` would make curl wait for a body that never comes.
        cmd += ["--head"] if method == "HEAD" else ["-X", method]
        for k, v in headers:
            cmd += ["-H", "%s: %s" % (k, v)]
        if body is not None:
            cmd += ["--data-binary", "@-"]
        # The URL only picks the connection; --request-target is the :path.
        cmd += ["--resolve", "localhost:%d:%s" % (port, host), "https://localhost:%d/" % port]
        p = subprocess.run(cmd, input=body or b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=IO_TIMEOUT + 5)
        code, _, version = p.stdout.decode().strip().partition(" ")
        if p.returncode != 0 or code in ("", "000"):
            return Result(error="curl exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace").strip()),
                          protocol=version or None)
        headers_out = []
        try:
            for line in Path(hdr).read_bytes().decode("latin-1").splitlines()[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    headers_out.append((k.strip().lower(), v.strip()))
        except OSError:
            pass
        data = Path(out).read_bytes() if os.path.exists(out) else b""
        return Result(int(code), headers_out, data, protocol=version)


# --------------------------------------------------------------------------- HTTP/2 raw frames

def send_h2_frames(host, port, certs, identity, headers, body=None, trailers=None):
    """Send one HTTP/2 request whose header block is `headers` exactly ([(name, value)],
    pseudo-headers included or left out as given), with h2's own checks off;
    then `body`, then `trailers` as a last header block."""
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
    except ImportError:
        return Result(error="python package h2 not installed (scripts/requirements-e2e.txt)")
    try:
        tls = _connect(host, port, tls_context(certs, identity, ["h2"]))
    except (OSError, ssl.SSLError) as e:
        return Result(error="connect: %s" % e)
    if tls.selected_alpn_protocol() != "h2":
        tls.close()
        return Result(error="server did not negotiate h2 (ALPN %r)" % tls.selected_alpn_protocol())
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                    normalize_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(cfg)
    conn.initiate_connection()
    res = Result(protocol="2")
    try:
        # Settle the connection first (preface, both SETTINGS), so that a
        # refused request shows up as what Envoy does to it (RST_STREAM,
        # GOAWAY, or a response), not as a connection torn down mid-handshake.
        tls.sendall(conn.data_to_send())
        settled = False
        while not settled:
            data = tls.recv(65536)
            if not data:
                return Result(error="connection closed before SETTINGS", protocol="2")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    settled = True
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
        sid = conn.get_next_available_stream_id()
        enc = lambda s: s if isinstance(s, bytes) else s.encode("latin-1")  # noqa: E731
        conn.send_headers(sid, [(enc(k), enc(v)) for k, v in headers], end_stream=body is None and not trailers)
        if body is not None:
            conn.send_data(sid, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(sid, [(enc(k), enc(v)) for k, v in trailers], end_stream=True)
        tls.sendall(conn.data_to_send())
        done = False
        while not done:
            data = tls.recv(65536)
            if not data:
                res.error = res.error or "connection closed"
                break
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                res.error = "client-side protocol error: %s" % e
                break
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    for k, v in ev.headers:
                        k, v = k.decode("latin-1"), v.decode("latin-1")
                        if k == ":status":
                            res.status = int(v)
                        else:
                            res.headers.append((k, v))
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    res.body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    res.error = "stream reset: %s" % getattr(ev.error_code, "name", ev.error_code)
                    done = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    res.error = "GOAWAY: %s" % getattr(ev.error_code, "name", ev.error_code)
                    done = True
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
    except (OSError, ssl.SSLError) as e:
        res.error = res.error or "%s: %s" % (type(e).__name__, e)
    finally:
        tls.close()
    if res.status is not None and res.error and res.error.startswith("connection closed"):
        res.error = None
    return res


# --------------------------------------------------------------------------- upstream

@dataclass
class Seen:
    method: str
    target: str
    headers: list  # [(lower-case name, value)], in order, duplicates kept
    body: bytes = None  # what the upstream read of the body (None: not read yet)


class RecordingUpstream:
    """The echo upstream (envoy/upstream.py's handler) in this process, recording
    each request under its x-case-id (and counting all of them)."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self._lock = threading.Lock()
        self._seen = {}
        self._count = 0
        rec = self

        class Handler(echo_upstream.EchoHandler):
            def _echo(self):
                headers = [(k.lower(), v) for k, v in self.headers.items()]
                raw_line = self.raw_requestline.decode("latin-1").rstrip("\r\n").split(" ")
                seen = Seen(self.command, raw_line[1] if len(raw_line) > 1 else "", headers)
                self._seen_record = seen
                with rec._lock:
                    rec._count += 1
                    for k, v in headers:
                        if k == CASE_HEADER:
                            rec._seen.setdefault(v, []).append(seen)
                super()._echo()

            def _read_body(self):
                body = b""
                try:
                    body = super()._read_body()
                    return body
                finally:
                    with rec._lock:
                        self._seen_record.body = body

            def log_message(self, *args):
                pass

        self._server = echo_upstream.EchoServer((host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="bypass-upstream", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def seen(self, case_id):
        with self._lock:
            return list(self._seen.get(case_id, []))

    def snapshot(self):
        """({case id: times seen}, total requests received), taken together."""
        with self._lock:
            return {k: len(v) for k, v in self._seen.items()}, self._count
