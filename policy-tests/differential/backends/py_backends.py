#!/usr/bin/env python3
"""Python backends for the differential suite: each reports its own reading of
the request path as JSON and nothing else (stdlib only).

    py_backends.py http.server   SimpleHTTPRequestHandler.translate_path: the
                                 words of the file it would open under its
                                 directory (split off ?/#, unquote, normpath,
                                 drop '.'/'..' and words with a separator),
                                 plus "" when it keeps a trailing slash.
    py_backends.py wsgiref       wsgiref.simple_server's PATH_INFO (what
                                 Django and Flask route on), its latin-1
                                 string re-read as UTF-8 the way they do.

Every answer is 200 {"readings": {NAME: {"segments": [...]}}}; a request the
server or its decoding refuses gets the server's own error status. Once
listening, prints `listening on 127.0.0.1:PORT` to stdout.
"""

import json
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# translate_path joins the words onto this; it is never read from disk.
ROOT = "/srv/differential-root"


def _answer(name, segments):
    return (json.dumps({"readings": {name: {"segments": segments}}}) + "\n").encode()


class TranslatePathHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        # self.path is the target after parse_request (which turns a leading
        # '//' into '/'), exactly what send_head() hands translate_path.
        translated = self.translate_path(self.path)
        assert translated.startswith(ROOT), translated
        rel = translated[len(ROOT):]
        segments = rel[1:].split("/") if rel not in ("", "/") else []
        body = _answer("python-http.server", segments)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def wsgi_app(environ, start_response):
    # PEP 3333: PATH_INFO is the unquoted path as latin-1 code points; Django
    # (get_path_info) and Werkzeug re-read those bytes as UTF-8.
    raw = environ.get("PATH_INFO", "").encode("iso-8859-1")
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"PATH_INFO is not UTF-8\n"]
    segments = path[1:].split("/") if path not in ("", "/") else []
    body = _answer("python-wsgiref", segments)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class QuietWSGIRequestHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "http.server":
        server = ThreadingHTTPServer(("127.0.0.1", 0), TranslatePathHandler)
    elif kind == "wsgiref":
        server = make_server("127.0.0.1", 0, wsgi_app, server_class=WSGIServer,
                             handler_class=QuietWSGIRequestHandler)
    else:
        sys.exit("usage: py_backends.py http.server|wsgiref")
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
