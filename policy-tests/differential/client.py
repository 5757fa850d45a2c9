"""A raw HTTP/1.1 client: the request target goes out byte for byte (no
client library re-encodes, normalises or refuses it), over a kept-alive
plain-TCP connection to a backend on loopback, reconnecting whenever the
server closes.

    conn = RawConnection("127.0.0.1", port)
    status, headers, body = conn.get(b"/a/%2Fb")     # status None: no response (error in body)
"""

import socket

IO_TIMEOUT = 10.0


class RawConnection:
    def __init__(self, host, port, timeout=IO_TIMEOUT, host_header=b"differential"):
        self.host, self.port, self.timeout = host, port, timeout
        self.host_header = host_header
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""

    def _connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, target):
        """GET `target` (bytes, sent as-is): (status, {lower-case name: value}, body)."""
        request = b"GET " + target + b" HTTP/1.1\r\nHost: " + self.host_header + b"\r\n\r\n"
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self._connect()
            try:
                self.sock.sendall(request)
                status, headers, body, keep = self._read_response()
            except (OSError, ValueError) as e:
                self.close()
                # A kept-alive connection the server had already closed: retry once on a new one.
                if not fresh and attempt == 0:
                    continue
                return None, {}, ("%s: %s" % (type(e).__name__, e)).encode()
            if not keep:
                self.close()
            return status, headers, body
        return None, {}, b"unreachable"

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed by the server")
        self.buf += chunk

    def _read_until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(marker):]
                return out
            if len(self.buf) > 1 << 20:
                raise ValueError("response head too long")
            self._recv()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_response(self):
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError("not an HTTP response: %r" % lines[0][:100])
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        keep = parts[0] == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._read_until(b"\r\n"):
                        pass
                    break
                body += self._read_exact(size)
                self._read_until(b"\r\n")
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            # Delimited by the end of the connection.
            while True:
                try:
                    self._recv()
                except ConnectionResetError:
                    break
            body, self.buf, keep = self.buf, b"", False
        return status, headers, body, keep
