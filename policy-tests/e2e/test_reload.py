"""Live policy reload: edit the policy, the running Envoy enforces it.

The workflow under test is the documented one: Envoy's HTTP filter is
configured by ECDS from a file (render.py --ecds-dir), `mtls-authz watch`
turns every valid edit of policy.json into that file (temp file + rename), and
Envoy swaps the filter configuration without a restart.

Under steady load (keep-alive connections and new connections, from several
threads), the policy is edited so that report-service loses access, then an
invalid edit and a broken resource written behind the CLI's back are refused,
then access comes back. Every response must be the old or the new decision,
judged by the revision the filter names on it (x-mtls-authz-policy-revision),
with no 5xx and no connection error; the switch must land within 2 s of the
edit. The measured times are printed (pytest -s, or the -rA summary).
"""

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import e2e_lib
from e2e_lib import (ENVOY_DIR, POLICY_FILE, REPO, REVISION_HEADER, RULE_HEADER, _die_with_parent, render, report,
                      validate_config, wait_for, write_atomically)

pytestmark = pytest.mark.filter

CLI = Path(os.environ.get("MTLS_AUTHZ_CLI") or REPO / "target" / "release" / "mtls-authz")
DEADLINE = 2.0  # seconds from the edit to the new policy on every request
ECDS = "extension_config_discovery.http_filter.mtls_authz."

GOOD_PATH = '"/api/payment/create"'
BAD_PATH = '"api/payment/create"'  # a path pattern must start with "/"
SUSPENDED = {"name": "reports-suspended", "action": "deny", "principals": [{"cn": "report-service"}],
             "paths": ["/api/payment/query", "/api/payment/query/**"]}


def cli(*args, cwd=None):
    if not CLI.is_file():
        pytest.fail("no mtls-authz CLI at %s; build it with `bash scripts/build.sh`" % CLI, pytrace=False)
    return subprocess.run([str(CLI), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, cwd=cwd)


def policy_text(revision, suspend_reports=False):
    doc = json.loads(POLICY_FILE.read_text())
    doc["revision"] = revision
    if suspend_reports:
        doc["rules"].append(SUSPENDED)
    return json.dumps(doc, indent=2) + "\n"


def broken(text):
    """`text` with rules[0].paths[0] made invalid; (text, line, column) of the bad value."""
    assert text.count(GOOD_PATH) == 1, "envoy/policy.json changed shape; update this test"
    bad = text.replace(GOOD_PATH, BAD_PATH)
    offset = bad.index(BAD_PATH)
    return bad, bad.count("\n", 0, offset) + 1, offset - (bad.rfind("\n", 0, offset) + 1) + 1


def version_text(admin):
    m = re.search(r"^%sversion_text: \"(.*)\"$" % re.escape(ECDS), admin.get("/stats?filter=version_text"), re.M)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- publish (no Envoy)

def test_publish_refuses_a_broken_policy_and_leaves_the_file(tmp_path):
    src = tmp_path / "policy.json"
    out_dir = tmp_path / "ecds"
    out_dir.mkdir()
    out = out_dir / "mtls_authz.yaml"
    src.write_text(policy_text("p1"))
    r = cli("publish", src, "--out", out, "--wasm", "/x/filter.wasm")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().startswith("published %s -> %s (3 rules, mode=enforce, revision=p1, sha256=" % (src, out))
    before = out.read_bytes()
    st = out.stat()

    bad, line, col = broken(policy_text("p2"))
    src.write_text(bad)
    r = cli("publish", src, "--out", out)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    check = cli("check", src)
    assert check.returncode == 1
    # The very lines `mtls-authz check` prints, then one line saying nothing was written.
    assert err.startswith(check.stderr.decode()), (err, check.stderr.decode())
    assert "%s:%d:%d: rules[0].paths[0]: a path pattern must start with '/'" % (src, line, col) in err, err
    assert "not published" in err and "was not changed" in err, err
    assert out.read_bytes() == before
    assert (out.stat().st_ino, out.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns), "the file was replaced"
    assert sorted(p.name for p in out_dir.iterdir()) == ["mtls_authz.yaml"], "a temporary file was left behind"

    r = cli("publish", src.with_name("missing.json"), "--out", out)
    assert r.returncode == 2, r.stderr.decode()
    r = cli("publish", POLICY_FILE, "--out", tmp_path / "no-such-dir" / "mtls_authz.yaml")
    assert r.returncode == 2 and b"does not exist" in r.stderr, r.stderr.decode()
    # Envoy reads a resource by its file name's extension; publish writes only names it can say what they are.
    r = cli("publish", POLICY_FILE, "--out", out_dir / "mtls_authz.txt")
    assert r.returncode == 2 and b"must end in .yaml, .yml, .json or .pb" in r.stderr, r.stderr.decode()
    assert sorted(p.name for p in out_dir.iterdir()) == ["mtls_authz.yaml"]


@pytest.mark.parametrize("text", [
    '{"version": 1, "default_action": "deny", "rules": []}',                               # no final newline
    '{\n\t"version": 1,\n\t"default_action": "deny",\n\t"rules": []\n}\n',                # tabs: quoted form
    '{"version": 1, "default_action": "deny", "rules": [],\n "description": "caf\u00e9 \u2028 \U0001F600 #: |"}\n\n',
    ' {"version": 1, "default_action": "deny", "rules": []}\n',                           # leading space
    '{"version": 1,\r\n"default_action": "deny", "rules": []}\r\n',                       # CRLF
    POLICY_FILE.read_text(),
])
@pytest.mark.parametrize("name", ["mtls_authz.yaml", "mtls_authz.json"])
def test_published_resource_carries_the_policy_byte_for_byte(tmp_path, text, name):
    src = tmp_path / "p.json"
    src.write_bytes(text.encode())
    out = tmp_path / name
    r = cli("publish", src, "--out", out, "--wasm", "/x/filter.wasm")
    assert r.returncode == 0, r.stderr.decode()
    doc = json.loads(out.read_text()) if name.endswith(".json") else yaml.safe_load(out.read_text())
    (res,) = doc["resources"]
    assert res["@type"] == "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    assert res["name"] == "mtls_authz"
    cfg = res["typed_config"]["config"]
    assert res["typed_config"]["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    assert cfg["vm_config"] == {"vm_id": "mtls_authz", "runtime": "envoy.wasm.runtime.v8",
                                "code": {"local": {"filename": "/x/filter.wasm"}}}
    assert cfg["failure_policy"] == "FAIL_CLOSED"
    assert cfg["configuration"]["value"] == text
    assert re.fullmatch(r"revision=- sha256=[0-9a-f]{16}", doc["version_info"]), doc["version_info"]


def test_committed_ecds_example_is_in_sync(tmp_path):
    """envoy/envoy-ecds.yaml renders from the template; envoy/ecds/mtls_authz.yaml is envoy/policy.json published."""
    expected = render.render("", ecds_dir="/etc/envoy/policy",
                             regenerate="python3 envoy/render.py --ecds-dir /etc/envoy/policy --out envoy/envoy-ecds.yaml")
    assert (ENVOY_DIR / "envoy-ecds.yaml").read_text() == expected, \
        "envoy/envoy-ecds.yaml is out of date; run: python3 envoy/render.py --ecds-dir /etc/envoy/policy --out envoy/envoy-ecds.yaml"
    out = tmp_path / "mtls_authz.yaml"
    r = cli("publish", "envoy/policy.json", "--out", out, cwd=REPO)
    assert r.returncode == 0, r.stderr.decode()
    assert (ENVOY_DIR / "ecds" / "mtls_authz.yaml").read_text() == out.read_text(), \
        "envoy/ecds/mtls_authz.yaml is out of date; run: mtls-authz publish envoy/policy.json --out envoy/ecds/mtls_authz.yaml"


def test_ecds_bootstrap_is_accepted_by_envoy(envoy_factory, workdir, tmp_path):
    ecds_dir = tmp_path / "ecds"
    ecds_dir.mkdir()
    r = cli("publish", POLICY_FILE, "--out", ecds_dir / "mtls_authz.yaml", "--wasm", envoy_factory.wasm_path)
    assert r.returncode == 0, r.stderr.decode()
    config = workdir / "ecds-validate.yaml"
    config.write_text(envoy_factory.config("", ecds_dir=str(ecds_dir)))
    rc, out = validate_config(envoy_factory.envoy_bin, config)
    assert rc == 0, out[-3000:]


def published_ecds(work, name, revision, wasm):
    """An ECDS directory under `work` holding the test policy at `revision`,
    published as `name`: (the directory, the resource, the policy source)."""
    ecds_dir = work / "ecds"
    ecds_dir.mkdir()
    out = ecds_dir / name
    src = work / "policy.json"
    src.write_text(policy_text(revision))
    r = cli("publish", src, "--out", out, "--wasm", wasm)
    assert r.returncode == 0, r.stderr.decode()
    return ecds_dir, out, src


@pytest.mark.parametrize("fmt", ["json", "pb"])
def test_json_and_protobuf_resources_reload_like_the_yaml_one(envoy_factory, tmp_path, fmt):
    """`publish --out DIR/mtls_authz.json` or `.pb` (render.py's ecds_file): Envoy reads
    the JSON or binary protobuf resource, enforces its policy and reloads it."""
    ecds_dir, out, src = published_ecds(tmp_path, "mtls_authz." + fmt, fmt + "-r1", envoy_factory.wasm_path)
    env = envoy_factory.start("ecds-" + fmt, "", ecds_dir=str(ecds_dir), ecds_file=out.name)
    gw = envoy_factory.gateway(env)
    assert version_text(env.admin).startswith("revision=%s-r1 " % fmt), version_text(env.admin)
    assert gw.request("report-service", "GET", "/api/payment/query").status == 200
    assert gw.request("unknown-service", "GET", "/api/payment/query").status == 403

    src.write_text(policy_text(fmt + "-r2", suspend_reports=True))
    r = cli("publish", src, "--out", out, "--wasm", envoy_factory.wasm_path)
    assert r.returncode == 0, r.stderr.decode()
    assert wait_for(lambda: version_text(env.admin).startswith("revision=%s-r2 " % fmt), 10), version_text(env.admin)
    assert wait_for(lambda: gw.request("report-service", "GET", "/api/payment/query").status == 403, 5)
    assert gw.request("order-service", "POST", "/api/payment/create", body=b"{}").status == 200
    assert e2e_lib.metric(env.admin.stats("mtls_authz"), "update_rejected") == 0


# --------------------------------------------------------------------------- live reload under load

@dataclass
class Sample:
    worker: str
    conn: int           # connection number within the worker
    identity: str
    t_send: float
    t_recv: float
    status: int = None
    revision: str = None
    rule: str = None
    error: str = None


class Load:
    """Bounded steady load: each worker sends at most `rate` requests a second."""

    WORKERS = (
        # name, identity, method, path, keep-alive
        ("ka-report-1", "report-service", "GET", "/api/payment/query", True),
        ("ka-report-2", "report-service", "GET", "/api/payment/query/42", True),
        ("ka-order", "order-service", "POST", "/api/payment/create", True),
        ("new-conn", None, None, None, False),  # a new connection per request, alternating identities
    )

    def __init__(self, gateway, rate=250):
        self.gw, self.rate = gateway, rate
        self.samples = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=w, daemon=True) for w in self.WORKERS]
        self.contexts = {i: gateway.context(i) for i in ("report-service", "order-service")}

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self.samples

    def _conn(self, identity):
        import http.client
        return http.client.HTTPSConnection(self.gw.host, self.gw.port, context=self.contexts[identity],
                                           timeout=e2e_lib.IO_TIMEOUT)

    def _run(self, name, identity, method, path, keep_alive):
        conn, conn_no, n = None, 0, 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            if keep_alive:
                who, m, p = identity, method, path
            else:
                who, m, p = (("report-service", "GET", "/api/payment/query") if n % 2 == 0
                             else ("order-service", "POST", "/api/payment/create"))
            if conn is None:
                conn, conn_no = self._conn(who), conn_no + 1
            s = Sample(name, conn_no, who, time.monotonic(), None)
            try:
                conn.request(m, p, body=b"{}" if m == "POST" else None, headers={"content-type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                s.status = r.status
                if r.status == 200:
                    echo = json.loads(body)
                    hdrs = {k.lower(): v for k, v in echo["headers"]}
                    s.revision, s.rule = hdrs.get(REVISION_HEADER), hdrs.get(RULE_HEADER)
                elif r.status == 403:
                    s.revision = r.getheader(REVISION_HEADER)
                    s.rule = json.loads(body).get("rule")
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                s.error = "%s: %s" % (type(e).__name__, e)
                conn.close()
                conn = None
            s.t_recv = time.monotonic()
            with self.lock:
                self.samples.append(s)
            n += 1
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
            next_at += 1.0 / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()


class FileWatch:
    """Notes when `path` is replaced (its inode changes), polling every millisecond."""

    def __init__(self, path):
        self.path, self.events = path, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _ino(self):
        try:
            return self.path.stat().st_ino
        except OSError:
            return None

    def _run(self):
        last = self._ino()
        while not self.stop.is_set():
            ino = self._ino()
            if ino != last:
                self.events.append(time.monotonic())
                last = ino
            time.sleep(0.001)

    def replaced_after(self, t):
        return next((e for e in self.events if e >= t), None)


def expected_status(identity, revision):
    """The decision each policy version makes for the load's requests."""
    if identity == "order-service":
        return 200
    return {"reload-r1": 200, "reload-r2": 403, "reload-r3": 200}[revision]


@dataclass
class Switch:
    name: str
    new_revision: str
    t_edit: float
    t_rename: float = None
    first_new: float = None     # first response decided by the new revision (receive time)
    last_old_sent: float = None  # last request decided by an older revision (send time)

    def report(self):
        ms = lambda a, b: "%.0f ms" % ((a - b) * 1000) if a is not None and b is not None else "n/a"  # noqa: E731
        return ("%s: edit->published (watch) %s, published->first new decision %s, edit->first new decision %s, "
                "last old decision sent %s after the edit"
                % (self.name, ms(self.t_rename, self.t_edit), ms(self.first_new, self.t_rename),
                   ms(self.first_new, self.t_edit), ms(self.last_old_sent, self.t_edit)))


def analyse(switch, samples, order):
    """When the new version first decided, and the last request (sent after the edit) the old one decided."""
    old = order[order.index(switch.new_revision) - 1]
    switch.first_new = min((s.t_recv for s in samples if s.revision == switch.new_revision), default=None)
    switch.last_old_sent = max((s.t_send for s in samples if s.revision == old and s.t_send >= switch.t_edit),
                               default=None)


def test_policy_reload_under_load(envoy_factory, tmp_path, request):
    work = tmp_path
    ecds_dir, out, src = published_ecds(work, "mtls_authz.yaml", "reload-r1", envoy_factory.wasm_path)

    env = envoy_factory.start("reload", "", concurrency=2, ecds_dir=str(ecds_dir))
    gw = envoy_factory.gateway(env)
    admin = env.admin

    # The operator's side: `mtls-authz watch` publishing every edit of policy.json.
    watch_log = work / "watch.log"
    with open(watch_log, "wb") as log:
        watch = subprocess.Popen([str(CLI), "watch", str(src), "--out", str(out), "--wasm", str(envoy_factory.wasm_path)],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 preexec_fn=_die_with_parent)
    request.addfinalizer(lambda: (watch.kill(), watch.wait(10)))
    assert wait_for(lambda: "unchanged: " in watch_log.read_text(), 10), watch_log.read_text()

    # Every worker's VM has seen both certificates before the first reload, so a
    # VM that survives the reloads parses none of them again.
    for _ in range(12):
        for who, m, p in (("report-service", "GET", "/api/payment/query"),
                          ("order-service", "POST", "/api/payment/create")):
            assert gw.request(who, m, p, body=b"{}" if m == "POST" else None).status == 200
    before = admin.stats("mtls_authz|wasm")
    assert version_text(admin).startswith("revision=reload-r1 ")

    files = FileWatch(out)
    files.thread.start()
    load = Load(gw).start()
    order = ["reload-r1", "reload-r2", "reload-r3"]
    switches = []
    try:
        time.sleep(1.5)

        # 1. report-service loses access.
        revoke = Switch("revoke", "reload-r2", time.monotonic())
        write_atomically(src, policy_text("reload-r2", suspend_reports=True))
        switches.append(revoke)
        assert wait_for(lambda: version_text(admin).startswith("revision=reload-r2 "), 5), watch_log.read_text()
        time.sleep(1.5)

        # 2. An invalid edit: `watch` refuses it, the resource file is not touched.
        bad_edit_at = time.monotonic()
        bad, line, col = broken(policy_text("reload-bad", suspend_reports=True))
        write_atomically(src, bad)
        assert wait_for(lambda: "refused " in watch_log.read_text(), 3), watch_log.read_text()
        time.sleep(0.5)
        assert files.replaced_after(bad_edit_at) is None, "watch replaced the resource with an invalid policy"

        # 3. A broken resource behind the CLI's back (by hand, or a bad control
        # plane): Envoy itself refuses it and keeps the last good policy.
        stats_before_broken = admin.stats("mtls_authz")
        log_mark = len(env.log_text())
        published = out.read_text()
        assert published.count(GOOD_PATH) == 1, published
        write_atomically(out, published.replace(GOOD_PATH, BAD_PATH))
        assert wait_for(lambda: e2e_lib.metric(admin.stats("mtls_authz"), "update_rejected")
                        > e2e_lib.metric(stats_before_broken, "update_rejected"), 5)
        # The version in force is still the last good one (the ECDS config_dump
        # would show the rejected resource: see envoy/README.md).
        assert version_text(admin).startswith("revision=reload-r2 ")
        time.sleep(1.0)

        # 4. A valid edit: access comes back.
        restore = Switch("restore", "reload-r3", time.monotonic())
        write_atomically(src, policy_text("reload-r3"))
        switches.append(restore)
        assert wait_for(lambda: version_text(admin).startswith("revision=reload-r3 "), 5), watch_log.read_text()
        time.sleep(1.5)
    finally:
        samples = load.finish()
        files.stop.set()
    after = admin.stats("mtls_authz|wasm")
    watch_text = watch_log.read_text()

    # ---- every response is a decision of one of the policy versions
    errors = [s for s in samples if s.error]
    assert not errors, "%d requests failed, e.g. %s" % (len(errors), errors[:5])
    statuses = {}
    for s in samples:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    assert set(statuses) <= {200, 403}, "responses other than 200/403: %s" % statuses
    unknown = [s for s in samples if s.revision not in order]
    assert not unknown, "responses from no known policy version: %s" % unknown[:5]
    wrong = [s for s in samples if s.status != expected_status(s.identity, s.revision)]
    assert not wrong, "decisions that do not match the policy version that made them: %s" % wrong[:5]
    rules = {(s.identity, s.status, s.rule) for s in samples}
    assert rules <= {("order-service", 200, "orders-create-payment"), ("report-service", 200, "reports-read-payment"),
                     ("report-service", 403, "reports-suspended")}, rules

    # ---- keep-alive connections survived, and never went back to an older version
    for name, _, _, _, keep_alive in Load.WORKERS:
        mine = sorted((s for s in samples if s.worker == name), key=lambda s: s.t_send)
        assert len(mine) > 100, "worker %s sent only %d requests" % (name, len(mine))
        if keep_alive:
            assert {s.conn for s in mine} == {1}, "keep-alive connection of %s was re-opened" % name
            seen = [order.index(s.revision) for s in mine]
            assert seen == sorted(seen), "%s saw an older policy after a newer one: %s" % (name, seen)

    # ---- the switches landed within the deadline
    lines = []
    for sw in switches:
        sw.t_rename = files.replaced_after(sw.t_edit)
        analyse(sw, samples, order)
        lines.append(sw.report())
        assert sw.t_rename is not None, "%s: the resource file was never replaced" % sw.name
        assert sw.first_new is not None, "%s: no request saw %s" % (sw.name, sw.new_revision)
        assert sw.first_new - sw.t_edit < DEADLINE, sw.report()
        if sw.last_old_sent is not None:
            assert sw.last_old_sent - sw.t_edit < DEADLINE, sw.report()
    duration = max(s.t_recv for s in samples) - min(s.t_send for s in samples)
    per_worker = ", ".join("%s %d" % (w[0], sum(1 for s in samples if s.worker == w[0])) for w in Load.WORKERS)
    summary = ("live reload: %d requests in %.1f s (%s; %s); %s"
               % (len(samples), duration, ", ".join("%d x %s" % (n, k) for k, n in sorted(statuses.items())),
                  per_worker, "; ".join(lines)))
    report(request, summary)

    # ---- the invalid edit and the broken resource changed nothing, visibly
    assert "refused %s: not a valid policy" % src in watch_text, watch_text
    assert "%s:%d:%d: rules[0].paths[0]: a path pattern must start with '/'" % (src, line, col) in watch_text, watch_text
    log = env.log_text()[log_mark:]
    want = "mtls-authz: policy rejected: plugin configuration:%d:%d: rules[0].paths[0]: a path pattern must start with '/'" \
        % (line, col)
    assert want in log, "Envoy log lacks %r; rejection lines: %s" % (
        want, [l for l in log.splitlines() if "rejected" in l])
    d = lambda short: e2e_lib.metric(after, short) - e2e_lib.metric(before, short)  # noqa: E731
    assert d("update_rejected") == 1, "exactly the one broken resource is rejected"
    assert d("config_fail") >= 1
    assert d("policy_rejected") >= 1, "the filter counts the policy it refused"
    assert d("update_success") == 2, "two good updates (revoke, restore) applied"

    # ---- the Wasm VMs were reused: same VMs, their certificate caches still warm
    vms = "wasm.envoy.wasm.runtime.v8.active"
    assert after.get(vms) == before.get(vms) is not None, "Wasm VMs before %s, after %s" % (before.get(vms), after.get(vms))
    assert d("certificates_parsed") == 0, "a reload started new VMs (their caches were cold)"
    assert version_text(admin).startswith("revision=reload-r3 ")


def test_broken_resource_at_start_up_fails_closed_until_a_good_one(envoy_factory, tmp_path, request):
    """No accepted resource: the filter has no configuration, so Envoy answers 500, never lets a request through."""
    ecds_dir = tmp_path / "ecds"
    ecds_dir.mkdir()
    out = ecds_dir / "mtls_authz.yaml"
    src = tmp_path / "policy.json"
    src.write_text(policy_text("start-good"))
    r = cli("publish", src, "--out", out, "--wasm", envoy_factory.wasm_path)
    assert r.returncode == 0, r.stderr.decode()
    out.write_text(out.read_text().replace(GOOD_PATH, BAD_PATH))  # written behind the CLI's back

    env = envoy_factory.start("reload-bad-start", "", ecds_dir=str(ecds_dir))
    gw = envoy_factory.gateway(env)
    for who, m, p in (("report-service", "GET", "/api/payment/query"), ("order-service", "POST", "/api/payment/create")):
        resp = gw.request(who, m, p, body=b"{}" if m == "POST" else None)
        assert resp.status == 500, "no filter configuration must not mean no filter: %s" % resp
    assert e2e_lib.metric(env.admin.stats("mtls_authz"), "update_rejected") == 1
    assert "mtls-authz: policy rejected: plugin configuration:" in env.log_text()

    t0 = time.monotonic()
    r = cli("publish", src, "--out", out, "--wasm", envoy_factory.wasm_path)
    assert r.returncode == 0, r.stderr.decode()
    # The first accepted resource also has to start the VMs (compile the module): allow more time.
    assert wait_for(lambda: gw.request("report-service", "GET", "/api/payment/query").status == 200, 10, 0.1), \
        env.log_tail()
    report(request, "first good resource after a bad start: enforced %.0f ms after publishing (VMs started then)"
           % ((time.monotonic() - t0) * 1000))
    resp = gw.request("report-service", "GET", "/api/payment/query")
    assert resp.upstream_headers(REVISION_HEADER) == ["start-good"]
