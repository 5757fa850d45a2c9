#!/usr/bin/env python3
"""The differential suite: generated paths through the engine and through
real backends; for every path a profile accepts, the engine's `decoded` must
be each declared-safe backend's reading (safety.py).

    python3 policy-tests/differential/harness.py            # short variant, figures, exit 1 on a disagreement
    python3 policy-tests/differential/harness.py --long     # the long variant (tens of thousands of paths)
    options: --seed N, --backends a,b (readings to ask), --json FILE (every figure and disagreement),
             --max-print N (disagreements printed, default 50), --send-all (every target to every
             backend, and the over-refusal candidates: strict refuses, every backend reads one way)

Environment: MTLS_AUTHZ_CLI (default target/release/mtls-authz), ENVOY_BIN
(default .venv/bin/envoy), CI=true (a missing backend toolchain is an error,
not a note). Logs of the backends go to .work/differential/run/.
"""

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # policy-tests/, so that `differential` is importable as a script too

from differential import corpus, engine, safety, servers  # noqa: E402

REPO = HERE.parents[1]
DEFAULT_ENVOY = REPO / ".venv" / "bin" / "envoy"


def envoy_bin():
    return Path(os.environ.get("ENVOY_BIN") or DEFAULT_ENVOY)


def on_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def js(v):
    return json.dumps(v, ensure_ascii=True)


@dataclass
class Disagreement:
    target: corpus.Target
    profile: str
    backend: str
    decoded: list
    backend_segments: list
    declared: bool

    def __str__(self):
        return "%s  [%s]  profile %s %s: engine decoded %s, %s read %s" % (
            self.target.display(), self.target.family, self.profile, js(safety.PROFILES[self.profile]),
            js(self.decoded), self.backend, js(self.backend_segments))


@dataclass
class Cell:
    accepted: int = 0
    backend_refused: int = 0
    agree: int = 0
    disagree: int = 0
    refusals: Counter = field(default_factory=Counter)


@dataclass
class Result:
    corpus: list
    engine: dict  # profile -> [EngineReading | None]
    readings: dict  # backend -> {index: Reading}
    sent: list  # indices sent to the backends
    missing: dict  # server -> why unavailable
    cells: dict  # (backend, profile) -> Cell
    disagreements: list  # declared pairs only
    undeclared: list  # what an undeclared pair would disagree on (informational)
    timings: dict
    probe_readings: dict  # raw -> {backend: Reading}
    known: list  # declared disagreements that are safety.KNOWN entries

    def stale_known(self):
        """KNOWN entries whose backend ran and that no longer occur."""
        seen = {safety.known(d.backend, safety.PROFILES[d.profile], d.target.raw) for d in self.known}
        return [k for k in safety.KNOWN if k.backend in self.readings and k not in seen]

    @property
    def backends(self):
        return [b for b in safety.BACKENDS if b in self.readings]


def ask_backends(procs, corpus_list, indices):
    """({backend: {index: Reading}}, {backend: seconds}), one thread per
    request stream (a server, or one Envoy listener)."""
    out = defaultdict(dict)
    stream_seconds = {}
    errors = []
    lock = threading.Lock()

    streams = []
    for s in procs:
        if isinstance(s, servers.EnvoyServer):
            for listener in s.LISTENERS:
                streams.append((s, lambda raw, s=s, l=listener: {l: s.reading_of(l, raw)}))
        else:
            streams.append((s, s.reading))

    def work(server, ask):
        try:
            local = defaultdict(dict)
            t = time.monotonic()
            for i in indices:
                for name, r in ask(corpus_list[i].raw).items():
                    local[name][i] = r
            with lock:
                for name, rs in local.items():
                    out[name].update(rs)
                    stream_seconds[name] = time.monotonic() - t
        except BaseException as e:  # noqa: BLE001 - reported after join
            errors.append("%s: %s: %s\n%s" % (server.name, type(e).__name__, e, server.log_tail()))

    threads = [threading.Thread(target=work, args=st, daemon=True) for st in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("asking the backends failed:\n" + "\n".join(errors))
    return out, stream_seconds


def grouped(disagreements):
    """One line per (path, engine decoded, backend reading), with the profiles and backends it holds for."""
    groups = {}
    for d in disagreements:
        key = (d.target, js(d.decoded), js(d.backend_segments))
        g = groups.setdefault(key, ([], []))
        if d.profile not in g[0]:
            g[0].append(d.profile)
        if d.backend not in g[1]:
            g[1].append(d.backend)
    lines = []
    for (target, decoded, seg), (profiles, backs) in groups.items():
        lines.append("%s  [%s]: engine decoded %s under %s; %s read %s" % (
            target.display(), target.family, decoded,
            ("%s %s" % (profiles[0], js(safety.PROFILES[profiles[0]]))) if len(profiles) == 1
            else "%d profiles (%s)" % (len(profiles), ", ".join(profiles)),
            ", ".join(backs), seg))
    return lines


def compare(corpus_list, engine_out, readings, sent):
    cells, disagreements, undeclared, known = {}, [], [], []
    for pname, profile in safety.PROFILES.items():
        declared = safety.declared_for(profile)
        for b in [b for b in safety.BACKENDS if b in readings]:
            rs = readings[b]
            cell = cells[(b, pname)] = Cell()
            for i in sent:
                e = engine_out[pname][i]
                if e is None or not e.accepted:
                    continue
                cell.accepted += 1
                r = rs[i]
                if not r.served:
                    cell.backend_refused += 1
                    cell.refusals[r.refused.split(" ")[0]] += 1
                elif safety.equivalent(profile, e.decoded, r.segments):
                    cell.agree += 1
                else:
                    cell.disagree += 1
                    d = Disagreement(corpus_list[i], pname, b, e.decoded, r.segments, b in declared)
                    if not d.declared:
                        undeclared.append(d)
                    elif safety.known(b, profile, d.target.raw):
                        known.append(d)
                    else:
                        disagreements.append(d)
    return cells, disagreements, undeclared, known


# Targets every backend is asked whatever the engine says, with what some
# backends are known to make of them: the guard against a vacuous suite (a
# backend that answers, but not with its own reading, fails it).
REFUSED = "refused"
PROBES = {
    b"/a/%2e%2e/b": {"python-http.server": ["b"], "python-wsgiref": ["a", "..", "b"], "express4": ["a", "..", "b"],
                     "express5": ["a", "..", "b"], "java-uri-path": ["a", "..", "b"], "go-path": REFUSED,
                     "tomcat": ["b"], "jetty": ["b"], "envoy-normalised": ["b"], "envoy-raw": ["a", "..", "b"]},
    b"/a/..;/b": {"tomcat": ["b"], "jetty": REFUSED, "express4": ["a", "..;", "b"], "python-http.server": ["a", "..;", "b"]},
    b"/app;jsessionid=ABC/x": {"tomcat": ["app", "x"], "jetty": ["app", "x"], "express5": ["app;jsessionid=ABC", "x"],
                              "go-path": ["app;jsessionid=ABC", "x"]},
    b"/a%2Fb": {"python-http.server": ["a", "b"], "python-wsgiref": ["a", "b"], "express4": ["a/b"],
                "express5": ["a/b"], "java-uri-path": ["a", "b"], "java-uri-rawpath": ["a/b"], "go-path": ["a", "b"],
                "go-escaped": ["a/b"], "tomcat": REFUSED, "jetty": ["a", "b"], "envoy-normalised": REFUSED,
                "envoy-normalised-keep": ["a/b"], "envoy-raw": ["a/b"]},
    b"/a/b/": {"express4": ["a", "b"], "python-wsgiref": ["a", "b", ""], "go-path": ["a", "b", ""],
               "tomcat": ["a", "b", ""], "envoy-raw": ["a", "b", ""]},
    b"//a": {"python-http.server": ["a"], "express4": REFUSED, "go-path": REFUSED, "envoy-normalised": ["a"],
             "envoy-raw": ["", "a"]},
    b"/a/%7e": {"envoy-normalised": ["a", "~"], "express4": ["a", "~"], "tomcat": ["a", "~"]},
    b"/a|b": {"java-uri-path": REFUSED, "tomcat": REFUSED, "go-path": ["a|b"], "envoy-normalised": ["a|b"]},
}


MIN_SERVED = 0.9


def underserving(result, minimum=MIN_SERVED):
    """Backends that served less than `minimum` of the targets strict accepts:
    a backend that is down or misrouted refuses everything, which the
    comparison alone would count as refusals, not as a failure."""
    out = {}
    for b in result.backends:
        c = result.cells[(b, "strict")]
        if c.accepted and (c.accepted - c.backend_refused) < minimum * c.accepted:
            out[b] = "%d of %d served (%s)" % (c.accepted - c.backend_refused, c.accepted,
                                                " ".join("%s:%d" % kv for kv in c.refusals.most_common(3)))
    return out


def check_probes(probe_readings):
    """[(target, backend, expected, got)] for every probe a backend reads otherwise than PROBES says."""
    wrong = []
    for raw, expected in PROBES.items():
        for b, want in expected.items():
            r = probe_readings.get(raw, {}).get(b)
            if r is None:
                continue
            got = r.segments if r.served else REFUSED
            if got != want:
                wrong.append((raw, b, want, got if r.served else "refused (%s)" % r.refused))
    return wrong


def run(long=False, seed=corpus.SEED, workdir=None, envoy=None, cli=None, only=None, log=print, send_all=False):
    t0 = time.monotonic()
    cli = Path(cli or engine.cli_path())
    if not cli.is_file():
        raise FileNotFoundError("mtls-authz CLI not found at %s: %s" % (cli, engine.CLI_HINT))
    targets = corpus.generate(long=long, seed=seed)
    log("differential: %d paths (%s variant, seed %d)" % (len(targets), "long" if long else "short", seed))
    engine_out = {}
    for pname, profile in safety.PROFILES.items():
        engine_out[pname] = engine.engine_readings(cli, profile, [t.raw for t in targets])
    t_engine = time.monotonic()
    sent = [i for i in range(len(targets)) if send_all or any(
        engine_out[p][i] is not None and engine_out[p][i].accepted for p in safety.PROFILES)]
    workdir = Path(workdir or REPO / ".work" / "differential" / "run")
    procs, missing = servers.start_all(workdir, envoy or envoy_bin(), only=only)
    try:
        t_started = time.monotonic()
        log("differential: %d backend processes up in %.1fs; asking them %d paths" % (
            len(procs), t_started - t_engine, len(sent)))
        readings, per_backend = ask_backends(procs, targets, sent)
        probe_targets = [corpus.Target(raw, "probe") for raw in PROBES]
        probed, _ = ask_backends(procs, probe_targets, range(len(probe_targets)))
    finally:
        servers.stop_all(procs)
    if only is not None:
        readings = {b: r for b, r in readings.items() if b in only}
    t_asked = time.monotonic()
    if only is not None:
        probed = {b: r for b, r in probed.items() if b in only}
    cells, disagreements, undeclared, known = compare(targets, engine_out, readings, sent)
    timings = {"engine": t_engine - t0, "backends_start": t_started - t_engine, "requests": t_asked - t_started,
               "total": time.monotonic() - t0, "per_backend": per_backend}
    probe_readings = {raw: {b: probed[b][j] for b in probed} for j, raw in enumerate(PROBES)}
    return Result(targets, engine_out, dict(readings), sent, missing, cells, disagreements, undeclared, timings,
                  probe_readings, known)


# --------------------------------------------------------------------------- figures

def _table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = lambda row: "  ".join(str(x).rjust(w) if j else str(x).ljust(w) for j, (x, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def over_refusal(result):
    """Per profile: engine accepted/refused, and what it accepts that strict refuses."""
    n = len(result.corpus)
    strict = result.engine["strict"]
    rows = []
    for pname in safety.PROFILES:
        out = result.engine[pname]
        unrep = sum(1 for e in out if e is None)
        acc = sum(1 for e in out if e is not None and e.accepted)
        gained = sum(1 for e, s in zip(out, strict) if e is not None and e.accepted and not s.accepted)
        lost = sum(1 for e, s in zip(out, strict) if e is not None and not e.accepted and s.accepted)
        rows.append([pname, n, unrep, acc, n - unrep - acc, "%.1f%%" % (100.0 * (n - unrep - acc) / n),
                     gained, "%.2f%%" % (100.0 * gained / n), lost])
    return _table(["profile", "paths", "not repr.", "accepted", "refused", "refused %", "+ vs strict",
                   "+ % of corpus", "- vs strict"], rows)


def strict_refusal_codes(result):
    c = Counter(e.code for e in result.engine["strict"] if e is not None and not e.accepted)
    return ", ".join("%s %d" % kv for kv in c.most_common())


def _figures(c):
    return (c.accepted, c.backend_refused, c.disagree)


def like_strict(result):
    """Profiles whose figures equal strict's for every backend and that are declared for the same backends."""
    return [p for p, prof in safety.PROFILES.items() if p != "strict"
            and safety.declared_for(prof) == safety.ALL
            and all(_figures(result.cells[(b, p)]) == _figures(result.cells[(b, "strict")]) for b in result.backends)]


def backend_table(result, declared_only=True):
    rows = []
    same = set(like_strict(result)) if declared_only else set()
    for b in result.backends:
        for pname, profile in safety.PROFILES.items():
            if pname in same:
                continue
            declared = b in safety.declared_for(profile)
            if declared != declared_only:
                continue
            c = result.cells[(b, pname)]
            if not declared_only and not c.disagree:
                continue
            rows.append([b, pname, len(result.sent), c.accepted, c.backend_refused, c.disagree,
                         " ".join("%s:%d" % kv for kv in c.refusals.most_common(3))])
    return _table(["backend", "profile", "sent", "engine-accepted", "backend-refused", "disagreements",
                   "backend refusals (top)"], rows)


def unanimity(result, min_served=None):
    """Over-refusal candidates: targets strict refuses (sent with --send-all)
    that every backend serving them reads the same way, served by at least
    `min_served` backends (default: all but two). Per strict refusal code:
    (refused and sent, unanimous, examples)."""
    backs = result.backends
    need = len(backs) - 2 if min_served is None else min_served
    sent = set(result.sent)
    out = {}
    for i, e in enumerate(result.engine["strict"]):
        if e is not None and e.accepted or i not in sent:
            continue
        code = e.code if e is not None else "(not representable)"
        row = out.setdefault(code, [0, 0, []])
        row[0] += 1
        served = [result.readings[b][i].segments for b in backs if result.readings[b][i].served]
        if len(served) >= need and all(safety.equivalent({}, s, served[0]) for s in served):
            row[1] += 1
            if len(row[2]) < 4:
                row[2].append("%s -> %s (%d/%d)" % (result.corpus[i].display(), js(served[0]), len(served), len(backs)))
    return out


def report(result, max_print=50):
    lines = []
    t = result.timings
    lines.append("differential: %d paths, %d sent to %d backend readings; engine %.1fs, backends up %.1fs, "
                 "requests %.1fs, total %.1fs" % (len(result.corpus), len(result.sent), len(result.readings),
                                                  t["engine"], t["backends_start"], t["requests"], t["total"]))
    lines.append("requests per backend (s): " + ", ".join("%s %.1f" % (b, t["per_backend"].get(b, 0))
                                                          for b in result.backends))
    if result.missing:
        lines.append("MISSING backends (not run): " + "; ".join("%s: %s" % kv for kv in result.missing.items()))
    lines.append("")
    lines.append("== engine: over-refusal per profile (+ vs strict: accepted here, refused by strict)")
    lines.append(over_refusal(result))
    lines.append("strict refusals by code: " + strict_refusal_codes(result))
    lines.append("")
    if len(result.sent) == len(result.corpus):
        lines.append("")
        lines.append("== over-refusal candidates (--send-all): strict refuses, yet every backend that serves the "
                     "target (all but two at least) reads it the same way")
        rows = sorted(unanimity(result).items(), key=lambda kv: -kv[1][1])
        lines.append(_table(["strict refusal", "refused", "unanimous", "examples"],
                            [[c, r[0], r[1], "; ".join(r[2])] for c, r in rows]))
    lines.append("")
    lines.append("== declared-safe backend x profile")
    lines.append(backend_table(result, declared_only=True))
    same = like_strict(result)
    if same:
        lines.append("(same figures as strict for every backend, not repeated: %s)" % ", ".join(same))
    lines.append("")
    lines.append("== undeclared pairs that would disagree (why they are not declared; informational)")
    lines.append(backend_table(result, declared_only=False))
    for p in safety.PROFILES:
        ds = [d for d in result.undeclared if d.profile == p]
        if ds:
            lines.append("  %s, e.g. %s" % (p, ds[0]))
    lines.append("")
    wrong = check_probes(result.probe_readings)
    lines.append("== probes (known readings of classic tricks): %d of %d as expected" % (
        sum(len(v) for v in PROBES.values()) - len(wrong), sum(len(v) for v in PROBES.values())))
    for raw, b, want, got in wrong:
        lines.append("  PROBE %s: %s read %s, expected %s" % (corpus.Target(raw, "probe").display(), b, js(got), js(want)))
    lines.append("")
    lines.append("== known disagreements (safety.KNOWN: reported, not failing): %d" % len(result.known))
    for k in safety.KNOWN:
        lines.append("  %s, %s=%s: %s" % (k.backend, k.option[0], k.option[1], k.why))
    for line in grouped(result.known)[:max_print]:
        lines.append("    " + line)
    for k in result.stale_known():
        lines.append("  STALE (no longer occurs: remove it from safety.KNOWN): %s %s" % (k.backend, k.why))
    lines.append("")
    for b, why in underserving(result).items():
        lines.append("UNDERSERVING (below %d%% of strict's accepted targets): %s: %s" % (100 * MIN_SERVED, b, why))
    lines.append("== disagreements on declared pairs: %d" % len(result.disagreements))
    g = grouped(result.disagreements)
    for line in g[:max_print]:
        lines.append("  " + line)
    if len(g) > max_print:
        lines.append("  ... and %d more (--json FILE has them all)" % (len(g) - max_print))
    return "\n".join(lines)


def to_json(result):
    return {
        "paths": len(result.corpus), "sent": len(result.sent), "timings": result.timings, "missing": result.missing,
        "cells": {"%s|%s" % k: {"accepted": c.accepted, "backend_refused": c.backend_refused, "agree": c.agree,
                                "disagree": c.disagree, "refusals": dict(c.refusals)} for k, c in result.cells.items()},
        "disagreements": [{"target": d.target.display(), "family": d.target.family, "profile": d.profile,
                           "path_reading": safety.PROFILES[d.profile], "backend": d.backend, "decoded": d.decoded,
                           "backend_segments": d.backend_segments} for d in result.disagreements],
        "known": [{"target": d.target.display(), "profile": d.profile, "backend": d.backend,
                   "decoded": d.decoded, "backend_segments": d.backend_segments} for d in result.known],
        "undeclared": [{"target": d.target.display(), "profile": d.profile, "backend": d.backend,
                        "decoded": d.decoded, "backend_segments": d.backend_segments} for d in result.undeclared],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--seed", type=int, default=corpus.SEED)
    ap.add_argument("--backends", help="comma-separated readings to ask (default: all)")
    ap.add_argument("--json", help="write every figure and disagreement to this file")
    ap.add_argument("--max-print", type=int, default=50)
    ap.add_argument("--send-all", action="store_true",
                    help="send every target to the backends, not only those some profile accepts, and print the "
                         "over-refusal candidates (strict refuses, every backend reads one way)")
    args = ap.parse_args(argv)
    only = args.backends.split(",") if args.backends else None
    result = run(long=args.long, seed=args.seed, only=only, log=lambda m: print(m, file=sys.stderr),
                 send_all=args.send_all)
    print(report(result, args.max_print))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(result), indent=1, ensure_ascii=True) + "\n")
    if result.missing and on_ci():
        print("differential: FAILED: backends missing on CI: %s" % ", ".join(result.missing), file=sys.stderr)
        return 1
    failed = result.disagreements or check_probes(result.probe_readings) or result.stale_known() or underserving(result)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
