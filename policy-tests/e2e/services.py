"""Real services from Debian's packages, on loopback, for the suites that put
them behind Envoy (test_etcd.py, test_mqtt.py): free ports, start, wait,
stop. scripts/setup-services.sh installs them; a missing binary fails the
test with that hint rather than skipping it.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from e2e_lib import REPO, _die_with_parent, _stop, _tail

SETUP_HINT = "install it with `bash scripts/setup-services.sh` (Debian's etcd-server, etcd-client, mosquitto, mosquitto-clients)"
ETCD_TEMPLATE = REPO / "examples" / "etcd" / "envoy.template.yaml"
ETCD_POLICY = REPO / "examples" / "etcd" / "policy.json"


def need(binary):
    """The path of `binary`, or fail the test with how to install it."""
    found = shutil.which(binary) or next((str(p) for p in (Path("/usr/sbin") / binary,) if p.exists()), None)
    if not found:
        pytest.fail("%s not found: %s" % (binary, SETUP_HINT), pytrace=False)
    return found


def free_port():
    """A loopback port nobody listens on now (for services that cannot take port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, log_path, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s):\n%s" % (what, proc.returncode, _tail(log_path)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("%s not listening on %d after %ss:\n%s" % (what, port, timeout, _tail(log_path)))


class Etcd:
    """One etcd member, plain gRPC on a loopback port, data in `workdir`."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.proc = None
        self.port = None
        self.log_path = self.workdir / "etcd.log"

    def start(self):
        binary = need("etcd")
        for _ in range(5):
            self.port, peer = free_port(), free_port()
            client, peer_url = "http://127.0.0.1:%d" % self.port, "http://127.0.0.1:%d" % peer
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [binary, "--name", "e2e", "--data-dir", str(self.workdir / "data"),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", "e2e=" + peer_url, "--listen-metrics-urls", "",
                 "--log-level", "info", "--logger", "zap"],
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            try:
                wait_port(self.port, self.proc, self.log_path, "etcd")
                return self
            except RuntimeError:
                self.stop()  # lost the port race: try others
        raise RuntimeError("etcd did not start:\n%s" % _tail(self.log_path))

    def ctl(self, *args, endpoint=None, identity=None, certs=None, timeout=30, stdin=None):
        """Run etcdctl (API v3) against etcd itself, or through Envoy with `identity`'s certificate."""
        cmd = [need("etcdctl"), "--endpoints", endpoint or "http://127.0.0.1:%d" % self.port,
               "--command-timeout", "10s", "--dial-timeout", "5s"]
        if identity:
            cmd += ["--cacert", str(certs / "ca.crt"), "--cert", str(certs / (identity + ".crt")),
                    "--key", str(certs / (identity + ".key"))]
        return subprocess.run(cmd + list(args), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})

    def stop(self):
        _stop(self.proc)
        if getattr(self, "_log", None):
            self._log.close()


MQTT_TEMPLATE = REPO / "examples" / "mqtt" / "envoy.template.yaml"
MQTT_POLICY = REPO / "examples" / "mqtt" / "policy.json"


class Mosquitto:
    """One mosquitto broker, plain MQTT on a loopback port, logging every connection to a file."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.proc = None
        self.port = None
        self.log_path = self.workdir / "mosquitto.log"

    def start(self):
        binary = need("mosquitto")
        for _ in range(5):
            self.port = free_port()
            conf = self.workdir / "mosquitto.conf"
            # Its log goes to stderr (unbuffered), a file of ours: run as root, mosquitto drops to
            # its own user and could not open a log file in the test's directory.
            conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                            "log_dest stderr\nlog_type all\nconnection_messages true\n" % self.port)
            self._out = open(self.log_path, "ab")
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=self._out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent)
            try:
                wait_port(self.port, self.proc, self.log_path, "mosquitto")
                return self
            except RuntimeError:
                self.stop()
        raise RuntimeError("mosquitto did not start:\n%s" % _tail(self.log_path))

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        _stop(self.proc)
        if getattr(self, "_out", None):
            self._out.close()
