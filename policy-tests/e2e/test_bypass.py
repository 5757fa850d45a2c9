"""Issue #4: the authorization-bypass suite, through a real Envoy (see BYPASS.md).

One Envoy runs the bypass policy (bypass_cases.BYPASS_POLICY) on two listeners,
`hardened` (Envoy's path normalisation on: the shipped envoy.yaml) and `raw`
(all of it off: the filter must hold on its own). Every case of
bypass_cases.CASES is sent on both, exactly as written (raw TLS socket, curl
--http2 --request-target, raw HTTP/2 frames), all at once in a thread pool;
then one test per case and listener checks what happened:

- allowed: 200 from the echo upstream, which received exactly the authorised
  request target (and a typical backend's reading of it is the resource the
  policy allowed), with only the filter's identity headers;
- denied: the filter's 403 with the engine's reason, and the upstream never
  saw the request (each request carries a unique x-case-id; the upstream,
  in this process, records every request it gets);
- allowed requests never carry a method or path override header to the
  upstream, except the x-envoy-original-path Envoy's router adds on the
  rewriting route;
- Envoy rejection or no response: likewise never at the upstream.

A final test checks the upstream saw nothing but the allowed requests.
"""

import concurrent.futures
import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import bypass_cases as bc
import rawhttp
from conftest import EnvoyFactory
from e2e_lib import DRY_RUN_HEADER, OWN_HEADERS, PRINCIPAL_HEADER, REPO, REVISION_HEADER, RULE_HEADER, render, validate_config
from filter_constants import OVERRIDE_HEADERS  # overrides::OVERRIDE_HEADERS in the engine

pytestmark = pytest.mark.filter

WORKERS = 16
CATCH_ALL_ROUTE = '              - match: { prefix: "/" }\n'


# --------------------------------------------------------------------------- set-up

def _issue(certs, out_dir, name, subject, san, eku):
    """A client certificate signed by the harness's dev CA (like e2e_lib.issue_client_cert, any EKU)."""
    stem = Path(out_dir) / name
    ext = stem.with_suffix(".ext")
    lines = ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature",
             "extendedKeyUsage = %s" % eku]
    if san:
        lines.append("subjectAltName = %s" % san)
    ext.write_text("\n".join(lines) + "\n")
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: E731
                                    timeout=30)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(stem) + ".key", "-subj", subject, "-out", str(stem) + ".csr")
    run("openssl", "x509", "-req", "-in", str(stem) + ".csr", "-CA", str(Path(certs) / "ca.crt"), "-CAkey",
        str(Path(certs) / "ca.key"), "-set_serial", str(int.from_bytes(os.urandom(12), "big")), "-days", "2",
        "-extfile", str(ext), "-out", str(stem) + ".crt")
    return stem


def _template_with_rewrites(out_dir):
    """envoy.template.yaml with bc.ROUTE_REWRITES as rewriting routes before the catch-all.

    Each is a `path_separated_prefix` match, as every route this project
    configures: a string `prefix:` would also take /docs/renamedx, a path the
    policy reads as another segment (`mtls-authz check --envoy-config` warns on
    it). The table's trailing '/' is dropped on both sides, since
    path_separated_prefix must not end in '/' and Envoy keeps the '/' after it:
    /docs/renamed/a still reaches the upstream as /docs/public/a."""
    text = Path(render.DEFAULT_TEMPLATE).read_text()
    assert text.count(CATCH_ALL_ROUTE) == 1, "envoy.template.yaml: catch-all route not found as %r" % CATCH_ALL_ROUTE
    rewrites = [(src.rstrip("/"), dst.rstrip("/")) for src, dst in bc.ROUTE_REWRITES]
    assert all(src and dst for src, dst in rewrites), "a route_rewrites entry of '/' has no path_separated_prefix form"
    routes = "".join('              - match: { path_separated_prefix: "%s" }\n'
                     '                route: { cluster: upstream, prefix_rewrite: "%s" }\n' % r for r in rewrites)
    path = Path(out_dir) / "bypass-envoy.template.yaml"
    path.write_text(text.replace(CATCH_ALL_ROUTE, routes + CATCH_ALL_ROUTE))
    return path


def _case_id(case, listener, n=1):
    return "%s@%s" % (case.name, listener) + ("#%d" % n if n > 1 else "")


class Bypass:
    """The running set-up and every outcome: {(case name, listener): Result}."""

    def __init__(self, upstream, ports, certs, stems):
        self.upstream, self.ports, self.certs, self.stems = upstream, ports, certs, stems
        self.outcomes = {}
        self.elapsed = 0.0
        self.filter_sets_revision = False

    def send(self, case, listener):
        port = self.ports[listener]
        cid = _case_id(case, listener)
        ident = None if case.identity == bc.NO_CERT else self.stems[case.identity]
        args = ("127.0.0.1", port, self.certs, ident)
        if case.proto == "h2":
            return rawhttp.send_curl_h2(*args, case.method, case.target,
                                        list(case.headers) + [(rawhttp.CASE_HEADER, cid)], body=case.body)
        if case.proto == "h2f":
            return rawhttp.send_h2_frames(*args, list(case.h2_headers) + [(rawhttp.CASE_HEADER, cid)], body=case.body)
        if case.request is not None:
            req = case.request.replace(b"{cid}", cid.encode()).replace(b"{cid2}", _case_id(case, listener, 2).encode())
        else:
            req = rawhttp.h1_request(case.method, case.target, list(case.headers) + [(rawhttp.CASE_HEADER, cid)],
                                     body=case.body or b"")
        if case.proto == "h1-resumed":
            # Warm-up: a request the policy denies, so it never reaches the upstream.
            warm = rawhttp.h1_request("GET", bc.C, [(rawhttp.CASE_HEADER, cid + "#warm-up")])
            return rawhttp.send_h1_resumed(*args, req, warm)
        return rawhttp.send_h1(*args, req, responses=case.responses, head_only=case.method == "HEAD")

    def _timed(self, case, listener):
        t = time.monotonic()
        r = self.send(case, listener)
        r.elapsed = time.monotonic() - t
        return r

    def run_all(self):
        start = time.monotonic()
        jobs = [(c, l) for c in bc.CASES for l in bc.LISTENERS]
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            futures = {pool.submit(self._timed, c, l): (c.name, l) for c, l in jobs}
            for f in concurrent.futures.as_completed(futures):
                try:
                    self.outcomes[futures[f]] = f.result()
                except Exception as e:  # noqa: BLE001 - reported by the case's own test
                    self.outcomes[futures[f]] = rawhttp.Result(error="client raised %s: %s" % (type(e).__name__, e))
        self.elapsed = time.monotonic() - start
        # Filters that stamp the policy revision own that header (older builds do not set it).
        baseline = self.upstream.seen(_case_id(next(c for c in bc.CASES if c.name == "report-reads-query"), "raw"))
        self.filter_sets_revision = any(k == REVISION_HEADER for s in baseline for k, _ in s.headers)


@pytest.fixture(scope="module")
def bypass(request, envoy_bin, wasm_path, certs, workdir):
    if not rawhttp.curl_path():
        pytest.fail("the bypass suite sends HTTP/2 with curl --http2: install curl (apt-get install curl)",
                    pytrace=False)
    extra = workdir / "bypass-certs"
    extra.mkdir(exist_ok=True)
    stems = {name: Path(certs) / name for name in bc.BUILTIN_CERTS}
    for name, (subject, san, eku) in bc.EXTRA_CERTS.items():
        stems[name] = _issue(certs, extra, name, subject, san, eku)

    upstream = rawhttp.RecordingUpstream().start()
    factory = EnvoyFactory(envoy_bin, wasm_path, certs, upstream, workdir)
    try:
        env = factory.start(
            "bypass", bc.policy_text(), concurrency=2, policy_origin="policy-tests/cases/bypass.json",
            listeners=[render.Listener("hardened", "127.0.0.1", 0),
                       render.Listener("raw", "127.0.0.1", 0, normalize=False)],
            owner=request.node.nodeid, template_path=str(_template_with_rewrites(workdir)))
        ports = {l: env.listener_port(l) for l in bc.LISTENERS}
        b = Bypass(upstream, ports, certs, stems)
        b.run_all()
        yield b
    finally:
        factory.stop_all()
        upstream.stop()


# --------------------------------------------------------------------------- checks

def backend_view(target):
    """What a typical backend serves for a request target: the path without its
    query, percent-decoded, dot segments removed (RFC 3986 5.2.4)."""
    path = target.split("?", 1)[0]
    path = urllib.parse.unquote(path, errors="strict")
    out = []
    for seg in path.split("/")[1:]:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    return "/" + "/".join(out)


def _filter_403(r, what, status=403):
    assert r.status == status, "%s: expected the filter's %d, got %s" % (what, status, r)
    body = r.json()
    assert isinstance(body, dict) and body.get("error") == "forbidden", "%s: 403 not from the filter: %s" % (what, r)
    return body


def _assert_not_forwarded(b, cid, what):
    seen = b.upstream.seen(cid)
    assert not seen, "%s: BYPASS: the upstream received it: %s" % (what, [(s.method, s.target) for s in seen])


def _assert_body_never_forwarded(b, cid, what):
    """A request refused on its body: its headers may have reached the upstream
    (they go on while the filter holds the body), but not one byte of the body."""
    for s in b.upstream.seen(cid):
        assert not s.body, "%s: BYPASS: the upstream read %d body bytes of a refused request" % (what, len(s.body))


def _assert_forwarded(b, case, exp, cid, what):
    seen = b.upstream.seen(cid)
    assert len(seen) == 1, "%s: allowed, but the upstream saw it %d times" % (what, len(seen))
    s = seen[0]
    assert s.target == exp.upstream, (
        "%s: BYPASS: allowed as %r but the upstream received %r" % (what, exp.upstream, s.target))
    assert backend_view(s.target) == exp.resource, (
        "%s: BYPASS: a backend reads %r as %r, not the authorised %r" % (what, s.target, backend_view(s.target),
                                                                       exp.resource))
    assert s.method == case.method, "%s: method %r reached the upstream as %r" % (what, case.method, s.method)
    hdr = lambda name: [v for k, v in s.headers if k == name]  # noqa: E731
    assert hdr(RULE_HEADER) == [exp.rule], "%s: x-mtls-authz-rule at the upstream: %s" % (what, hdr(RULE_HEADER))
    want = bc.PRINCIPALS.get(case.identity)
    got = hdr(PRINCIPAL_HEADER)
    assert len(got) == 1 and (want is None or got == [want]), (
        "%s: x-mtls-authz-principal at the upstream: %s (want [%r])" % (what, got, want))
    assert hdr(DRY_RUN_HEADER) == [], "%s: forged dry-run header reached the upstream" % what
    if b.filter_sets_revision:
        assert hdr(REVISION_HEADER) == [bc.BYPASS_POLICY["revision"]], (
            "%s: x-mtls-authz-policy-revision at the upstream: %s" % (what, hdr(REVISION_HEADER)))
    elif any(k.lower() == REVISION_HEADER for k, _ in case.headers):
        pytest.skip("this filter build does not set %s, so a client-sent one is not its header" % REVISION_HEADER)
    assert hdr("upgrade") == [] and hdr("http2-settings") == [], "%s: an upgrade reached the upstream" % what
    expected = {k.lower(): v for k, v in exp.upstream_headers}
    for name, value in exp.upstream_headers:
        assert hdr(name.lower()) == [value], "%s: %s at the upstream: %s (want [%r])" % (what, name, hdr(name.lower()),
                                                                                         value)
    leaked = [(k, v) for k, v in s.headers if k in OVERRIDE_HEADERS and k not in expected]
    assert not leaked, "%s: BYPASS: an override header reached the upstream: %s" % (what, leaked)
    assert hdr("x-forwarded-client-cert") == [], "%s: XFCC reached the upstream: %s" % (what,
                                                                                        hdr("x-forwarded-client-cert"))
    return s


def check(b, case, listener):
    exp = case.expect(listener)
    r = b.outcomes[(case.name, listener)]
    cid = _case_id(case, listener)
    what = "%s on %s (%s)" % (case.shown(), listener, case.name)
    if exp.kind == "allow":
        assert r.status == 200, "%s: expected 200 from the upstream, got %s" % (what, r)
        if case.method != "HEAD":
            echo = r.json()
            assert isinstance(echo, dict) and "path" in echo, "%s: 200 not from the echo upstream: %s" % (what, r)
            if case.body is not None:
                assert echo.get("body_length") == len(case.body), (
                    "%s: the upstream got %s body bytes of %d" % (what, echo.get("body_length"), len(case.body)))
        _assert_forwarded(b, case, exp, cid, what)
    elif exp.kind == "deny":
        if case.method == "HEAD":
            assert r.status == exp.status, "%s: expected %d, got %s" % (what, exp.status, r)
        else:
            body = _filter_403(r, what, exp.status)
            assert body.get("reason") == exp.reason, (
                "%s: denied for %r, expected %r" % (what, body.get("reason"), exp.reason))
            assert body.get("rule") == exp.rule, "%s: deny rule %r, expected %r" % (what, body.get("rule"), exp.rule)
        if exp.body_held:
            _assert_body_never_forwarded(b, cid, what)
        else:
            _assert_not_forwarded(b, cid, what)
    elif exp.kind == "reject":
        assert r.status == exp.status, "%s: expected Envoy's %d (%s), got %s" % (what, exp.status, exp.by, r)
        body = r.json()
        assert not (isinstance(body, dict) and ("error" in body or "path" in body)), (
            "%s: %d came from the filter or upstream, not Envoy: %s" % (what, r.status, r))
        _assert_not_forwarded(b, cid, what)
    elif exp.kind == "drop":
        assert r.status is None, "%s: expected no response (%s), got %s" % (what, exp.by, r)
        _assert_not_forwarded(b, cid, what)
    else:
        raise AssertionError("unknown expectation %r" % exp.kind)
    if case.proto == "h1-resumed":
        assert r.resumed, "%s: the TLS session was not resumed, so resumption was not tested" % what
    if case.responses > 1:
        cid2 = _case_id(case, listener, 2)
        assert len(r.more) == 1, "%s: expected a response to the pipelined request too, got %d" % (what, len(r.more))
        _filter_403(r.more[0], what + " (pipelined request)")
        _assert_not_forwarded(b, cid2, what + " (pipelined request)")


def _params():
    out = []
    for c in bc.CASES:
        for l in bc.LISTENERS:
            marks = []
            if c.finding:
                marks.append(pytest.mark.xfail(strict=True, reason="finding %s (BYPASS.md): %s" % (c.finding, c.why)))
            out.append(pytest.param(c, l, id="%s-%s" % (c.name, l), marks=marks))
    return out


@pytest.mark.parametrize("case,listener", _params())
def test_bypass(bypass, case, listener):
    check(bypass, case, listener)


def test_upstream_saw_only_allowed_requests(bypass):
    """Across the whole run, the upstream got exactly one request per allowed
    case and listener, and nothing else (no request without a case id), except
    the headers of requests refused on their body (checked per case: no body byte)."""
    allowed, headers_only = set(), set()
    for c in bc.CASES:
        for l in bc.LISTENERS:
            exp = c.expect(l)
            if exp.kind == "allow":
                allowed.add(_case_id(c, l))
            elif exp.body_held:
                headers_only.add(_case_id(c, l))
    seen, total = bypass.upstream.snapshot()
    unexpected = sorted(set(seen) - allowed - headers_only)
    assert not unexpected, "BYPASS: the upstream received requests that should never reach it: %s" % unexpected
    assert all(n == 1 for n in seen.values()), {k: n for k, n in seen.items() if n != 1}
    assert total == sum(seen.values()), "the upstream got %d requests without a case id" % (total - sum(seen.values()))


def test_suite_is_fast(bypass):
    slow = sorted(((getattr(r, "elapsed", 0), k) for k, r in bypass.outcomes.items()), reverse=True)[:5]
    print("bypass: %d requests in %.1fs; slowest: %s" % (len(bypass.outcomes), bypass.elapsed,
                                                         ", ".join("%s@%s %.1fs" % (k + (t,)) for t, k in slow)))
    assert bypass.elapsed < 45, "sending %d requests took %.1fs" % (len(bypass.outcomes), bypass.elapsed)


def test_bypass_md_is_current():
    text = bc.DOC.read_text()
    assert bc.render_doc(text) == text, ("policy-tests/e2e/BYPASS.md is stale: run "
                                         "python3 policy-tests/e2e/bypass_cases.py --write-doc")


def test_every_engine_override_header_has_a_case():
    """Each header the engine refuses (overrides::OVERRIDE_HEADERS, via filter/constants.json) is sent by a case."""
    covered = {k.lower() for c in bc.CASES if c.cls == "method-override" for k, _ in c.headers}
    assert set(OVERRIDE_HEADERS) <= covered, "override headers without a case: %s" % (set(OVERRIDE_HEADERS) - covered)


def test_every_path_class_runs_over_http2():
    path_classes = {"dot", "slashes", "escaped-slash", "fragment", "query", "path-param", "case", "trailing",
                    "encoding", "baseline"}
    h2 = {c.cls for c in bc.CASES if c.proto == "h2"}
    assert path_classes <= h2, "classes without an HTTP/2 case: %s" % sorted(path_classes - h2)


CLI = Path(os.environ.get("MTLS_AUTHZ_CLI") or REPO / "target" / "release" / "mtls-authz")


def test_bypass_config_is_accepted_and_passes_the_envoy_lint(envoy_factory, tmp_path):
    """The bypass Envoy's configuration loads, and `mtls-authz check --envoy-config`
    finds no route that hands the upstream a path the policy did not judge: only
    the note, per listener, that the rewriting route's upstream sees the rewritten path."""
    if not CLI.exists():
        pytest.fail("%s is missing: build it with bash scripts/build.sh" % CLI, pytrace=False)
    config = tmp_path / "bypass-envoy.yaml"
    config.write_text(envoy_factory.config(
        bc.policy_text(), listeners=[render.Listener(l, "127.0.0.1", 0, normalize=(l != "raw")) for l in bc.LISTENERS],
        template_path=str(_template_with_rewrites(tmp_path))))
    rc, out = validate_config(envoy_factory.envoy_bin, config)
    assert rc == 0 and "OK" in out, out[-3000:]
    policy = tmp_path / "policy.json"
    policy.write_text(bc.policy_text())
    r = subprocess.run([str(CLI), "check", str(policy), "--envoy-config", str(config)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    stderr = r.stderr.decode(errors="replace")
    assert r.returncode == 0 and "warning:" not in stderr, stderr
    notes = [l for l in stderr.splitlines() if ": note: prefix_rewrite rewrites the path" in l]
    src, dst = bc.ROUTE_REWRITES[0]
    assert len(notes) == len(bc.LISTENERS), stderr
    assert all('judged "%sx" as sent' % src in l and 'receives "%sx"' % dst in l for l in notes), stderr


def _filter_said(b, case, r, cid):
    """What the filter decided for this request on the raw listener: ("allow", rule, None),
    ("deny", rule, reason), or None when something else answered (Envoy, TLS)."""
    if r.status == 200:
        seen = b.upstream.seen(cid)
        rule = [v for k, v in seen[0].headers if k == RULE_HEADER] if seen else []
        return ("allow", rule[0] if rule else None, None)
    if r.status in (403, 413):
        if case.method == "HEAD":
            return ("deny", None, None)
        body = r.json()
        if isinstance(body, dict) and body.get("error") == "forbidden":
            return ("deny", body.get("rule"), body.get("reason"))
    return None


def test_explain_decides_every_raw_listener_request_as_the_filter_did(bypass, tmp_path):
    """On the raw listener Envoy hands the filter each request as it was sent, so
    `mtls-authz explain`, given the same certificate, method, target, headers and
    body, must reach the decision (and rule and reason) the filter reached."""
    if not CLI.exists():
        pytest.fail("%s is missing: build it with bash scripts/build.sh" % CLI, pytrace=False)
    policy = tmp_path / "policy.json"
    policy.write_text(bc.policy_text())
    compared, mismatches = 0, []
    for case in bc.CASES:
        # Exact request bytes and raw HTTP/2 frames are about the codecs; a target that
        # is not origin-form, or holds whitespace, is split by the HTTP/1 codec before
        # the filter sees it.
        if case.proto not in ("h1", "h2") or case.request is not None or case.identity == bc.NO_CERT \
                or not case.target.startswith("/") or any(c.isspace() for c in case.target):
            continue
        cid = _case_id(case, "raw")
        said = _filter_said(bypass, case, bypass.outcomes[(case.name, "raw")], cid)
        if said is None:
            continue
        args = [str(CLI), "explain", "--policy", str(policy), "--cert", str(bypass.stems[case.identity]) + ".crt",
                "--method", case.method, "--path", case.target, "--format", "json"]
        for name, value in case.headers:
            args += ["--header", "%s: %s" % (name, value)]
        if case.body is not None:
            body_file = tmp_path / ("%s.body" % case.name)
            body_file.write_bytes(case.body)
            args += ["--body-file", str(body_file)]
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, "%s: explain failed: %s" % (case.name, p.stderr.decode(errors="replace"))
        got = json.loads(p.stdout)
        explained = (got["enforced"], got["rule"], got["reason"] if said[2] is not None else None)
        if said[0] == "deny" and case.method == "HEAD":
            explained = (got["enforced"], None, None)
        if explained != said:
            mismatches.append("%s: filter %s, explain %s" % (case.name, said, explained))
        # The engine's outcome, as explain prints it, is what Envoy sent: the reply
        # byte for byte, or the filter's headers as the upstream received them.
        r = bypass.outcomes[(case.name, "raw")]
        outcome = got["outcome"]
        if said[0] == "deny" and case.method != "HEAD":
            reply = outcome["response"] or {}
            if (reply.get("status"), reply.get("body", "").encode()) != (r.status, r.body):
                mismatches.append("%s: Envoy sent %s %r, explain says %s" % (case.name, r.status, r.body, reply))
        elif said[0] == "allow":
            seen = bypass.upstream.seen(cid)[0]
            ours = sorted((k, v) for k, v in seen.headers if k in OWN_HEADERS)
            wanted = sorted((k, v) for k, v in (outcome["upstream_headers"] or []))
            if ours != wanted:
                mismatches.append("%s: the upstream got %s, explain says %s" % (case.name, ours, wanted))
        compared += 1
    assert not mismatches, "explain and the filter disagree:\n" + "\n".join(mismatches)
    assert compared >= 150, "only %d cases compared" % compared
