#!/usr/bin/env python3
"""How a 10,000-rule policy loads and reloads, against the 3-rule example (issue #19).

Measures, with a real Envoy (ECDS from a file, `--concurrency 2`: a main-thread
VM and two worker VMs), the dev certificates over real mTLS and the echo
upstream the e2e suite uses:

- load time per VM: the filter's own `policy loaded: ... load_time=X ms` line,
  one per VM per load, parsed from Envoy's log;
- memory per VM: the same line's `vm_memory` (the VM's linear memory, which
  never shrinks), read from the first load of an Envoy started with that
  policy; and Envoy's RSS (/proc/PID/status) as a cross-check;
- reload switch time: from the rename of the ECDS resource file (written by
  `mtls-authz publish`) to the first response decided by the new revision,
  under steady load (test_reload.py's `Load`: three keep-alive workers and one
  new-connection worker, bounded rate), the same load for both sizes.

Two Envoys run side by side for the whole run, one per policy size, each
started with its own size: the memory figures come from a fresh VM, and every
switch is between two versions of the same size. Rounds interleave the sizes
(order shuffled per round); in each, the load runs against one Envoy while the
policy is published twice (suspend report-service's access, then restore it),
so every switch changes a visible decision.

    .venv/bin/python bench/reload.py --out bench/reload.md [--rounds 5]

Not a test: nothing here passes or fails on a number. It fails (raises) when
the set-up is wrong: a request error, a 5xx, a decision that does not match
the revision that made it, a switch that never lands.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "policy-tests" / "e2e"))
sys.path.insert(0, str(HERE))

import e2e_lib  # noqa: E402  (Envoy, Upstream, Gateway, render)
from e2e_lib import POLICY_FILE, REVISION_HEADER, Envoy, Gateway, Upstream, render  # noqa: E402
import test_reload  # noqa: E402  (Load, FileWatch, SUSPENDED, version_text)
from run import (busiest_processes, cmd_out, generate_policy, machine_basics,  # noqa: E402  (bench/run.py)
                 system_busy_seconds)

# The ECDS resource file per --resource-format: `mtls-authz publish` writes the
# format its --out names, and Envoy reads .yaml as YAML, .json as JSON and .pb
# as binary protobuf.
ECDS_FILES = {"yaml": "mtls_authz.yaml", "json": "mtls_authz.json", "pb": "mtls_authz.pb"}
# Binary protobuf by default: Envoy parses no text. At 10,000 rules, from the
# rename to the first VM loading: ~110 ms, against ~550 ms for JSON and more
# for YAML (which goes through yaml-cpp, a protobuf Value tree and a JSON
# string before the same JSON parse), in consecutive runs (bench/README.md).
DEFAULT_RESOURCE_FORMAT = "pb"
CONCURRENCY = 2
SIZES = ("example", "10k")
RULES = {"example": None, "10k": 10_000}
LOADED = re.compile(
    r"^\[(?P<ts>[^\]]+)\]\[(?P<tid>\d+)\]\[\w+\]\[wasm\].*mtls-authz: policy loaded: (?P<rules>\d+) rules"
    r"(?:, \d+ connection rules)?, mode=(?P<mode>\w+), revision=(?P<rev>\S+), "
    r"load_time=(?P<ms>[\d.]+) ms, vm_memory=(?P<mib>[\d.]+) MiB", re.M)


# To place Envoy's log timestamps (wall clock) on the harness's monotonic clock.
WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


class BenchError(Exception):
    pass


def log(msg):
    print("reload: %s" % msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- policies

def policy_versions(size):
    """(open, suspended) policy documents of `size`: the second denies report-service its reads.

    The 10,000-rule policy is bench/run.py's generate_policy from envoy/policy.json;
    the suspended one is generated from envoy/policy.json plus test_reload.py's
    SUSPENDED rule, so it has 10,000 rules too (one generated rule fewer).
    """
    base = json.loads(POLICY_FILE.read_text())
    suspended = dict(base, rules=base["rules"] + [test_reload.SUSPENDED])
    texts = [json.dumps(base), json.dumps(suspended)]
    if RULES[size]:
        texts = [generate_policy(t, RULES[size]) for t in texts]
    return [json.loads(t) for t in texts]


def with_revision(doc, revision):
    return json.dumps(dict(doc, revision=revision), indent=1) + "\n"


# --------------------------------------------------------------------------- one Envoy per size

class Target:
    """One Envoy, its ECDS directory, and the policy versions published to it."""

    def __init__(self, size, args, work, certs, upstream):
        self.size, self.args = size, args
        self.dir = work / size
        self.ecds = self.dir / "ecds"
        self.ecds.mkdir(parents=True)
        self.out = self.ecds / ECDS_FILES[args.resource_format]
        self.docs = policy_versions(size)
        self.n = 0
        self.revisions = {}  # revision -> suspended?
        self.publish_times = []
        self.publish()  # the first version, present at start-up
        self.first_revision = self.revision
        config = render.render("", cert_dir=str(certs), wasm_path=str(args.wasm), admin=("127.0.0.1", 0),
                               listeners=[render.Listener("mtls", "127.0.0.1", 0)],
                               upstream=(upstream.host, upstream.port), ecds_dir=str(self.ecds),
                               ecds_file=self.out.name, regenerate="bench/reload.py")
        self.env = Envoy(args.envoy, self.dir, "envoy-" + size, config, concurrency=CONCURRENCY)
        self.certs = certs

    def start(self):
        self.env.start()
        try:
            self.env.wait_ready()
        except (e2e_lib.EnvoyExited, TimeoutError) as e:
            raise BenchError(str(e)) from None
        self.gw = Gateway(host="127.0.0.1", port=self.env.listener_port("mtls"), certs=self.certs,
                          admin=self.env.admin, envoy=self.env)
        return self

    @property
    def revision(self):
        return "%s-v%02d" % (self.size, self.n)

    def publish(self):
        """Write the next version (alternately open and suspended) and publish it; returns (t_start, t_end)."""
        self.n += 1
        suspended = self.n % 2 == 0
        self.revisions[self.revision] = suspended
        src = self.dir / ("policy-%s.json" % self.revision)
        src.write_text(with_revision(self.docs[suspended], self.revision))
        t0 = time.monotonic()
        r = subprocess.run([str(self.args.cli), "publish", str(src), "--out", str(self.out), "--wasm",
                            str(self.args.wasm)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        t1 = time.monotonic()
        if r.returncode != 0:
            raise BenchError("mtls-authz publish %s failed (%d): %s" % (src, r.returncode, r.stderr.decode()))
        self.publish_times.append(t1 - t0)
        return t0, t1

    def loads(self):
        """Every `policy loaded` line of this Envoy's log, in order, with the VM's thread:
        "main" (Envoy's main thread has the process's pid as its id) or "worker"."""
        out = []
        for m in LOADED.finditer(self.env.log_text()):
            ts = datetime.datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            out.append(dict(m.groupdict(), ms=float(m["ms"]), mib=float(m["mib"]), rules=int(m["rules"]), wall=ts,
                            role="main" if int(m["tid"]) == self.env.proc.pid else "worker"))
        return out

    def wait_loaded(self, revision, timeout=30):
        """Wait until `revision` is loaded on the main thread and in every worker's VM."""
        def done():
            got = [l for l in self.loads() if l["rev"] == revision]
            return (any(l["role"] == "main" for l in got)
                    and len({l["tid"] for l in got if l["role"] == "worker"}) >= CONCURRENCY)
        if not e2e_lib.wait_for(done, timeout, 0.1):
            got = [(l["tid"], l["role"]) for l in self.loads() if l["rev"] == revision]
            raise BenchError("%s: revision %s not loaded on the main thread and %d workers after %ds (lines: %s); "
                             "log tail:\n%s" % (self.size, revision, CONCURRENCY, timeout, got, self.env.log_tail(30)))

    def warm(self):
        """Every VM sees both certificates and both decisions before anything is measured."""
        for _ in range(12):
            for who, m, p in (("report-service", "GET", "/api/payment/query"),
                              ("order-service", "POST", "/api/payment/create")):
                r = self.gw.request(who, m, p, body=b"{}" if m == "POST" else None)
                if r.status != 200 or r.upstream_headers(REVISION_HEADER) != [self.revision]:
                    raise BenchError("%s: warm-up %s %s as %s: %s" % (self.size, m, p, who, r))

    def memory(self):
        out = {}
        with open("/proc/%d/status" % self.env.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0])
        try:
            out["allocated"] = int(json.loads(self.env.admin.get("/memory"))["allocated"]) // 1024
        except (OSError, ValueError, KeyError):
            out["allocated"] = None
        stats = self.env.admin.stats(r"wasm\.envoy\.wasm\.runtime\.v8\.", settle=False)
        out["vms_active"] = stats.get("wasm.envoy.wasm.runtime.v8.active")
        out["vms_created"] = stats.get("wasm.envoy.wasm.runtime.v8.created")
        return out

    def ecds_stats(self):
        return self.env.admin.stats("extension_config_discovery", settle=False)

    def stop(self):
        self.env.stop()


# --------------------------------------------------------------------------- a block: load, two switches

def check_samples(target, samples):
    """Every response is a decision of a known revision, and the right one for it."""
    errors = [s for s in samples if s.error]
    if errors:
        raise BenchError("%s: %d requests failed, e.g. %s" % (target.size, len(errors), errors[:3]))
    for s in samples:
        if s.revision not in target.revisions:
            raise BenchError("%s: a response from no published revision: %s" % (target.size, s))
        want = 403 if (s.identity == "report-service" and target.revisions[s.revision]) else 200
        if s.status != want:
            raise BenchError("%s: %s answered %s, revision %s decides %d" % (target.size, s, s.status, s.revision, want))
    order = list(target.revisions)
    for name, _, _, _, keep_alive in test_reload.Load.WORKERS:
        mine = sorted((s for s in samples if s.worker == name), key=lambda s: s.t_send)
        if not mine:
            raise BenchError("%s: load worker %s sent nothing" % (target.size, name))
        if keep_alive:
            seen = [order.index(s.revision) for s in mine]
            if seen != sorted(seen):
                raise BenchError("%s: keep-alive worker %s saw an older revision after a newer one" % (target.size, name))


def seen_revision(load, revision):
    """A predicate: has a response decided by `revision` arrived? (Looks at new samples only.)"""
    state = {"i": 0}

    def seen():
        samples = load.samples
        n = len(samples)
        found = any(samples[j].revision == revision for j in range(state["i"], n))
        state["i"] = n
        return found
    return seen


def block(target, args, round_no):
    """Steady load on `target`; publish the next version twice; the switch of each."""
    files = test_reload.FileWatch(target.out)
    files.thread.start()
    load = test_reload.Load(target.gw, rate=args.rate).start()
    switches = []
    try:
        time.sleep(args.settle)
        for _ in range(2):
            old = target.revision
            t0, t1 = target.publish()
            new = target.revision
            if not e2e_lib.wait_for(seen_revision(load, new), args.switch_timeout, 0.005):
                raise BenchError("%s: no response decided by %s within %ss of publishing it; log tail:\n%s"
                                 % (target.size, new, args.switch_timeout, target.env.log_tail(20)))
            time.sleep(args.settle)
            switches.append({"size": target.size, "round": round_no, "old": old, "new": new,
                             "t_publish": t0, "t_publish_end": t1})
    finally:
        samples = load.finish()
        files.stop.set()
        files.thread.join(5)
    check_samples(target, samples)
    for sw in switches:
        seen = files.replaced_after(sw["t_publish"])
        if seen is None:
            raise BenchError("%s: the resource file was never replaced by publishing %s" % (target.size, sw["new"]))
        # Both are upper bounds of the rename: the first poll that saw the new
        # inode (every ~1 ms) and the CLI's exit. The earlier is the closer.
        sw["t_rename"] = min(seen, sw["t_publish_end"])
        new = [s.t_recv for s in samples if s.revision == sw["new"]]
        old_after = [s.t_recv for s in samples if s.revision == sw["old"] and s.t_recv >= sw["t_rename"]]
        sw["first_new_ms"] = (min(new) - sw["t_rename"]) * 1000
        sw["last_old_ms"] = (max(old_after) - sw["t_rename"]) * 1000 if old_after else None
        sw["publish_ms"] = (sw["t_rename"] - sw["t_publish"]) * 1000
    span = max(s.t_recv for s in samples) - min(s.t_send for s in samples)
    rate = len(samples) / span
    slowest = max(s.t_recv - s.t_send for s in samples) * 1000
    for sw in switches:
        sw["load_rps"], sw["slowest_ms"] = rate, slowest
        target.wait_loaded(sw["new"])
        # Where the time goes, from Envoy's log (millisecond timestamps, wall clock):
        # rename -> the first VM starts loading (Envoy read and parsed the resource
        # file), and -> the last VM has loaded.
        lines = [l for l in target.loads() if l["rev"] == sw["new"]]
        rename_wall = sw["t_rename"] + WALL_MINUS_MONOTONIC
        sw["first_load_start_ms"] = (min(l["wall"] - l["ms"] / 1000 for l in lines) - rename_wall) * 1000
        sw["last_loaded_ms"] = (max(l["wall"] for l in lines) - rename_wall) * 1000
    return switches


# --------------------------------------------------------------------------- figures and the report

def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, f="%.1f"):
    return "n/a" if v is None else f % v


def med_range(xs, f="%.1f"):
    if not xs:
        return "n/a", "n/a"
    return f % med(xs), "%s–%s" % (f % min(xs), f % max(xs))


def machine(args):
    return {
        **machine_basics(args.envoy),
        "python": platform.python_version(),
        "commit": cmd_out(["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"]) + (
            " with uncommitted changes to the harness" if cmd_out(["git", "-C", str(REPO), "status", "--porcelain",
                                                                    "--", "bench/reload.py", "bench/run.py",
                                                                    "policy-tests/e2e", "envoy"]) else ""),
        "wasm": "%s (sha256 %s)" % (args.wasm, hashlib.sha256(Path(args.wasm).read_bytes()).hexdigest()[:16]),
        "cli": str(args.cli),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def write_report(path, args, info, targets, fresh, switches, load_before, seconds):
    L = []
    w = L.append
    w("# Policy load and reload: 10,000 rules against the 3-rule example (issue #19)")
    w("")
    w("Generated by [`bench/reload.py`](reload.py) on %s UTC in %.0f s; do not edit by hand. Command:"
      % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), seconds))
    w("")
    w("```sh")
    w(args.command)
    w("```")
    w("")
    w("Machine: %d CPUs (`nproc`), %s, %s RAM, Linux %s; Envoy %s; Python %s; repository at %s; filter %s; CLI %s. "
      "Load average %s at the start, %s at the end; the machine's CPUs were %.0f%% busy over the run (all "
      "processes, this harness's included); busiest other processes at the start: %s; at the end: %s."
      % (info["nproc"], info["cpu"], info["memory"], info["kernel"], info["envoy"], info["python"], info["commit"],
         info["wasm"], info["cli"], load_before, info["loadavg"], args.busy_pct, args.others_before,
         args.others_after))
    w("")
    w("Set-up: one Envoy per policy size (`--concurrency %d`: two worker threads, a VM in each, and the main "
      "thread's), both "
      "running for the whole run, each started with its own size, the filter configured by ECDS from a file "
      "(`envoy/render.py` with `ecds_dir`), published with `mtls-authz publish POLICY --out DIR/%s --wasm WASM` "
      "(temp file + rename; resource format %s, `--resource-format %s`). Real mTLS with the dev certificates of `envoy/gen-certs.sh`, upstream "
      "`envoy/upstream.py`. Why one Envoy per size: every switch is then between two versions of the same size "
      "(a switch from 3 to 10,000 rules would be neither), and each size's memory is read from VMs that never "
      "held the other size (Wasm linear memory never shrinks). Rounds: %d, each running one block per size in a "
      "shuffled order (seed %d); a block puts the load on that size's Envoy, publishes two versions (report-service "
      "loses, then regains, `GET /api/payment/query`), %.1f s apart." %
      (CONCURRENCY, ECDS_FILES[args.resource_format], args.resource_format.upper(), args.resource_format,
       args.rounds, args.seed, args.settle))
    w("")
    w("Load (test_reload.py's `Load`, the same for both sizes): keep-alive workers `ka-report-1`, `ka-report-2` "
      "(report-service), `ka-order` (order-service) and a `new-conn` worker (a new TLS connection per request, "
      "alternating identities), each at most %d requests/s. Every response is checked against the revision named "
      "on it (`%s`, echoed by the upstream or on the 403): no error, no 5xx, no decision of the wrong version, and "
      "no keep-alive worker going back to an older revision." % (args.rate, REVISION_HEADER))
    w("")

    # ---- load time and memory, fresh Envoys
    w("## Load time and memory per VM")
    w("")
    w("Each VM logs `mtls-authz: policy loaded: N rules, ..., load_time=X ms, vm_memory=Y MiB` once per load "
      "(parsed from Envoy's log; the thread id tells the main thread, whose id is Envoy's pid, from the "
      "workers). *Start-up*: the first revision, loaded when the Envoy started, fresh VMs, no load running. "
      "*Reload*: every later revision, loaded while the load generator runs. `vm_memory` is the VM's linear "
      "memory after the load; it never shrinks, so it is the VM's peak so far.")
    w("")
    w("| policy | rules | VM | phase | lines | load_time median (ms) | min–max | vm_memory median (MiB) | min–max |")
    w("|---|--:|---|---|--:|--:|--:|--:|--:|")
    startup = {}
    for t in targets:
        first = t.first_revision
        for role in ("main", "worker"):
            for phase in ("start-up", "reload"):
                ls = [l for l in t.loads() if l["role"] == role and (l["rev"] == first) == (phase == "start-up")]
                if phase == "start-up":
                    startup[(t.size, role)] = ls
                a, b = med_range([l["ms"] for l in ls])
                c, d = med_range([l["mib"] for l in ls])
                w("| %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
                    t.size, "/".join(sorted({str(l["rules"]) for l in ls})) or "-", role, phase, len(ls), a, b, c, d))
    w("")
    w("Memory per VM, fresh (start-up lines):")
    w("")
    w("| VM | example (MiB) | 10k (MiB) | 10k minus example (MiB) |")
    w("|---|--:|--:|--:|")
    for role in ("main", "worker"):
        e = [l["mib"] for l in startup[("example", role)]]
        k = [l["mib"] for l in startup[("10k", role)]]
        w("| %s | %s | %s | **%+.1f** |" % (role, " / ".join("%.1f" % x for x in e), " / ".join("%.1f" % x for x in k),
                                          med(k) - med(e)))
    all_e = [l["mib"] for r in ("main", "worker") for l in startup[("example", r)]]
    all_k = [l["mib"] for r in ("main", "worker") for l in startup[("10k", r)]]
    mem_diff = med(all_k) - med(all_e)
    w("")
    w("Per VM, 10k minus example: **%+.1f MiB** (target: at most 8 MiB: %s). After reloads under load a VM "
      "held up to %s MiB at 10,000 rules (the old policy is still alive while the new one is parsed), against %s "
      "MiB at 3 rules." % (mem_diff, "met" if mem_diff <= 8 else "**not met**",
                           fmt(max(l["mib"] for l in targets[1].loads())), fmt(max(l["mib"] for l in targets[0].loads()))))
    w("")
    w("Envoy's process (`/proc/PID/status`), after start-up and the warm-up requests, and at the end of the run:")
    w("")
    w("| policy | VmRSS fresh (MiB) | VmHWM fresh (MiB) | RssAnon fresh (MiB) | tcmalloc allocated (`/memory`, MiB) | "
      "VmRSS at the end (MiB) | VmHWM at the end (MiB) |")
    w("|---|--:|--:|--:|--:|--:|--:|")
    for t in targets:
        m0, m1 = fresh[t.size], t.end_memory
        mib = lambda k: fmt(k / 1024) if k is not None else "n/a"  # noqa: E731
        w("| %s | %s | %s | %s | %s | %s | %s |" % (t.size, mib(m0["VmRSS"]), mib(m0["VmHWM"]), mib(m0["RssAnon"]),
                                                  mib(m0["allocated"]), mib(m1["VmRSS"]), mib(m1["VmHWM"])))
    d_rss = (fresh["10k"]["VmRSS"] - fresh["example"]["VmRSS"]) / 1024
    w("")
    w("Fresh VmRSS, 10k minus example: **%+.1f MiB** for the process (its Wasm VMs: "
      "`wasm.envoy.wasm.runtime.v8.active` %s fresh, %s at the end, `created` %s at the end; plus Envoy's own "
      "copy of the configuration: the ECDS resource is %.1f MB at 10,000 rules against %.1f KB)."
      % (d_rss, fresh["10k"]["vms_active"], targets[1].end_memory["vms_active"], targets[1].end_memory["vms_created"],
         targets[1].out.stat().st_size / 1e6, targets[0].out.stat().st_size / 1e3))
    w("")

    # ---- switches
    w("## Reload switch time")
    w("")
    w("From the rename of the resource file (the earlier of the first poll that saw its new inode, every ~1 ms, "
      "and the publishing CLI's exit) to the first response decided by the new revision (received, any worker). "
      "*All switched*: to the last response still decided by the old revision (0 when none came after the "
      "rename).")
    w("")
    w("| policy | switches | first new decision, median (ms) | min–max | all switched, median (ms) | min–max | "
      "Envoy read the file: rename to first VM loading, median (ms) | rename to last VM loaded, median (ms) | "
      "publish (CLI start to rename), median (ms) | load (req/s) |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    by = {s: [x for x in switches if x["size"] == s] for s in SIZES}
    for s in SIZES:
        xs = by[s]
        a, b = med_range([x["first_new_ms"] for x in xs])
        c, d = med_range([x["last_old_ms"] or 0.0 for x in xs])
        w("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s, len(xs), a, b, c, d, fmt(med([x["first_load_start_ms"] for x in xs])),
            fmt(med([x["last_loaded_ms"] for x in xs])), fmt(med([x["publish_ms"] for x in xs])),
            fmt(med([x["load_rps"] for x in xs]), "%.0f")))
    ratio = med([x["first_new_ms"] for x in by["10k"]]) / med([x["first_new_ms"] for x in by["example"]])
    ratio_all = (med([x["last_old_ms"] or 0.0 for x in by["10k"]]) / med([x["last_old_ms"] or 0.0 for x in by["example"]])
                 if med([x["last_old_ms"] or 0.0 for x in by["example"]]) else None)
    w("")
    w("Ratio 10k / example of the medians: **%.2f×** to the first new decision (target: within 2×: %s), %s× to "
      "all switched." % (ratio, "met" if ratio <= 2 else "**not met**", fmt(ratio_all, "%.2f")))
    w("")
    w("Where a switch's time goes, medians over the switches, in ms after the rename (from the load lines of "
      "each new revision, below):")
    w("")
    w("| policy | first VM starts loading | first VM done | first worker VM starts | last worker VM done | "
      "first new decision |")
    w("|---|--:|--:|--:|--:|--:|")
    renamed = {x["new"]: x["t_rename"] + WALL_MINUS_MONOTONIC for x in switches}
    for t in targets:
        cols = [[], [], [], []]
        for rev, r in renamed.items():
            ls = [l for l in t.loads() if l["rev"] == rev]
            if not ls:
                continue
            first = min(ls, key=lambda l: l["wall"] - l["ms"] / 1000)
            workers = [l for l in ls if l["role"] == "worker"]
            cols[0].append((first["wall"] - first["ms"] / 1000 - r) * 1000)
            cols[1].append((first["wall"] - r) * 1000)
            cols[2].append((min(l["wall"] - l["ms"] / 1000 for l in workers) - r) * 1000)
            cols[3].append((max(l["wall"] for l in workers) - r) * 1000)
        w("| %s | %s | %s | %s | %s | %s |" % (t.size, *(fmt(med(c), "%.0f") for c in cols),
                                             fmt(med([x["first_new_ms"] for x in by[t.size]]), "%.0f")))
    w("")
    w("### Every switch")
    w("")
    w("| round | policy | from | to | first new decision (ms) | all switched (ms) | first VM loading (ms) | "
      "last VM loaded (ms) | publish (ms) | load (req/s) | slowest response of the block (ms) |")
    w("|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for x in switches:
        w("| %d | %s | %s | %s | %.1f | %s | %.0f | %.0f | %.1f | %.0f | %.0f |" % (
            x["round"], x["size"], x["old"], x["new"], x["first_new_ms"], fmt(x["last_old_ms"]),
            x["first_load_start_ms"], x["last_loaded_ms"], x["publish_ms"], x["load_rps"], x["slowest_ms"]))
    w("")
    w("### Every load line")
    w("")
    w("In log order. For a reload, when the VM started and finished loading, in ms after the rename (from "
      "Envoy's millisecond log timestamp, minus load_time for the start).")
    w("")
    w("| policy | revision | thread | VM | rules | load_time (ms) | vm_memory (MiB) | started (ms) | done (ms) |")
    w("|---|---|--:|---|--:|--:|--:|--:|--:|")
    for t in targets:
        for l in t.loads():
            r = renamed.get(l["rev"])
            at = (("%.0f" % ((l["wall"] - l["ms"] / 1000 - r) * 1000), "%.0f" % ((l["wall"] - r) * 1000))
                  if r is not None else ("", ""))
            w("| %s | %s | %s | %s | %d | %.1f | %.1f | %s | %s |" % (t.size, l["rev"], l["tid"], l["role"], l["rules"],
                                                                  l["ms"], l["mib"], *at))
    w("")
    w("ECDS counters at the end: %s." % "; ".join(
        "%s: update_success %s, update_rejected %s" % (t.size, t.end_stats.get("update_success"),
                                                       t.end_stats.get("update_rejected")) for t in targets))
    w("")
    w("## Reading the numbers")
    w("")
    updates = {t.size: len(t.revisions) - 1 for t in targets}
    w("- **What a switch includes.** Envoy notices the rename (`watched_directory`), reads and parses the "
      "resource file on its main thread (%.1f MB of %s at 10,000 rules: %s), "
      "the filter loads the policy in the main thread's VMs and in each worker's VM (when each started and "
      "finished is in the raw load lines below); a worker decides by the old policy until its own VM has loaded, and a request arriving at a worker while it loads waits for it (the "
      "*slowest response* column). The filter's `load_time` covers only its own parse and compile, not Envoy's "
      "file parsing: *rename to first VM loading* is that part, from Envoy's millisecond log timestamps."
      % (targets[1].out.stat().st_size / 1e6, args.resource_format.upper(),
         {"yaml": "the policy JSON is a block scalar in it", "json": "the policy is one JSON string in it",
          "pb": "binary protobuf, the policy its one string field"}[args.resource_format]))
    k = targets[1]
    first_main = []
    for rev in list(k.revisions)[1:]:
        mains = [l["mib"] for l in k.loads() if l["rev"] == rev and l["role"] == "main"]
        if mains:
            first_main.append(mains[0])
    per_rev = sorted({sum(1 for l in k.loads() if l["rev"] == r and l["role"] == "main") for r in k.revisions})
    w("- **Main-thread loads.** The main thread logged %s `policy loaded` line(s) per revision at 10,000 rules. "
      "The first main-thread line of each reload shows vm_memory %s MiB (a fresh VM shows %s), and "
      "`wasm.envoy.wasm.runtime.v8.created` went from %s to %s over the 10k Envoy's %d updates while `active` "
      "was %s fresh and %s at the end: as far as these counters tell, Envoy makes a short-lived VM on the main "
      "thread for each update besides the ones it keeps. Every load is in the switch time; the worker VMs are "
      "kept across updates (their vm_memory grows, as expected of a kept VM)."
      % ("/".join(map(str, per_rev)), "–".join(dict.fromkeys(["%.1f" % min(first_main), "%.1f" % max(first_main)]))
         if first_main else "n/a", fmt(med([l["mib"] for l in startup[("10k", "main")]])),
         fresh["10k"]["vms_created"], k.end_memory["vms_created"], updates["10k"], fresh["10k"]["vms_active"],
         k.end_memory["vms_active"]))
    w("- **Precision.** The rename is seen by a thread polling the file's inode every ~1 ms (or the CLI's exit, "
      "whichever is earlier); the first new decision is sampled by %d load workers at up to %d requests/s each "
      "(a few ms apart). Both run in Python threads sharing the GIL (switch interval set to 0.5 ms). That is "
      "enough to tell milliseconds from seconds, not to resolve the example policy's switch to better than a "
      "few ms." % (len(test_reload.Load.WORKERS), args.rate))
    w("- **Under load, on a shared 2-CPU machine.** The load generator, the echo upstream and Envoy share the "
      "two CPUs, so a reload's loads run slower than the start-up ones (compare the phases above), and other "
      "processes were running too (the machine line above). The sizes are interleaved in the same rounds so "
      "that both see the same machine; absolute times will move from run to run, the order of magnitude of "
      "the ratio should not.")
    w("- **Memory.** `vm_memory` is the Wasm linear memory (`memory.size` x 64 KiB), the VM's peak: what the "
      "VM keeps reserved, not what the policy holds live after the load. VmRSS adds Envoy's own copies of the "
      "configuration (YAML text, protobuf) and V8's heap and code, so its difference is larger than the VMs' "
      "sum.")
    w("")
    Path(path).write_text("\n".join(L))
    return ratio


# --------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "reload.md"), help="the report to write (default bench/reload.md)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds; each switches each size twice (default 5)")
    ap.add_argument("--rate", type=int, default=250, help="requests/s per load worker, at most (default 250)")
    ap.add_argument("--settle", type=float, default=1.5, help="seconds of load before and after each switch")
    ap.add_argument("--switch-timeout", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=None, help="the shuffle's seed (default: from the clock)")
    ap.add_argument("--envoy", type=Path, default=e2e_lib.envoy_binary(), help="default: as the e2e suite finds it")
    ap.add_argument("--wasm", type=Path, default=Path(os.environ.get("MTLS_AUTHZ_WASM") or e2e_lib.DEFAULT_WASM))
    ap.add_argument("--cli", type=Path, default=e2e_lib.CLI)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (Envoy logs, policies)")
    ap.add_argument("--resource-format", choices=sorted(ECDS_FILES), default=DEFAULT_RESOURCE_FORMAT,
                    help="the ECDS resource file publish writes and Envoy reads: mtls_authz.yaml, "
                         "mtls_authz.json or mtls_authz.pb (default %(default)s)")
    args = ap.parse_args(argv)
    for what, p in (("Envoy", args.envoy), ("filter .wasm", args.wasm), ("mtls-authz CLI", args.cli)):
        if not p.is_file():
            ap.error("no %s at %s (build with `bash scripts/build.sh`, or pass --%s)"
                     % (what, p, {"Envoy": "envoy", "filter .wasm": "wasm", "mtls-authz CLI": "cli"}[what]))
    args.wasm, args.cli = args.wasm.resolve(), args.cli.resolve()
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    args.command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/reload.py"] + list(argv or sys.argv[1:]))
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    # The load threads, the file watcher and the switch detection share the
    # GIL: hand it over every 0.5 ms rather than 5 ms, for every size alike.
    sys.setswitchinterval(0.0005)
    info_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    busy_before = system_busy_seconds()
    args.others_before = busiest_processes({os.getpid()}) or "none"
    work = Path(tempfile.mkdtemp(prefix="mtls-authz-reload-"))
    log("work directory %s" % work)
    stoppers = []

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    ok = False
    try:
        certs = work / "certs"
        r = subprocess.run(["bash", str(REPO / "envoy" / "gen-certs.sh"), str(certs)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise BenchError("envoy/gen-certs.sh failed:\n%s" % r.stdout.decode(errors="replace"))
        upstream = Upstream(work / "upstream.log").start()
        stoppers.append(upstream.stop)
        targets = []
        fresh = {}
        for size in SIZES:
            log("%s: generating the policies, publishing, starting Envoy" % size)
            t = Target(size, args, work, certs, upstream)
            stoppers.append(t.stop)
            t.start()
            t.wait_loaded(t.revision)
            t.warm()
            time.sleep(1.0)
            fresh[size] = t.memory()
            targets.append(t)
            first = t.loads()
            log("%s: pid %d, %s rules, load_time %s ms, vm_memory %s MiB (%s), VmRSS %.1f MiB" % (
                size, t.env.proc.pid, first[0]["rules"], "/".join("%.1f" % l["ms"] for l in first),
                "/".join("%.1f" % l["mib"] for l in first), "/".join(l["role"] for l in first),
                fresh[size]["VmRSS"] / 1024))
        rng = random.Random(args.seed)
        switches = []
        for rnd in range(1, args.rounds + 1):
            order = list(targets)
            rng.shuffle(order)
            for t in order:
                got = block(t, args, rnd)
                switches += got
                log("round %d %s: %s" % (rnd, t.size, ", ".join(
                    "%s->%s %.1f ms (all %s ms)" % (x["old"], x["new"], x["first_new_ms"], fmt(x["last_old_ms"]))
                    for x in got)))
        for t in targets:
            t.end_memory = t.memory()
            t.end_stats = {k.rsplit(".", 1)[-1]: v for k, v in t.ecds_stats().items() if ".mtls_authz." in k}
            if t.end_stats.get("update_rejected"):
                raise BenchError("%s: Envoy rejected %d updates" % (t.size, t.end_stats["update_rejected"]))
            if test_reload.version_text(t.env.admin).split()[0] != "revision=" + t.revision:
                raise BenchError("%s: the revision in force is %s, not the last published %s"
                                 % (t.size, test_reload.version_text(t.env.admin), t.revision))
        ours = {os.getpid(), upstream.proc.pid} | {t.env.proc.pid for t in targets}
        args.others_after = busiest_processes(ours) or "none"
        args.busy_pct = 100 * (system_busy_seconds() - busy_before) / ((time.monotonic() - started) * os.cpu_count())
        ratio = write_report(args.out, args, machine(args), targets, fresh, switches, info_before,
                             time.monotonic() - started)
        log("wrote %s (switch ratio 10k/example %.2fx) in %.0f s" % (args.out, ratio, time.monotonic() - started))
        ok = True
    finally:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest anyway
                log("stopping: %s" % e)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("kept %s" % work)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("FAILED: %s" % e)
        sys.exit(1)
