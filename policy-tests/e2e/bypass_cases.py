#!/usr/bin/env python3
"""The authorization-bypass table, run by test_bypass.py through a real
Envoy on two listeners: `hardened` (normalize_path, merge_slashes, escaped
slashes REJECT: the shipped envoy.yaml) and `raw` (all of Envoy's path
normalisation off: the filter must hold on its own).

The table itself is data: policy-tests/cases/bypass.json (the policy, the
identities as certificate specs, the classes and every case with its
expectations; format in policy-tests/cases/README.md). `cargo test` runs the
same file through the engine, the filter over a mock host and the CLI
(cli/tests/corpus); this module loads it for the Envoy suite and the docs.

Each `Case` is one request, sent exactly as written, and what must happen to it
on each listener:

    allow(upstream, rule)  200 from the echo upstream, which received exactly
                           `upstream` as its request target, with the filter's
                           rule and principal headers and nothing forged
    deny(reason)           403 from the filter, the engine's `reason`; the
                           upstream never saw the request
    reject(status, by)     Envoy itself answered (codec, normalisation, router)
                           before the filter; the upstream never saw it
    drop(by)               no HTTP response at all (TLS refused, HTTP/2 stream
                           reset or connection closed); the upstream never saw it

The policy is BYPASS_POLICY: "report-service may only GET
/api/payment/query; order-service may only POST /api/payment/create; nobody on
/api/payment/admin/**", plus rules that give the identity classes something to
bite on (a wildcard dns_san, {cn} and {uri_san_last_segment} placeholders, and
an allow with a deny carve-out).

The bypass Envoy also has one route that rewrites the path
(RENAMED_PREFIX -> REWRITTEN_PREFIX, see ROUTE_REWRITES), so that a path Envoy
rewrites, and the x-envoy-original-path its router then adds, are covered.

`python3 policy-tests/e2e/bypass_cases.py --write-doc` regenerates the tables in
BYPASS.md from the cases (a test fails when they are stale).
"""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from filter_constants import reason

TABLE_FILE = Path(__file__).resolve().parents[1] / "cases" / "bypass.json"
TABLE = json.loads(TABLE_FILE.read_text())


def text(value):
    """A string field of bypass.json: a string, or a list of parts, each a
    string or {"repeat": CHARACTER, "times": N} (for the huge-path cases)."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else p["repeat"] * p["times"] for p in value)


def raw_bytes(value):
    """A bytes field (exact request bytes, bodies): one character per byte, U+0000-U+00FF."""
    return text(value).encode("latin-1")


BYPASS_POLICY = TABLE["policy"]
_RULES = {r["name"]: r for r in BYPASS_POLICY["rules"]}
# The paths the baseline rules allow (test_bypass.py warms a resumed session up with a denied GET of C).
Q = _RULES["reports-read-payment"]["paths"][0]  # /api/payment/query
C = _RULES["orders-create-payment"]["paths"][0]  # /api/payment/create


def policy_text():
    return json.dumps(BYPASS_POLICY, indent=2) + "\n"


# A route with prefix_rewrite, added in front of the catch-all route on both
# listeners (test_bypass.py). Envoy's router rewrites the path and sets
# x-envoy-original-path *after* the filter, so the filter judges the client's
# path (allowed by reports-read-docs) and must not take Envoy's own
# x-envoy-original-path for a client's override.
ROUTE_REWRITES = tuple(tuple(r) for r in TABLE["route_rewrites"])
((RENAMED_PREFIX, REWRITTEN_PREFIX),) = ROUTE_REWRITES


# --------------------------------------------------------------------------- identities

IDENTITIES = TABLE["identities"]


def _subject(spec):
    """The spec's subject as `openssl req -subj` takes it (`/` in a value escaped)."""
    return "".join("/%s=%s" % (k, v.replace("/", "\\/")) for k, v in spec["subject"])


def _san(spec):
    """The spec's SANs as an OpenSSL subjectAltName line, or None. `\\#`: a `#` in
    an OpenSSL extension file starts a comment unless escaped."""
    kinds = {"uri": "URI", "dns": "DNS", "ip": "IP"}
    items = ["%s:%s" % (kinds[k], v.replace("#", "\\#")) for san in spec["san"] for k, v in san.items()]
    return ", ".join(items) or None


# gen-certs.sh certificates (the specs say what gen-certs.sh makes; the suite uses its files).
BUILTIN_CERTS = tuple(n for n, s in IDENTITIES.items() if s.get("minted_by") == "envoy/gen-certs.sh")
# Certificates the suite signs with the harness's dev CA, in addition to the
# ones from envoy/gen-certs.sh: name -> (subject, subjectAltName or None, EKU).
EXTRA_CERTS = {n: (_subject(s), _san(s), s["eku"]) for n, s in IDENTITIES.items() if n not in BUILTIN_CERTS}

# What the filter must tell the upstream (x-mtls-authz-principal) for an
# identity whose request is allowed: the first URI SAN, else the CN, typed.
PRINCIPALS = {n: s["principal"] for n, s in IDENTITIES.items() if "principal" in s}
# `none` connects without a client certificate.
NO_CERT = TABLE["no_cert"]

LISTENERS = ("hardened", "raw")

# --------------------------------------------------------------------------- expectations

# The engine's refusal reasons as they appear in the 403 body, by their code
# in filter/constants.json (Reason::code in policy/src/decide.rs): a code the
# engine does not have fails at import, a reworded phrase needs no edit here.
R_NO_RULE = reason("default.deny")
R_DENY_RULE = reason("rule.deny")
R_DOT = reason("path.dot_segment")
R_SLASH = reason("path.encoded_slash")
R_BACKSLASH = reason("path.backslash")
R_NUL = reason("path.nul")
R_PERCENT = reason("path.encoded_percent")
R_INVALID_PCT = reason("path.invalid_percent_encoding")
R_PARAM = reason("path.path_parameter")
R_DELIM = reason("path.encoded_delimiter")
R_UTF8 = reason("path.invalid_utf8")
R_CHAR = reason("path.invalid_character")
R_LONG = reason("path.too_long")
R_METHOD = reason("method")
R_NO_PATH = reason("missing_request_data")
R_OVERRIDE = reason("override")
R_TRAILING = reason("path.trailing_dot_or_space")
R_LOOKALIKE = reason("path.lookalike_delimiter")
R_BODY_OVERRIDE = reason("body_override")
R_BODY_TOO_LARGE = reason("body_too_large")
R_BODY_UNREADABLE = reason("body_unreadable")


@dataclass(frozen=True)
class Expect:
    kind: str  # allow | deny | reject | drop
    status: int = None
    upstream: str = None  # allow: the exact request target the upstream must receive
    resource: str = None  # allow: the decoded path the policy authorised (default: upstream without query)
    upstream_headers: tuple = ()  # allow: (name, value) pairs the upstream must receive, e.g. Envoy's own
    rule: str = None  # allow: x-mtls-authz-rule; deny: the 403 body's "rule" (None: no rule)
    reason: str = None  # deny: the engine's reason, exactly as in the 403 body
    by: str = ""  # reject/drop: which layer answers
    body_held: bool = False  # deny: decided on the body, so the headers may have gone on; no body byte did

    def describe(self):
        if self.kind == "allow":
            s = "200, upstream gets `%s`" % self.upstream
            if self.resource and self.resource != self.upstream.split("?")[0]:
                s += " (= `%s`)" % self.resource
            s += " (rule `%s`)" % self.rule
            for k, v in self.upstream_headers:
                s += ", with `%s: %s`" % (k, v)
            return s
        if self.kind == "deny":
            s = "%d engine: %s" % (self.status, ("rule `%s`" % self.rule) if self.reason == R_DENY_RULE else self.reason)
            return s + ("; the headers may reach the upstream, the body never does" if self.body_held else "")
        if self.kind == "reject":
            return "%d Envoy: %s" % (self.status, self.by)
        return "no response: %s" % self.by


def allow(upstream, rule, resource=None, upstream_headers=()):
    return Expect("allow", 200, upstream=upstream, rule=rule, resource=resource or upstream.split("?")[0],
                  upstream_headers=tuple(upstream_headers))


def deny(reason, rule=None, status=403, body_held=False):
    return Expect("deny", status, reason=reason, rule=rule, body_held=body_held)


def reject(status, by):
    return Expect("reject", status, by=by)


def drop(by):
    return Expect("drop", None, by=by)




# --------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    name: str
    cls: str
    identity: str
    method: str
    target: str
    hardened: Expect
    raw: Expect = None  # None: same as hardened
    headers: tuple = ()
    proto: str = "h1"  # h1 (raw TLS socket) | h2 (curl --http2) | h2f (h2 frames) | h1-resumed
    request: bytes = None  # h1: the exact bytes ({cid} and {cid2} are replaced by case ids)
    h2_headers: tuple = None  # h2f: the exact header block
    body: bytes = None
    responses: int = 1  # h1: pipelined responses to read
    finding: str = None  # an open finding (BYPASS.md): the expectation is the secure one, the test xfail(strict)
    why: str = ""

    def expect(self, listener):
        return self.hardened if listener == "hardened" or self.raw is None else self.raw

    def shown(self):
        """How the request looks in the documentation."""
        if self.proto == "h2f":
            return "h2 frames: " + ", ".join("`%s: %s`" % (_esc(k), _esc(v)) if v else "`%s:`" % k
                                             for k, v in self.h2_headers)
        if self.request is not None:
            first = self.request.split(b"\r\n\r\n")[0].decode("latin-1")
            first = first.replace("{cid}", "ID").replace("{cid2}", "ID2")
            return "`%s`" % _esc(first.replace("\r\n", " \u23ce "))[:200].replace("\\u23ce", "⏎")
        proto = {"h1": "", "h2": "h2 ", "h1-resumed": "resumed TLS "}[self.proto]
        t = _esc(self.target if len(self.target) <= 80 else self.target[:40] + "...(%d bytes)" % len(self.target))
        s = "%s`%s %s`" % (proto, self.method, t)
        for k, v in self.headers:
            s += " `%s: %s`" % (k, v)
        return s


def _esc(s):
    """Control and non-ASCII characters as Python escapes, for the docs."""
    return "".join(c if 32 <= ord(c) < 127 else c.encode("unicode_escape").decode() for c in s)




def _expect(d):
    if d["kind"] == "allow":
        return allow(text(d["upstream"]), d["rule"], d.get("resource"), [tuple(h) for h in d.get("upstream_headers", ())])
    if d["kind"] == "deny":
        return deny(reason(d["reason"]), d.get("rule"), d.get("status", 403), d.get("body_held", False))
    if d["kind"] == "reject":
        return reject(d["status"], d["by"])
    if d["kind"] == "drop":
        return drop(d["by"])
    raise ValueError("%s: unknown expectation kind %r" % (TABLE_FILE, d["kind"]))


def _case(d):
    return Case(
        name=d["name"], cls=d["class"], identity=d["identity"], method=d["method"], target=text(d["target"]),
        hardened=_expect(d["hardened"]), raw=_expect(d["raw"]) if "raw" in d else None,
        headers=tuple(tuple(h) for h in d.get("headers", ())), proto=d.get("proto", "h1"),
        request=raw_bytes(d["request"]) if "request" in d else None,
        h2_headers=tuple(tuple(h) for h in d["h2_headers"]) if "h2_headers" in d else None,
        body=raw_bytes(d["body"]) if "body" in d else None, responses=d.get("responses", 1),
        finding=d.get("finding"), why=d.get("why", ""))


CASES = [_case(d) for d in TABLE["cases"]]


# --------------------------------------------------------------------------- classes (for the docs)

# key -> (title, what the research file calls it / sources, the decision and why)
CLASSES = {k: (c["title"], c["sources"], c["summary"]) for k, c in TABLE["classes"].items()}

def check_table():
    names = [c.name for c in CASES]
    dup = sorted({n for n in names if names.count(n) > 1})
    assert not dup, "duplicate case names: %s" % dup
    for c in CASES:
        assert re.fullmatch(r"[a-z0-9-]+", c.name), c.name
        assert c.cls in CLASSES, (c.name, c.cls)
    assert set(CLASSES) == {c.cls for c in CASES}, set(CLASSES) ^ {c.cls for c in CASES}


check_table()


# --------------------------------------------------------------------------- BYPASS.md

DOC = Path(__file__).resolve().parent / "BYPASS.md"
BEGIN, END = "<!-- bypass-table:begin (generated by bypass_cases.py --write-doc) -->", "<!-- bypass-table:end -->"


def _cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


def markdown():
    out = [BEGIN, ""]
    out.append("%d cases x 2 listeners. Hardened: `normalize_path`, `merge_slashes`, escaped slashes REJECT. "
               "Raw: all three off. `=` means as hardened." % len(CASES))
    for key, (title, sources, summary) in CLASSES.items():
        rows = [c for c in CASES if c.cls == key]
        out += ["", "### %s" % title, "", "Sources: %s. %s" % (sources, summary), "",
                "| case | request (identity) | hardened | raw | why |", "|---|---|---|---|---|"]
        for c in rows:
            hard = c.hardened.describe()
            raw = "=" if c.raw is None or c.raw == c.hardened else c.raw.describe()
            name = c.name + (" **(%s, xfail)**" % c.finding if c.finding else "")
            if c.finding:
                hard += "; today: not yet (finding %s)" % c.finding
            out.append("| %s | %s (%s) | %s | %s | %s |" % (_cell(name), _cell(c.shown()), c.identity, _cell(hard),
                                                        _cell(raw), _cell(c.why)))
    out += ["", END]
    return "\n".join(out)


def render_doc(text):
    b, e = text.find(BEGIN), text.find(END)
    if b < 0 or e < 0:
        raise SystemExit("BYPASS.md lacks the %r ... %r markers" % (BEGIN, END))
    return text[:b] + markdown() + text[e + len(END):]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-doc"]:
        DOC.write_text(render_doc(DOC.read_text()))
        print("wrote %s (%d cases)" % (DOC, len(CASES)))
    elif sys.argv[1:] == ["--policy"]:
        sys.stdout.write(policy_text())
    else:
        print("usage: bypass_cases.py --write-doc | --policy", file=sys.stderr)
        sys.exit(2)
