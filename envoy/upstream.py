#!/usr/bin/env python3
"""Echo upstream for mtls-authz tests and demos (stdlib only).

Answers every request, whatever the method, with 200 and a JSON body:

    {"method": "POST",
     "path": "/api/payment/create",          # the request target exactly as received
     "headers": [["host", "..."], ...],       # every header line, in order, duplicates kept
     "trailers": [],                          # the chunked body's trailer lines, likewise
     "body_length": 0}

The echo is what lets the end-to-end suite check what the upstream really
received (the path that was authorised, the identity headers the filter set,
and that forged client headers were dropped), not only Envoy's verdict.

`path` is taken from the raw request line on purpose: http.server rewrites a
leading `//` to `/`, which would hide exactly the differences the bypass tests
look for.

Usage: upstream.py [--host 127.0.0.1] [--port 8080]
With --port 0 the OS picks a free port. Once listening, the server prints one
line `upstream listening on HOST:PORT` to stdout (and flushes it), which test
harnesses wait for.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # Envoy's delayed ACK (40 ms) on every kept-alive request.
    disable_nagle_algorithm = True

    def version_string(self):
        return "mtls-authz-echo/1"

    def _read_body(self):
        self.trailers = []
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while True:
                        line = self.rfile.readline(65537)
                        if line in (b"\r\n", b"\n", b""):
                            return bytes(body)
                        name, _, value = line.decode("latin-1").partition(":")
                        self.trailers.append([name.strip().lower(), value.strip()])
                body += self.rfile.read(size)
                self.rfile.readline(3)
                if len(body) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _echo(self):
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self.send_error(400, "bad body")
            return
        raw_line = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        parts = raw_line.split(" ")
        target = parts[1] if len(parts) >= 2 else ""
        payload = {
            "method": self.command,
            "path": target,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "trailers": self.trailers,
            "body_length": len(body),
        }
        out = (json.dumps(payload) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    # Answer any method: BaseHTTPRequestHandler dispatches to do_<METHOD>.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        sys.stderr.write("upstream: %s - %s\n" % (self.address_string(), format % args))


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client (or Envoy) closing a kept-alive connection is not an error worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    ap.add_argument("--port", type=int, default=8080, help="port to bind, 0 for any free port (default 8080)")
    args = ap.parse_args(argv)
    httpd = EchoServer((args.host, args.port), EchoHandler)
    host, port = httpd.server_address[:2]
    print("upstream listening on %s:%d" % (host, port), flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
