#!/usr/bin/env python3
"""The authorization-bypass table (issue #4), run by test_bypass.py through a real
Envoy on two listeners: `hardened` (normalize_path, merge_slashes, escaped
slashes REJECT: the shipped envoy.yaml) and `raw` (all of Envoy's path
normalisation off: the filter must hold on its own).

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

The policy is BYPASS_POLICY below: "report-service may only GET
/api/payment/query; order-service may only POST /api/payment/create; nobody on
/api/payment/admin/**", plus rules that give the identity classes something to
bite on (a wildcard dns_san, {cn} and {uri_san_last_segment} placeholders, and
an allow with a deny carve-out).

The bypass Envoy also has one route that rewrites the path
(RENAMED_PREFIX -> REWRITTEN_PREFIX, see ROUTE_REWRITES), so that a path Envoy
rewrites, and the x-envoy-original-path its router then adds, are covered.

`python3 policy-tests/e2e/bypass_cases.py --write-doc` regenerates the tables in
BYPASS.md from this file (a test fails when they are stale).
"""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from filter_constants import DRY_RUN_HEADER, PRINCIPAL_HEADER, REVISION_HEADER, RULE_HEADER, reason

ORDER = "spiffe://shop.test/ns/prod/sa/order"
REPORT = "spiffe://shop.test/ns/prod/sa/report"

BYPASS_POLICY = {
    "version": 1,
    "revision": "bypass-suite",
    "description": "issue #4 bypass suite (policy-tests/e2e/bypass_cases.py)",
    "default_action": "deny",
    "body_inspection_limit": 65536,
    "rules": [
        {"name": "orders-create-payment", "action": "allow",
         "principals": [{"uri_san": ORDER}, {"cn": "order-service"}],
         "paths": ["/api/payment/create"], "methods": ["POST"]},
        {"name": "reports-read-payment", "action": "allow",
         "principals": [{"cn": "report-service", "ou": "reporting"}],
         "paths": ["/api/payment/query"], "methods": ["GET"]},
        {"name": "nobody-on-admin", "action": "deny",
         "principals": [{"any": True}], "paths": ["/api/payment/admin/**"]},
        {"name": "api-hosts-read-status", "action": "allow",
         "principals": [{"dns_san": "*.api.shop.test"}], "paths": ["/api/status"], "methods": ["GET"]},
        {"name": "status-host-only", "action": "allow",
         "principals": [{"dns_san": "status.api.shop.test"}], "paths": ["/api/host-status"], "methods": ["GET"]},
        {"name": "own-inbox", "action": "allow",
         "principals": [{"any": True}], "paths": ["/inbox/{cn}/messages"], "methods": ["GET"]},
        {"name": "own-config", "action": "allow",
         "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/*"}],
         "paths": ["/config/{uri_san_last_segment}"], "methods": ["GET"]},
        {"name": "reports-read-docs", "action": "allow",
         "principals": [{"cn": "report-service", "ou": "reporting"}], "paths": ["/docs/**"], "methods": ["GET", "HEAD"]},
        {"name": "nobody-reads-exports", "action": "deny",
         "principals": [{"any": True}], "paths": ["/docs/exports/**"], "methods": ["GET"]},
        {"name": "own-profile", "action": "allow",
         "principals": [{"any": True}], "paths": ["/profiles/{uri_san_last_segment}"], "methods": ["GET"]},
        {"name": "orders-any-namespace", "action": "allow",
         "principals": [{"uri_san": "spiffe://shop.test/ns/*/sa/order"}], "paths": ["/api/order-status"], "methods": ["GET"]},
        {"name": "nobody-on-internal-docs", "action": "deny",
         "principals": [{"any": True}], "paths": ["/docs/internal/**"]},
    ],
}


def policy_text():
    return json.dumps(BYPASS_POLICY, indent=2) + "\n"


# A route with prefix_rewrite, added in front of the catch-all route on both
# listeners (test_bypass.py). Envoy's router rewrites the path and sets
# x-envoy-original-path *after* the filter, so the filter judges the client's
# path (allowed by reports-read-docs) and must not take Envoy's own
# x-envoy-original-path for a client's override.
RENAMED_PREFIX = "/docs/renamed/"
REWRITTEN_PREFIX = "/docs/public/"
ROUTE_REWRITES = ((RENAMED_PREFIX, REWRITTEN_PREFIX),)


# --------------------------------------------------------------------------- identities

# Certificates the suite signs with the harness's dev CA, in addition to the
# ones from envoy/gen-certs.sh: name -> (subject, subjectAltName or None, EKU).
EXTRA_CERTS = {
    "multi-san": ("/CN=multi-san", "URI:%s, URI:%s" % (REPORT, ORDER), "clientAuth"),
    "two-cn": ("/CN=order-service/CN=report-service", None, "clientAuth"),
    "uri-suffix": ("/CN=uri-suffix", "URI:%s/extra" % ORDER, "clientAuth"),
    "uri-nested": ("/CN=uri-nested", "URI:spiffe://shop.test/ns/prod/sa/team/order", "clientAuth"),
    "uri-evil-ns": ("/CN=uri-evil-ns", "URI:spiffe://shop.test/ns/evil/sa/order", "clientAuth"),
    "uri-dots": ("/CN=uri-dots", "URI:spiffe://shop.test/ns/prod/sa/x/../order", "clientAuth"),
    "uri-upper": ("/CN=uri-upper", "URI:SPIFFE://shop.test/ns/prod/sa/order", "clientAuth"),
    "wild-one": ("/CN=wild-one", "DNS:evil.api.shop.test", "clientAuth"),
    "wild-nested": ("/CN=wild-nested", "DNS:a.b.api.shop.test", "clientAuth"),
    "wild-bare": ("/CN=wild-bare", "DNS:api.shop.test", "clientAuth"),
    "wild-regex": ("/CN=wild-regex", "DNS:evil.apixshop.test", "clientAuth"),
    "wild-upper": ("/CN=wild-upper", "DNS:EVIL.API.SHOP.TEST", "clientAuth"),
    "wild-literal": ("/CN=wild-literal", "DNS:*.api.shop.test", "clientAuth"),
    "wild-trailing-dot": ("/CN=wild-trailing-dot", "DNS:evil.api.shop.test.", "clientAuth"),
    "uri-query-order": ("/CN=uri-query-order", "URI:spiffe://shop.test/ns/dev/sa/x?/order", "clientAuth"),
    # `\#`: a `#` in an OpenSSL extension file starts a comment unless escaped.
    "uri-fragment-order": ("/CN=uri-fragment-order", "URI:spiffe://shop.test/ns/dev/sa/x\\#/order", "clientAuth"),
    "uri-fragment-ns": ("/CN=uri-fragment-ns", "URI:spiffe://shop.test/ns/dev\\#/sa/order", "clientAuth"),
    "cn-dotdot": ("/CN=..", None, "clientAuth"),
    "cn-slash": ("/CN=order-service\\/..\\/report-service", None, "clientAuth"),
    "eku-server": ("/CN=order-service", "URI:%s" % ORDER, "serverAuth"),
}

# What the filter must tell the upstream (x-mtls-authz-principal) for an
# identity whose request is allowed: the first URI SAN, else the CN, typed.
PRINCIPALS = {
    "order-service": "uri=" + ORDER, "report-service": "uri=" + REPORT, "confused": "uri=" + ORDER,
    "multi-san": "uri=" + REPORT,
    "wild-one": "cn=wild-one", "wild-upper": "cn=wild-upper", "wild-literal": "cn=wild-literal",
    "wild-trailing-dot": "cn=wild-trailing-dot",
}
# gen-certs.sh certificates; `none` connects without a client certificate.
BUILTIN_CERTS = ("order-service", "report-service", "unknown-service", "confused", "expired", "untrusted")
NO_CERT = "none"

LISTENERS = ("hardened", "raw")


# --------------------------------------------------------------------------- expectations

# The engine's refusal reasons as they appear in the 403 body, by their code
# in filter/constants.json (Reason::code in policy/src/decide.rs): a code the
# engine does not have fails at import, a reworded phrase needs no edit here.
R_NO_RULE = reason("default.deny")
R_DENY_RULE = reason("rule.deny")
R_DOT = reason("path.dot_segment")
R_EMPTY = reason("path.empty_segment")
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


DENY_ADMIN = deny(R_DENY_RULE, "nobody-on-admin")
DENY_INTERNAL = deny(R_DENY_RULE, "nobody-on-internal-docs")
NO_RULE = deny(R_NO_RULE)
ESCAPED_SLASH_400 = reject(400, "path_with_escaped_slashes_action: REJECT_REQUEST")
CODEC_400 = reject(400, "HTTP/1 codec refuses the request line or header")
FRAGMENT_400 = reject(400, "a '#' fragment in the request target is refused")
NUL_400 = reject(400, "normalize_path refuses an encoded NUL")
NON_ORIGIN_404 = reject(404, "connection manager routes only origin-form ('/...') paths")
UNDERSCORE_400 = reject(400, "headers_with_underscores_action: REJECT_REQUEST")
H2_CLOSED = drop("HTTP/2 codec: malformed request (messaging rule violation), connection closed")
H2_UNDERSCORE_RESET = drop("headers_with_underscores_action: REJECT_REQUEST resets the HTTP/2 stream")
TLS_REFUSED = drop("TLS handshake refused: Envoy verifies the client certificate")

# The request reaching both listeners; Envoy (hardened) normalises it to this.
Q = "/api/payment/query"
C = "/api/payment/create"
Q_ALLOWED = allow(Q, "reports-read-payment")
C_ALLOWED = allow(C, "orders-create-payment")


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


CASES = []


def case(name, cls, identity, method, target, hardened, raw=None, **kw):
    CASES.append(Case(name, cls, identity, method, target, hardened, raw, **kw))


def both(name, cls, identity, method, target, hardened, raw=None, h2=None, **kw):
    """The same request over HTTP/1.1 and HTTP/2 (curl --http2); `h2`: what
    happens over HTTP/2 instead, on both listeners, where the codecs differ."""
    case(name, cls, identity, method, target, hardened, raw, **kw)
    if h2 is not None:
        hardened, raw = h2, None
    else:
        kw["why"] = "the same over HTTP/2"
    case(name + "-h2", cls, identity, method, target, hardened, raw, proto="h2", **kw)


R = "report-service"
O = "order-service"

# -- baseline: the policy itself, both protocols
both("report-reads-query", "baseline", R, "GET", Q, Q_ALLOWED, why="the one thing report-service may do")
both("report-cannot-create", "baseline", R, "POST", C, NO_RULE, why="report-service may not create")
both("order-creates", "baseline", O, "POST", C, C_ALLOWED, why="the one thing order-service may do")
both("order-cannot-get-create", "baseline", O, "GET", C, NO_RULE, why="wrong method")
both("order-cannot-query", "baseline", O, "GET", Q, NO_RULE, why="wrong identity")
both("unknown-denied", "baseline", "unknown-service", "GET", Q, NO_RULE, why="matches no principal")
both("admin-denied", "baseline", O, "GET", "/api/payment/admin/x", DENY_ADMIN, why="deny rule")

# -- dot segments
both("dotdot", "dot", R, "GET", "/api/payment/x/../query", Q_ALLOWED, deny(R_DOT),
     why="Envoy resolves `..` and forwards what it authorised; raw: the engine refuses dot segments")
both("dot", "dot", R, "GET", "/api/payment/./query", Q_ALLOWED, deny(R_DOT), why="same for `.`")
both("dotdot-lower", "dot", R, "GET", "/api/payment/%2e%2e/payment/query", Q_ALLOWED, deny(R_DOT),
     why="normalize_path decodes `%2e` first; the engine decodes before checking")
case("dotdot-upper", "dot", R, "GET", "/api/payment/%2E%2E/payment/query", Q_ALLOWED, deny(R_DOT))
case("dotdot-mixed", "dot", R, "GET", "/api/payment/.%2e/payment/query", Q_ALLOWED, deny(R_DOT))
case("dot-encoded", "dot", R, "GET", "/api/payment/%2e/query", Q_ALLOWED, deny(R_DOT))
both("dotdot-escape-query-into-admin", "dot", R, "GET", "/api/payment/query/../admin/x", DENY_ADMIN, deny(R_DOT),
     why="`..` cannot step out of an allowed prefix into a denied one")
case("dotdot-encoded-into-admin", "dot", R, "GET", "/api/payment/query/%2e%2e/admin/x", DENY_ADMIN, deny(R_DOT))
case("dotdot-admin-to-query", "dot", R, "GET", "/api/payment/admin/../query", Q_ALLOWED, deny(R_DOT),
     why="the upstream gets the resolved path, so allowing it is right")
case("dotdot-above-root", "dot", R, "GET", "/../api/payment/query", Q_ALLOWED, deny(R_DOT),
     why="`..` above the root is dropped by normalize_path")
case("dotdot-then-create", "dot", R, "GET", "/api/payment/query/../create", NO_RULE, deny(R_DOT))
case("dotdot-no-leading-segment", "dot", R, "GET", "/api/payment/query/..", deny(R_EMPTY), deny(R_DOT),
     why="normalize_path leaves `/api/payment/` (trailing slash), which the engine refuses")

# -- multiple slashes
both("leading-double-slash", "slashes", R, "GET", "//api/payment/query", Q_ALLOWED, deny(R_EMPTY),
     why="merge_slashes; raw: empty segments are refused (backends disagree on them)")
case("inner-double-slash", "slashes", R, "GET", "/api//payment/query", Q_ALLOWED, deny(R_EMPTY))
case("many-slashes", "slashes", R, "GET", "///api///payment///query", Q_ALLOWED, deny(R_EMPTY))
case("double-slash-into-admin", "slashes", R, "GET", "/api/payment//admin/x", DENY_ADMIN, deny(R_EMPTY))
case("double-slash-carve-out", "slashes", R, "GET", "/docs//internal/secret", DENY_INTERNAL, deny(R_EMPTY),
     why="`//` cannot dodge a deny carve-out inside an allowed prefix")

# -- escaped slashes and backslashes
both("encoded-slash", "escaped-slash", R, "GET", "/api/payment%2Fquery", ESCAPED_SLASH_400, deny(R_SLASH),
     why="ambiguous separator: refused by Envoy, and by the engine on its own")
case("encoded-slash-lower", "escaped-slash", R, "GET", "/api/payment%2fquery", ESCAPED_SLASH_400, deny(R_SLASH))
both("encoded-backslash", "escaped-slash", R, "GET", "/api/payment%5Cquery", ESCAPED_SLASH_400, deny(R_BACKSLASH))
both("raw-backslash", "escaped-slash", R, "GET", "/api\\payment\\query", Q_ALLOWED, deny(R_BACKSLASH),
     why="normalize_path turns `\\` into `/` and forwards that; raw: refused")
case("encoded-slash-dotdot", "escaped-slash", R, "GET", "/api/payment/admin%2F..%2Fquery", ESCAPED_SLASH_400,
     deny(R_SLASH))
case("encoded-dotdot-slash-carve-out", "escaped-slash", R, "GET", "/docs/public/..%2finternal/secret",
     ESCAPED_SLASH_400, deny(R_SLASH))
case("encoded-slash-in-placeholder", "escaped-slash", O, "GET", "/inbox/order-service%2F..%2Freport-service/messages",
     ESCAPED_SLASH_400, deny(R_SLASH), why="no encoded separator can make a {cn} segment")

# -- fragments
both("fragment", "fragment", R, "GET", Q + "#x", FRAGMENT_400,
     why="Envoy refuses fragments (clients never send them), on every listener")
case("fragment-dotdot", "fragment", R, "GET", C + "#/../query", FRAGMENT_400)
case("encoded-hash", "fragment", R, "GET", Q + "%23x", deny(R_DELIM),
     why="an encoded `#` would split the path in a decoding backend")

# -- query strings
both("query-looks-like-path", "query", R, "GET", C + "?/query", NO_RULE,
     why="the query never matters: this is /api/payment/create")
case("query-with-allowed-path", "query", R, "GET", C + "?x=" + Q, NO_RULE)
both("query-kept", "query", R, "GET", Q + "?id=42", allow(Q + "?id=42", "reports-read-payment"),
     why="allowed; the upstream gets the path and its query unchanged")
case("query-with-dotdot", "query", R, "GET", Q + "?x=/../create", allow(Q + "?x=/../create", "reports-read-payment"),
     why="normalisation never touches the query")
case("encoded-question-mark", "query", R, "GET", Q + "%3fx", deny(R_DELIM),
     why="`%3f` would become a query separator in a decoding backend")
case("empty-query", "query", R, "GET", Q + "?", allow(Q + "?", "reports-read-payment"))

# -- ; path parameters
both("param-last-segment", "path-param", R, "GET", Q + ";x", deny(R_PARAM),
     why="backends strip `;...` per segment; the engine refuses `;` instead of guessing")
case("param-middle-segment", "path-param", R, "GET", "/api/payment;x/query", deny(R_PARAM))
case("param-dotdot-to-create", "path-param", R, "GET", Q + ";/../create", NO_RULE, deny(R_PARAM),
     why="normalize_path resolves `query;/..` to /api/payment/create (what the upstream would get): no rule")
case("param-tomcat-dotdot", "path-param", R, "GET", "/docs/public/..;/internal/secret", DENY_INTERNAL, deny(R_PARAM),
     why="Tomcat reads `..;` as `..`: Envoy resolves it and meets the deny rule; raw: `;` refused")
case("param-encoded", "path-param", R, "GET", Q + "%3bx", deny(R_PARAM))
case("param-placeholder", "path-param", O, "GET", "/inbox/order-service;x/messages", deny(R_PARAM))

# -- case
both("upper-prefix", "case", R, "GET", "/API/payment/query", NO_RULE, why="paths are case-sensitive")
case("upper-segment", "case", R, "GET", "/api/Payment/query", NO_RULE)
case("upper-all", "case", R, "GET", "/API/PAYMENT/QUERY", NO_RULE)
case("upper-placeholder", "case", O, "GET", "/inbox/ORDER-SERVICE/messages", NO_RULE, why="{cn} is case-sensitive too")
case("upper-admin", "case", O, "GET", "/api/payment/ADMIN/x", NO_RULE,
     why="not the deny rule, but no allow rule either: default deny")

# -- trailing slash and /.
both("trailing-slash", "trailing", R, "GET", Q + "/", deny(R_EMPTY),
     why="`/query/` may or may not be `/query` to a backend: refused")
both("trailing-dot", "trailing", R, "GET", Q + "/.", deny(R_EMPTY), deny(R_DOT),
     why="normalize_path makes it `/query/` (still refused)")
case("trailing-encoded-dot", "trailing", R, "GET", Q + "/%2e", deny(R_EMPTY), deny(R_DOT))
case("trailing-slash-admin", "trailing", O, "GET", "/api/payment/admin/", deny(R_EMPTY))
case("trailing-dot-segment-admin", "trailing", O, "GET", "/api/payment/admin/.", deny(R_EMPTY), deny(R_DOT))

# -- double encoding, overlong UTF-8, NUL
both("double-encoded-slash", "encoding", R, "GET", "/api/payment%252fquery", deny(R_PERCENT),
     why="`%25` is refused outright: no second decoding can produce a separator")
case("double-encoded-dotdot", "encoding", R, "GET", "/api/payment/admin/%252e%252e/query", deny(R_PERCENT))
both("overlong-slash-2", "encoding", R, "GET", "/api/payment%c0%afquery", deny(R_UTF8),
     why="overlong UTF-8 `/` has no single decoding")
case("overlong-slash-3", "encoding", R, "GET", "/api/payment%e0%80%afquery", deny(R_UTF8))
case("overlong-dot", "encoding", R, "GET", "/api/payment/%c0%ae%c0%ae/query", deny(R_UTF8))
case("invalid-utf8", "encoding", R, "GET", Q + "%ff", deny(R_UTF8))
both("encoded-nul", "encoding", R, "GET", Q + "%00", NUL_400, deny(R_NUL),
     why="Envoy refuses `%00` when normalising; the engine on its own")
case("encoded-nul-middle", "encoding", R, "GET", "/api/payment%00/query", NUL_400, deny(R_NUL))
case("raw-nul", "encoding", R, "GET", Q, CODEC_400, request=b"GET " + Q.encode() + b"\x00 HTTP/1.1\r\nHost: x\r\n"
     b"x-case-id: {cid}\r\nConnection: close\r\n\r\n", why="a raw NUL never gets past the codec")
case("encoded-control", "encoding", R, "GET", Q + "%0d%0aX:%20y", deny(R_CHAR), why="CR LF decoded are control characters")
case("broken-escape", "encoding", R, "GET", Q + "%", deny(R_INVALID_PCT))
case("broken-escape-hex", "encoding", R, "GET", Q + "%zz", deny(R_INVALID_PCT))
both("unreserved-escape", "encoding", R, "GET", "/api/payment/%71uery", Q_ALLOWED,
     allow("/api/payment/%71uery", "reports-read-payment", resource=Q),
     why="`%71` is `q` (RFC 3986 equivalent): hardened forwards `query`; raw forwards the escape, which decodes "
         "to the path the engine allowed")
case("unreserved-escape-admin", "encoding", O, "GET", "/api/payment/%61dmin/x", DENY_ADMIN,
     why="escapes are decoded before matching, so they meet deny rules")
case("unreserved-escape-placeholder", "encoding", O, "GET", "/inbox/order%2Dservice/messages",
     allow("/inbox/order-service/messages", "own-inbox"),
     allow("/inbox/order%2Dservice/messages", "own-inbox", resource="/inbox/order-service/messages"))

# -- duplicate and odd headers
FORGED_XFCC = 'By=spiffe://shop.test/ns/prod/sa/payment;Hash=00;Subject="CN=order-service";URI=' + ORDER
case("duplicate-host", "headers", R, "GET", Q, Q_ALLOWED, headers=(("Host", "a.example"), ("Host", "b.example")),
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nx-case-id: {cid}\r\n"
     b"Connection: close\r\n\r\n", why="the host is not a decision input (Envoy merges the two)")
case("duplicate-principal-header", "headers", R, "GET", Q, Q_ALLOWED,
     headers=((PRINCIPAL_HEADER, ORDER), (PRINCIPAL_HEADER, ORDER)),
     why="both copies replaced by the filter's one value")
case("comma-joined-principal-header", "headers", R, "GET", Q, Q_ALLOWED,
     headers=((PRINCIPAL_HEADER, ORDER + ", " + REPORT), (RULE_HEADER, "orders-create-payment, x")))
case("duplicate-principal-header-denied", "headers", R, "POST", C, NO_RULE,
     headers=((PRINCIPAL_HEADER, ORDER), (PRINCIPAL_HEADER, ORDER)))
both("duplicate-xfcc", "headers", R, "GET", Q, Q_ALLOWED,
     headers=(("x-forwarded-client-cert", FORGED_XFCC), ("x-forwarded-client-cert", FORGED_XFCC)),
     why="forward_client_cert_details: SANITIZE drops every copy")
case("comma-joined-xfcc", "headers", R, "GET", Q, Q_ALLOWED,
     headers=(("x-forwarded-client-cert", FORGED_XFCC + "," + FORGED_XFCC),))
case("trailing-space-value", "headers", R, "GET", Q, Q_ALLOWED, headers=((PRINCIPAL_HEADER, ORDER + "   "),),
     why="value whitespace is trimmed by the codec and the header replaced anyway")
case("space-before-colon", "headers", R, "GET", Q, CODEC_400,
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\n" + PRINCIPAL_HEADER.encode() + b" : " + ORDER.encode()
     + b"\r\nx-case-id: {cid}\r\nConnection: close\r\n\r\n", why="RFC 9112: whitespace before `:` must be refused")
case("tab-before-colon", "headers", R, "GET", Q, CODEC_400,
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\n" + PRINCIPAL_HEADER.encode() + b"\t: " + ORDER.encode()
     + b"\r\nx-case-id: {cid}\r\nConnection: close\r\n\r\n")
case("obs-fold", "headers", R, "GET", Q, Q_ALLOWED,
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid}\r\nx-note: a\r\n"
     b" " + PRINCIPAL_HEADER.encode() + b": " + ORDER.encode() + b"\r\nConnection: close\r\n\r\n",
     why="obsolete line folding is unfolded into the previous value (`x-note`), as RFC 9112 allows: no second "
         "header appears, and the upstream gets one `x-note` line")
both("underscore-header", "headers", R, "GET", Q, UNDERSCORE_400, headers=((PRINCIPAL_HEADER.replace("-", "_"), ORDER),),
     h2=H2_UNDERSCORE_RESET, why="stacks that fold `_` into `-` would see a second principal header")
case("cl-and-te", "headers", R, "GET", Q, CODEC_400,
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid}\r\nContent-Length: 44\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST " + C.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     why="Content-Length with Transfer-Encoding (request smuggling) is refused")
case("pipelined-denied-second", "headers", R, "GET", Q, Q_ALLOWED, responses=2,
     request=b"GET " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid}\r\n\r\n"
     b"POST " + C.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid2}\r\nContent-Length: 0\r\n"
     b"Connection: close\r\n\r\n",
     why="each pipelined request is decided on its own: the second (POST create) gets 403 and never reaches "
         "the upstream")
case("upgrade-websocket", "headers", R, "GET", Q, reject(403, "no upgrade is configured: the connection manager "
                                                              "refuses the WebSocket upgrade"),
     headers=(("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
              ("Sec-WebSocket-Version", "13")), why="a tunnel would carry requests the filter never sees")
case("upgrade-h2c", "headers", R, "GET", Q, Q_ALLOWED,
     headers=(("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")),
     why="h2c smuggling: Envoy drops `Upgrade: h2c`, so the upstream cannot switch protocols behind the filter")
case("connection-nominates-filter-headers", "headers", R, "GET", Q, Q_ALLOWED,
     headers=(("Connection", "%s, %s" % (PRINCIPAL_HEADER, RULE_HEADER)),),
     why="hop-by-hop nomination does not strip the filter's headers on the way upstream")
case("raw-non-ascii", "headers", R, "GET", "/api/payment/qu\xe9ry", CODEC_400, why="raw non-ASCII in the target")
case("raw-del", "headers", R, "GET", Q + "\x7f", CODEC_400)
case("tab-after-target", "headers", R, "GET", Q + "\t", Q_ALLOWED, why="the codec splits the request line on the tab; "
     "the target is /api/payment/query")
case("double-space-request-line", "headers", R, "GET", Q, Q_ALLOWED,
     request=b"GET  " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid}\r\nConnection: close\r\n\r\n",
     why="tolerated by the codec; the target is still exactly /api/payment/query")
case("two-targets-request-line", "headers", R, "GET", Q, CODEC_400,
     request=b"GET " + C.encode() + b" " + Q.encode() + b" HTTP/1.1\r\nHost: x\r\nx-case-id: {cid}\r\n"
     b"Connection: close\r\n\r\n")
case("http10", "headers", R, "GET", Q, reject(426, "HTTP/1.0 is not accepted (426 Upgrade Required)"),
     request=b"GET " + Q.encode() + b" HTTP/1.0\r\nHost: x\r\nx-case-id: {cid}\r\n\r\n")

# -- forged client-certificate and identity headers
both("forged-xfcc-denied", "forged", R, "POST", C, NO_RULE, headers=(("x-forwarded-client-cert", FORGED_XFCC),),
     why="identity comes from the TLS connection only")
both("forged-principal-denied", "forged", R, "POST", C, NO_RULE,
     headers=((PRINCIPAL_HEADER, ORDER), (RULE_HEADER, "orders-create-payment")))
case("forged-all-unknown", "forged", "unknown-service", "POST", C, NO_RULE,
     headers=(("x-forwarded-client-cert", FORGED_XFCC), (PRINCIPAL_HEADER, ORDER),
              (RULE_HEADER, "orders-create-payment"), (DRY_RUN_HEADER, "deny")))
both("forged-replaced-on-allow", "forged", R, "GET", Q, Q_ALLOWED,
     headers=(("x-forwarded-client-cert", FORGED_XFCC), (PRINCIPAL_HEADER, ORDER),
              (RULE_HEADER, "orders-create-payment"), (DRY_RUN_HEADER, "deny")),
     why="the upstream sees the filter's principal and rule, no XFCC, no dry-run marker")
case("forged-revision-header", "forged", R, "GET", Q, Q_ALLOWED, headers=((REVISION_HEADER, "v0-forged"),),
     why="the policy revision header, too, is the filter's alone")
case("forged-upper-case-names", "forged", R, "GET", Q, Q_ALLOWED,
     headers=((PRINCIPAL_HEADER.upper(), ORDER), ("X-Forwarded-Client-Cert", FORGED_XFCC)))
case("forged-ssl-client-headers", "forged", "unknown-service", "POST", C, NO_RULE,
     headers=(("ssl-client-subject-dn", "CN=order-service"), ("x-ssl-client-cn", "order-service"),
              ("x-client-cert", "-----BEGIN CERTIFICATE-----")))

# -- SAN vs CN confusion, several SANs
case("confused-is-its-san", "san-cn", "confused", "POST", C, C_ALLOWED,
     why="CN=report-service but URI SAN order: matches the orders rule by its SAN, and the upstream is told "
         "the SAN identity")
case("confused-cn-alone-not-report", "san-cn", "confused", "GET", Q, NO_RULE,
     why="the reports principal needs CN *and* OU; a CN alone is not report-service")
case("multi-san-any-uri", "san-cn", "multi-san", "POST", C, C_ALLOWED,
     why="`uri_san` matches any URI SAN: a CA that signs two SPIFFE IDs into one certificate grants both")
case("multi-san-not-report-by-cn", "san-cn", "multi-san", "GET", Q, NO_RULE)
case("two-cn-no-cn", "san-cn", "two-cn", "POST", C, NO_RULE,
     why="a certificate with two CNs matches no `cn` principal (ambiguous)")
case("uri-suffix", "san-cn", "uri-suffix", "POST", C, NO_RULE, why="`uri_san` without `*` is exact")
case("uri-dot-segments", "san-cn", "uri-dots", "POST", C, NO_RULE, why="no normalisation of the SAN either")
case("uri-upper-scheme", "san-cn", "uri-upper", "POST", C, NO_RULE)
case("cert-resumed-session", "san-cn", R, "POST", C, NO_RULE, proto="h1-resumed",
     why="a resumed TLS session keeps report-service's identity (no identity switch on resumption)")

# -- wildcard over-matching
case("wildcard-one-label", "wildcard", "wild-one", "GET", "/api/status", allow("/api/status", "api-hosts-read-status"),
     why="`*.api.shop.test` matches exactly one label")
case("wildcard-two-labels", "wildcard", "wild-nested", "GET", "/api/status", NO_RULE, why="not two labels")
case("wildcard-no-label", "wildcard", "wild-bare", "GET", "/api/status", NO_RULE, why="not zero labels")
case("wildcard-dot-is-literal", "wildcard", "wild-regex", "GET", "/api/status", NO_RULE,
     why="`.` is a literal dot, not a regex `.` (evil.apixshop.test)")
case("wildcard-trailing-dot", "wildcard", "wild-trailing-dot", "GET", "/api/status",
     allow("/api/status", "api-hosts-read-status"),
     why="`evil.api.shop.test.` is the fully qualified spelling of `evil.api.shop.test`: one label under the wildcard")
case("wildcard-dns-case", "wildcard", "wild-upper", "GET", "/api/status", allow("/api/status", "api-hosts-read-status"),
     why="DNS names compare case-insensitively (documented)")
case("wildcard-cert-literal-star", "wildcard", "wild-literal", "GET", "/api/status",
     allow("/api/status", "api-hosts-read-status"),
     why="a CA-signed SAN `*.api.shop.test` is one label `*` under api.shop.test: no more than any one label")
case("wildcard-cert-not-expanded", "wildcard", "wild-literal", "GET", "/api/host-status", NO_RULE,
     why="a wildcard in the certificate never matches an exact `status.api.shop.test`")
case("uri-wildcard-one-segment", "wildcard", "uri-nested", "GET", "/config/order", NO_RULE,
     why="`spiffe://shop.test/ns/prod/sa/*`: `*` is one segment, not `team/order`")
case("uri-wildcard-other-namespace", "wildcard", "uri-evil-ns", "GET", "/config/order", NO_RULE)
case("uri-wildcard-dot-segments", "wildcard", "uri-dots", "GET", "/config/order", NO_RULE)
case("path-wildcard-multi-san", "wildcard", "multi-san", "GET", "/config/order", NO_RULE,
     why="several URI SANs: no {uri_san_last_segment}")
case("placeholder-uri-last-segment", "wildcard", O, "GET", "/config/order", allow("/config/order", "own-config"))
case("placeholder-uri-other", "wildcard", O, "GET", "/config/report", NO_RULE)
case("placeholder-uri-own-profile", "wildcard", O, "GET", "/profiles/order", allow("/profiles/order", "own-profile"),
     why="`{uri_san_last_segment}` of spiffe://shop.test/ns/prod/sa/order is `order`")
case("placeholder-uri-after-query", "wildcard", "uri-query-order", "GET", "/profiles/order", NO_RULE,
     why="`spiffe://shop.test/ns/dev/sa/x?/order`: `order` is in the query, not the path; a URI with a query gives no value")
case("placeholder-uri-after-fragment", "wildcard", "uri-fragment-order", "GET", "/profiles/order", NO_RULE,
     why="nor does one with a fragment (`.../sa/x#/order`)")
case("uri-wildcard-any-namespace", "wildcard", O, "GET", "/api/order-status", allow("/api/order-status", "orders-any-namespace"))
case("uri-wildcard-fragment-namespace", "wildcard", "uri-fragment-ns", "GET", "/api/order-status", NO_RULE,
     why="`spiffe://shop.test/ns/dev#/sa/order` is not in a namespace: SPIFFE IDs have no fragment, so no wildcard matches it")

# -- {cn} placeholder
case("placeholder-own-inbox", "placeholder", O, "GET", "/inbox/order-service/messages",
     allow("/inbox/order-service/messages", "own-inbox"))
both("placeholder-other-inbox", "placeholder", O, "GET", "/inbox/report-service/messages", NO_RULE)
case("placeholder-dotdot-into-other", "placeholder", O, "GET", "/inbox/order-service/../report-service/messages",
     NO_RULE, deny(R_DOT), why="Envoy resolves to report-service's inbox: not order's")
case("placeholder-cn-dotdot", "placeholder", "cn-dotdot", "GET", "/inbox/../messages", NO_RULE, deny(R_DOT),
     why="CN `..` never binds {cn}; the path cannot carry `..` anyway")
case("placeholder-cn-dotdot-encoded", "placeholder", "cn-dotdot", "GET", "/inbox/%2e%2e/messages", NO_RULE, deny(R_DOT))
case("placeholder-cn-with-slash", "placeholder", "cn-slash", "GET",
     "/inbox/order-service%2F..%2Freport-service/messages", ESCAPED_SLASH_400, deny(R_SLASH),
     why="CN `order-service/../report-service` never binds {cn} (contains `/`)")
case("placeholder-two-cn", "placeholder", "two-cn", "GET", "/inbox/order-service/messages", NO_RULE,
     why="two CNs: no {cn}")
case("placeholder-confused-cn", "placeholder", "confused", "GET", "/inbox/report-service/messages",
     allow("/inbox/report-service/messages", "own-inbox"),
     why="{cn} is the subject CN: the confused certificate *is* CN=report-service (a CA issuing such a "
         "certificate is the problem; see BYPASS.md)")

# -- validity
case("no-client-cert", "validity", NO_CERT, "GET", Q, TLS_REFUSED, why="require_client_certificate")
case("expired-cert", "validity", "expired", "POST", C, TLS_REFUSED)
case("untrusted-ca", "validity", "untrusted", "POST", C, TLS_REFUSED)
case("server-only-eku", "validity", "eku-server", "POST", C, TLS_REFUSED,
     why="a certificate for serverAuth only is not a client certificate")

# -- HTTP/2 pseudo-headers (raw frames)
H2_BASE = ((":method", "GET"), (":scheme", "https"), (":authority", "localhost"))


def h2f(name, block, hardened, raw=None, why="", identity=R):
    case(name, "h2-pseudo", identity, dict(block).get(":method", "-"), dict(block).get(":path", "-"), hardened, raw,
         proto="h2f", h2_headers=tuple(block), why=why)


h2f("h2-frames-baseline", H2_BASE + ((":path", Q),), Q_ALLOWED, why="the raw-frame client itself works")
h2f("h2-missing-path", H2_BASE, H2_CLOSED, why="`:path` is mandatory for GET")
h2f("h2-duplicate-path", H2_BASE + ((":path", Q), (":path", C)), H2_CLOSED,
    why="the one place a duplicate path is expressible: refused before any filter")
h2f("h2-empty-path", H2_BASE + ((":path", ""),), H2_CLOSED)
h2f("h2-path-no-slash", H2_BASE + ((":path", Q[1:]),), H2_CLOSED)
h2f("h2-path-asterisk", H2_BASE + ((":path", "*"),), H2_CLOSED)
h2f("h2-path-absolute", H2_BASE + ((":path", "https://localhost" + Q),), H2_CLOSED)
h2f("h2-path-space", H2_BASE + ((":path", Q + " x"),), H2_CLOSED)
h2f("h2-duplicate-method", H2_BASE + ((":path", Q), (":method", "POST")), H2_CLOSED)
h2f("h2-pseudo-after-regular", ((":method", "GET"), (":scheme", "https"), ("x-a", "1"), (":authority", "localhost"),
                                (":path", Q)), H2_CLOSED)
h2f("h2-missing-authority", ((":method", "GET"), (":scheme", "https"), (":path", Q)), H2_CLOSED)
h2f("h2-upper-case-name", H2_BASE + ((":path", Q), ("X-Mtls-Authz-Principal", ORDER)), H2_CLOSED)
h2f("h2-connection-header", H2_BASE + ((":path", Q), ("connection", "close")), H2_CLOSED)
h2f("h2-protocol-without-connect", H2_BASE + ((":path", Q), (":protocol", "websocket")), H2_CLOSED)
h2f("h2-duplicate-principal", H2_BASE + ((":path", Q), (PRINCIPAL_HEADER, ORDER),
                                          (PRINCIPAL_HEADER, ORDER), ("x-forwarded-client-cert", FORGED_XFCC)),
    Q_ALLOWED)
h2f("h2-crlf-in-value", H2_BASE + ((":path", Q), ("x-note", "a\r\n" + PRINCIPAL_HEADER + ": " + ORDER)), H2_CLOSED,
    why="HTTP/2 values may not carry CR/LF/NUL: no header injection into the HTTP/1.1 upstream request")
h2f("h2-nul-in-value", H2_BASE + ((":path", Q), ("x-note", "a\x00b")), H2_CLOSED)
h2f("h2-crlf-in-path", H2_BASE + ((":path", Q + "\r\nx: y"),), H2_CLOSED)
h2f("h2-colon-in-name", H2_BASE + ((":path", Q), ("x-no:te", "a")), H2_CLOSED)
h2f("h2-connect", ((":method", "CONNECT"), (":authority", "localhost:443")), deny(R_NO_PATH),
    why="CONNECT has no `:path`: the filter refuses it")
h2f("h2-connect-with-path", ((":method", "CONNECT"), (":authority", "localhost:443"), (":scheme", "https"),
                             (":path", Q)), H2_CLOSED)
h2f("h2-options-asterisk", ((":method", "OPTIONS"), (":scheme", "https"), (":authority", "localhost"),
                            (":path", "*")), NON_ORIGIN_404)

# -- method and path override (findings F1 and F2, fixed)
OVERRIDE = deny(R_OVERRIDE)
OVERRIDE_WHY = "a backend honouring the override would run a method the policy did not allow"
both("override-header-post-on-get", "method-override", R, "GET", Q, OVERRIDE,
     headers=(("X-HTTP-Method-Override", "POST"),), why=OVERRIDE_WHY)
case("override-header-delete-on-post", "method-override", O, "POST", C, OVERRIDE,
     headers=(("X-HTTP-Method-Override", "DELETE"),),
     why="frameworks honour overrides on POST (Express method-override, ASP.NET, Symfony)")
case("override-header-lower-case", "method-override", O, "POST", C, OVERRIDE,
     headers=(("x-http-method-override", "DELETE"),), why="header names are compared ignoring case")
case("override-header-empty", "method-override", O, "POST", C, OVERRIDE, headers=(("X-HTTP-Method-Override", ""),),
     why="present is enough: the filter does not guess what a backend makes of the value")
case("override-header-same-method", "method-override", O, "POST", C, OVERRIDE,
     headers=(("X-HTTP-Method-Override", "POST"),), why="nor whether the value changes anything")
case("override-x-method-override", "method-override", O, "POST", C, OVERRIDE,
     headers=(("X-Method-Override", "DELETE"),))
case("override-x-method-override-h2", "method-override", O, "POST", C, OVERRIDE,
     headers=(("x-method-override", "DELETE"),), proto="h2")
case("override-x-http-method", "method-override", O, "POST", C, OVERRIDE,
     headers=(("X-HTTP-Method", "PUT"),))
case("override-original-url", "method-override", R, "GET", Q, OVERRIDE,
     headers=(("X-Original-URL", "/api/payment/admin/x"), ("X-Rewrite-URL", "/api/payment/admin/x")),
     why="the path override of IIS URL Rewrite and old Symfony (CVE-2018-14773)")
case("override-rewrite-url", "method-override", R, "GET", Q, OVERRIDE,
     headers=(("X-Rewrite-URL", "/api/payment/admin/x"),))
case("override-original-url-h2", "method-override", R, "GET", Q, OVERRIDE,
     headers=(("x-original-url", "/api/payment/admin/x"),), proto="h2")
case("override-envoy-original-path", "method-override", R, "GET", Q, OVERRIDE,
     headers=(("x-envoy-original-path", "/api/payment/admin/x"),),
     why="a client-sent x-envoy-original-path: backends use it to rebuild the request URL")
case("override-envoy-original-path-on-rewrite", "method-override", R, "GET", RENAMED_PREFIX + "a", OVERRIDE,
     headers=(("x-envoy-original-path", "/api/payment/admin/x"),),
     why="also on a route that rewrites the path: the router's own x-envoy-original-path comes later")
case("rewrite-route-original-path-is-envoys", "method-override", R, "GET", RENAMED_PREFIX + "a",
     allow(REWRITTEN_PREFIX + "a", "reports-read-docs", upstream_headers=(("x-envoy-original-path",
                                                                           RENAMED_PREFIX + "a"),)),
     why="the route rewrites %s to %s; Envoy's router sets x-envoy-original-path after the filter ran, so "
         "the filter never sees it (the policy judges the client's path)" % (RENAMED_PREFIX, REWRITTEN_PREFIX))
case("override-query-on-post", "method-override", O, "POST", C + "?_method=DELETE", OVERRIDE,
     why="Symfony and Laravel read `_method` from the query of a POST")
case("override-query-encoded", "method-override", O, "POST", C + "?%5Fmethod=DELETE", OVERRIDE,
     why="backends decode the parameter name")
case("override-query-on-get", "method-override", R, "GET", Q + "?_method=POST", OVERRIDE)
case("override-query-upper-case", "method-override", O, "POST", C + "?x=1&_METHOD=DELETE", OVERRIDE)
case("override-query-h2", "method-override", O, "POST", C + "?_method=DELETE", OVERRIDE, proto="h2")
case("override-query-lookalike-name", "method-override", R, "GET", Q + "?_method_x=1&method=POST",
     allow(Q + "?_method_x=1&method=POST", "reports-read-payment"),
     why="only a parameter named exactly `_method` is an override")
both("override-underscore-header", "method-override", O, "POST", C, UNDERSCORE_400,
     headers=(("x_http_method_override", "DELETE"),), h2=H2_UNDERSCORE_RESET,
     why="CGI-style backends read it as X-HTTP-Method-Override. Refused by Envoy here "
         "(headers_with_underscores_action); where underscores are allowed, the filter refuses it as an override")
case("override-lookalike-header", "method-override", R, "GET", Q, Q_ALLOWED,
     headers=(("X-HTTP-Method-Overrides", "POST"), ("X-Forwarded-Method", "POST")),
     why="other names are not refused (they reach the upstream unchanged)")
case("override-denied-stays-denied", "method-override", R, "POST", C, OVERRIDE,
     headers=(("X-HTTP-Method-Override", "GET"),),
     why="an override never turns a deny into an allow; like `?_method=`, it is refused before any rule")
case("override-after-path-refusal", "method-override", R, "GET", "/api/payment/x/../query", OVERRIDE, deny(R_DOT),
     headers=(("X-HTTP-Method-Override", "POST"),),
     why="the path is checked first: raw, its refusal is the reason; hardened, Envoy resolved it")

# -- mangled query names: PHP's parse_str rewrites names before Symfony or Laravel look for `_method`
case("override-query-php-dot", "param-mangling", O, "POST", C + "?.method=DELETE", OVERRIDE,
     why="PHP turns `.` in a name into `_`: `$_GET['_method']` is DELETE")
case("override-query-php-space", "param-mangling", O, "POST", C + "?+.method=DELETE", OVERRIDE,
     why="`+` is a space; PHP drops leading spaces, then `.` becomes `_`")
case("override-query-php-encoded-space", "param-mangling", O, "POST", C + "?%20_method=DELETE", OVERRIDE)
case("override-query-php-nul", "param-mangling", O, "POST", C + "?_method%00x=DELETE", OVERRIDE,
     why="PHP cuts a name at NUL")
case("override-query-php-array", "param-mangling", O, "POST", C + "?_method%5B%5D=DELETE", OVERRIDE,
     why="`_method[]` is the array `_method` in PHP, Rack and qs")
case("override-query-php-h2", "param-mangling", O, "POST", C + "?.method=DELETE", OVERRIDE, proto="h2")
case("override-query-php-lookalike", "param-mangling", R, "GET", Q + "?x.method=1&+method=2",
     allow(Q + "?x.method=1&+method=2", "reports-read-payment"),
     why="`x_method` and `method` are not `_method` under any framework's reading")

# -- method override in the body of a POST (Rails, Laravel, Symfony, Spring, ASP.NET Core, Sinatra)
FORM = ("Content-Type", "application/x-www-form-urlencoded")
JSON_CT = ("Content-Type", "application/json")
MULTIPART = ("Content-Type", "multipart/form-data; boundary=XyZ")
MULTIPART_BODY = (b'--XyZ\r\nContent-Disposition: form-data; name="amount"\r\n\r\n10\r\n'
                  b'--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--XyZ--\r\n')
BODY_OVERRIDE = deny(R_BODY_OVERRIDE, body_held=True)
both("body-override-form", "body-override", O, "POST", C, BODY_OVERRIDE, headers=(FORM,),
     body=b"amount=10&_method=DELETE", why="Rack::MethodOverride, Laravel, Symfony, Spring read `_method` from a form")
both("body-override-multipart", "body-override", O, "POST", C, BODY_OVERRIDE, headers=(MULTIPART,),
     body=MULTIPART_BODY, why="the same field in a multipart form")
both("body-override-json", "body-override", O, "POST", C, BODY_OVERRIDE, headers=(JSON_CT,),
     body=b'{"amount": 10, "_method": "DELETE"}', why="Laravel reads `_method` from a JSON body")
case("body-override-php-name", "body-override", O, "POST", C, BODY_OVERRIDE, headers=(FORM,),
     body=b"amount=10&.method=DELETE", why="PHP rewrites form field names as it does query names")
case("body-override-no-content-type", "body-override", O, "POST", C, BODY_OVERRIDE, body=b"_method=DELETE",
     why="Rack reads a POST without a content type as a form")
case("body-override-json-suffix", "body-override", O, "POST", C, BODY_OVERRIDE,
     headers=(("Content-Type", "application/vnd.api+json"),), body=b'{"_method": "DELETE"}')
case("body-override-at-the-end", "body-override", O, "POST", C, BODY_OVERRIDE, headers=(FORM,),
     body=b"pad=" + b"x" * 60000 + b"&_method=DELETE", why="the whole body is read, however many parts it comes in")
both("body-clean-form", "body-override", O, "POST", C, C_ALLOWED, headers=(FORM,), body=b"amount=10&currency=EUR",
     why="a form without an override goes on, whole, once it has been read")
case("body-clean-json", "body-override", O, "POST", C, C_ALLOWED, headers=(JSON_CT,),
     body=b'{"amount": 10, "note": "_method"}', why="only a top-level key counts")
case("body-not-parsed", "body-override", O, "POST", C, C_ALLOWED, headers=(("Content-Type", "application/octet-stream"),),
     body=b"_method=DELETE", why="no framework reads an override from an opaque body: not held, not read")
case("body-too-large", "body-override", O, "POST", C, deny(R_BODY_TOO_LARGE, status=413, body_held=True), headers=(FORM,),
     body=b"pad=" + b"x" * 70000, why="past the policy's body_inspection_limit (64 KiB here): 413, not an unjudged pass")
case("body-compressed", "body-override", O, "POST", C, deny(R_BODY_UNREADABLE),
     headers=(FORM, ("Content-Encoding", "gzip")), body=b"\x1f\x8b", why="a compressed form cannot be read here")
case("body-denied-anyway", "body-override", R, "POST", C, NO_RULE, headers=(FORM,), body=b"_method=GET",
     why="a request the policy denies is refused on its headers; its body is never read")

# -- HEAD under a deny rule on GET: frameworks serve HEAD with the GET handler
both("head-under-get-deny", "head", R, "HEAD", "/docs/exports/q3.csv", deny(R_DENY_RULE, "nobody-reads-exports"),
     why="the deny names GET; HEAD would run the same handler, so it is denied too (`head_with_get`, default true)")
case("get-under-get-deny", "head", R, "GET", "/docs/exports/q3.csv", deny(R_DENY_RULE, "nobody-reads-exports"))
both("head-allowed-where-listed", "head", R, "HEAD", "/docs/public/readme", allow("/docs/public/readme", "reports-read-docs"),
     why="an allow rule allows HEAD only where it lists it, as reports-read-docs does")
case("head-not-allowed-by-get-allow", "head", R, "HEAD", Q, NO_RULE,
     why="reports-read-payment lists only GET: allowing GET does not allow HEAD")

# -- methods
case("lower-case-method", "method", R, "get", Q, CODEC_400, why="the HTTP/1 codec refuses a lower-case method")
case("lower-case-method-h2", "method", R, "get", Q, deny(R_METHOD), proto="h2",
     why="HTTP/2 carries it; the engine refuses non-canonical methods")
case("mixed-case-method-h2", "method", O, "Post", C, deny(R_METHOD), proto="h2")
case("head-not-get", "method", R, "HEAD", Q, NO_RULE, why="the reports rule says GET only")
case("unknown-method", "method", R, "PROPFIND", Q, NO_RULE)
case("trace", "method", R, "TRACE", Q, NO_RULE)

# -- CONNECT and absolute-form targets
case("connect", "connect-absolute", R, "CONNECT", "localhost:443", deny(R_NO_PATH),
     why="CONNECT carries no path: the filter fails closed")
case("connect-allowed-authority", "connect-absolute", O, "CONNECT", "localhost:443", deny(R_NO_PATH))
both("absolute-form-allowed", "connect-absolute", R, "GET", "https://localhost" + Q, Q_ALLOWED, h2=H2_CLOSED,
     why="the HTTP/1 codec splits the URL; the path is decided and forwarded as origin-form. HTTP/2 has no "
         "absolute form: a URL in `:path` is malformed")
case("absolute-form-denied", "connect-absolute", R, "GET", "https://localhost" + C, NO_RULE)
case("absolute-form-other-host", "connect-absolute", R, "GET", "http://evil.example" + Q, Q_ALLOWED,
     why="the host is not a decision input; the path is what was allowed")
case("absolute-form-userinfo", "connect-absolute", R, "GET", "https://a@localhost" + Q, Q_ALLOWED)
case("absolute-form-dotdot", "connect-absolute", R, "GET", "https://localhost/api/payment/x/../query", Q_ALLOWED,
     deny(R_DOT))
case("absolute-form-no-path", "connect-absolute", R, "GET", "https://localhost", NO_RULE,
     why="becomes `/`, which no rule allows")
case("options-asterisk", "connect-absolute", R, "OPTIONS", "*", NON_ORIGIN_404)
case("relative-path", "connect-absolute", R, "GET", Q[1:], CODEC_400)
both("asterisk-get", "connect-absolute", R, "GET", "*", CODEC_400, h2=H2_CLOSED, why="`*` is only for OPTIONS")

# -- huge paths
LONG_OK = "/" + "a" * 9000
case("path-over-engine-limit", "huge", R, "GET", LONG_OK, deny(R_LONG), why="over 8 KiB: refused, matching bounded")
case("path-over-engine-limit-h2", "huge", R, "GET", LONG_OK, deny(R_LONG), proto="h2")
case("too-many-segments", "huge", R, "GET", "/a" * 200, deny(R_LONG), why="over 128 segments")
case("path-over-envoy-limit", "huge", R, "GET", "/" + "a" * 70000,
     reject(431, "request headers over max_request_headers_kb (60 KiB)"))
case("query-long-allowed", "huge", R, "GET", Q + "?" + "q" * 9000, allow(Q + "?" + "q" * 9000, "reports-read-payment"),
     why="the limits are on the path; a long query is just forwarded")

# -- backend equivalences: spellings some backends read as a denied path
case("carve-out-baseline", "backend-equivalence", R, "GET", "/docs/public/a", allow("/docs/public/a", "reports-read-docs"))
case("carve-out-denied", "backend-equivalence", R, "GET", "/docs/internal/secret", DENY_INTERNAL)
case("carve-out-encoded", "backend-equivalence", R, "GET", "/docs/%69nternal/secret", DENY_INTERNAL)
case("carve-out-prefix-itself", "backend-equivalence", R, "GET", "/docs/internal", DENY_INTERNAL)
case("carve-out-case", "backend-equivalence", R, "GET", "/docs/INTERNAL/secret",
     allow("/docs/INTERNAL/secret", "reports-read-docs"),
     why="by design: paths match case-sensitively (the policy contract). Residual risk R1: a case-insensitive "
         "backend would serve /docs/internal/secret")
case("carve-out-trailing-dot", "backend-equivalence", R, "GET", "/docs/internal./secret", deny(R_TRAILING),
     why="Windows/IIS strip trailing dots: refused")
case("carve-out-trailing-dots", "backend-equivalence", R, "GET", "/docs/internal.../secret", deny(R_TRAILING))
case("carve-out-trailing-encoded-dot", "backend-equivalence", R, "GET", "/docs/internal%2e/secret", deny(R_TRAILING),
     why="decoded first (by normalize_path, or by the engine): `internal.`")
case("carve-out-trailing-space", "backend-equivalence", R, "GET", "/docs/internal%20/secret", deny(R_TRAILING),
     why="Windows/IIS strip trailing spaces: refused")
case("carve-out-fullwidth-solidus", "backend-equivalence", R, "GET", "/docs/internal%ef%bc%8fsecret",
     deny(R_LOOKALIKE), why="U+FF0F is `/` after Unicode NFKC normalisation: refused")
case("carve-out-fullwidth-dots", "backend-equivalence", R, "GET", "/docs/public/%ef%bc%8e%ef%bc%8e/internal/secret",
     deny(R_LOOKALIKE), why="U+FF0E U+FF0E is `..` after NFKC: refused")
case("carve-out-division-slash", "backend-equivalence", R, "GET", "/docs/internal%e2%88%95secret", deny(R_LOOKALIKE),
     why="U+2215 is not NFKC `/`, but a common confusable: refused too")
case("carve-out-one-dot-leader", "backend-equivalence", R, "GET", "/docs/public/%e2%80%a5/internal/secret",
     deny(R_LOOKALIKE), why="U+2025 TWO DOT LEADER is `..` after NFKC")
case("carve-out-tab", "backend-equivalence", R, "GET", "/docs/internal%09/secret", deny(R_CHAR),
     why="control characters are refused, so a stripping backend cannot be fed `internal\\t`")
case("trailing-dot-outside-carve-out", "backend-equivalence", R, "GET", "/docs/public/readme.", deny(R_TRAILING),
     why="refused everywhere, not only next to a deny rule: the price of a single reading")
case("non-ascii-letters-allowed", "backend-equivalence", R, "GET", "/docs/public/caf%c3%a9",
     allow("/docs/public/caf%c3%a9", "reports-read-docs", resource="/docs/public/caf\u00e9"),
     why="non-ASCII that is not a delimiter look-alike is an ordinary character")


# --------------------------------------------------------------------------- classes (for the docs)

# key -> (title, what the research file calls it / sources, the decision and why)
CLASSES = {
    "baseline": ("Baseline", "the policy itself",
                 "The allow and deny cases of the policy, over HTTP/1.1 and HTTP/2, so every trick below is "
                 "measured against a known-good request."),
    "dot": ("Dot segments", "CVE-2019-9901 (envoy#6435)",
            "Hardened: `normalize_path` resolves `.`/`..` (also `%2e`, `%2E%2E`, `.%2e`) before the filter, so "
            "the filter decides on, and the upstream receives, the resolved path. Raw: the engine refuses any dot "
            "segment, raw or decoded (`DotSegment`), instead of resolving it: a backend might resolve it "
            "differently."),
    "slashes": ("Multiple slashes", "CVE-2021-31920, Envoy CVE-2021-29492",
                "Hardened: `merge_slashes`. Raw: the engine refuses empty segments (`EmptySegment`): `//a` is `/a` "
                "to some backends and a different resource to others."),
    "escaped-slash": ("Escaped slashes and backslashes", "CVE-2021-29492; `path_with_escaped_slashes_action`",
                      "Hardened: `%2F`/`%5C` get 400 (`REJECT_REQUEST`); a raw `\\` is turned into `/` by "
                      "`normalize_path` and the result decided and forwarded. Raw: the engine refuses `%2F` "
                      "(`EncodedSlash`) and `\\`/`%5C` (`Backslash`)."),
    "fragment": ("Fragments", "CVE-2021-39156 / Envoy CVE-2021-32779",
                 "Envoy 1.40 refuses a `#` in the request target with 400 on every listener (the HCM default). "
                 "An encoded `%23` is refused by the engine (`EncodedDelimiter`)."),
    "query": ("Query strings", "CVE-2020-8595",
              "The engine cuts the query before deciding, so `/api/payment/create?/query` is "
              "`/api/payment/create`; an allowed request is forwarded with its query unchanged. `%3f` is refused."),
    "path-param": ("`;` path parameters", "istio#27409; Envoy 1.37 notes",
                   "The engine refuses `;` raw and `%3B` (`PathParameter`). On the hardened listener "
                   "`normalize_path` treats `query;` as a name, so `query;/../create` resolves to `create` (what "
                   "the upstream would get) and is decided as such."),
    "case": ("Case", "CVE-2021-39155 (host case)",
             "Paths match case-sensitively, so `/API/...` matches no allow rule: denied by default. (For deny "
             "carve-outs and case-insensitive backends, see backend equivalences.)"),
    "trailing": ("Trailing slash and `/.`", "—",
                 "A trailing `/` is an empty segment: refused (`EmptySegment`). `normalize_path` turns `/.` into "
                 "`/`, which the engine then refuses; raw, `/.` is a dot segment."),
    "encoding": ("Double encoding, overlong UTF-8, NUL", "Istio wfuzz wordlist",
                 "`%25` is refused (`EncodedPercent`), so there is no second decoding; overlong or invalid UTF-8 "
                 "(`InvalidUtf8`); `%00` gets 400 from `normalize_path` and `Nul` from the engine; decoded "
                 "control characters are refused. Unreserved escapes (`%71` = `q`) are decoded: hardened "
                 "forwards the decoded path, raw forwards the escape (RFC 3986 equivalent; see O1)."),
    "headers": ("Duplicate and odd headers", "CVE-2019-18802, CVE-2021-32777",
                "The filter replaces its own headers (every copy) and Envoy's SANITIZE drops every XFCC copy; "
                "the HTTP/1 codec refuses whitespace before `:`, line folding, CL+TE, HTTP/1.0; underscores in "
                "names are refused (`headers_with_underscores_action`). Duplicate `:path` is only expressible in "
                "HTTP/2 (see HTTP/2 pseudo-headers)."),
    "forged": ("Forged client-certificate and identity headers", "envoy#6038, projectcontour/contour#6586",
               "Identity comes from the TLS connection only: forged XFCC or `x-mtls-authz-*` headers neither grant "
               "nor reach the upstream (XFCC: SANITIZE; `x-mtls-authz-*`: replaced by the filter)."),
    "san-cn": ("SAN vs CN confusion, several SANs", "CVE-2022-21656, envoy#18259",
               "A principal object matches one field as written: `uri_san` any URI SAN exactly, `cn` the only "
               "CN. The confused certificate (CN=report-service, URI SAN order) is order by its SAN and not "
               "report-service by its CN alone (the reports principal needs CN and OU). Two CNs match no `cn`."),
    "wildcard": ("Wildcard over-matching", "CVE-2020-15104",
                 "`*` is one DNS label / one URI segment, never more, never zero; `.` is literal; a wildcard in "
                 "the certificate is never expanded against an exact pattern. DNS names compare "
                 "case-insensitively (documented)."),
    "placeholder": ("`{cn}` placeholders", "—",
                    "`{cn}` binds the only CN when it is a clean segment (no `/`, `..`, `%`, ...): it can only "
                    "name the caller's own resource."),
    "validity": ("Validity", "CVE-2022-21657, CVE-2022-21654",
                 "Envoy refuses the TLS handshake for no certificate, an expired one, an untrusted CA and a "
                 "server-only EKU; a resumed session keeps its original identity."),
    "h2-pseudo": ("HTTP/2 pseudo-headers and header blocks", "—",
                  "Sent as raw frames (`h2` library, validation off). Envoy's HTTP/2 codec refuses malformed "
                  "header blocks (missing, empty, duplicate or non-origin `:path`, pseudo-headers after regular "
                  "ones, upper-case names, connection headers, CR/LF/NUL in values) by closing the connection: nothing "
                  "reaches a filter. "
                  "CONNECT has no `:path` and the filter refuses it."),
    "method-override": ("Method and path override (F1, F2: fixed)", "dotnet/yarp#1116, CVE-2018-14773",
                        "The filter decides on the request's method and path, so a request that asks the backend "
                        "to use another one is refused (`Override`): the headers `X-HTTP-Method-Override`, "
                        "`X-HTTP-Method`, `X-Method-Override`, `X-Original-URL`, `X-Rewrite-URL` and a "
                        "client-sent `x-envoy-original-path` (any case, any value, also with `_` for `-`; listed once "
                        "in the engine: `overrides::OVERRIDE_HEADERS`), and a `_method` query parameter (name percent-decoded, "
                        "any case). Like the engine's `_method` check, the refusal comes after the identity, "
                        "method and path checks and before any rule. Envoy's own `x-envoy-original-path` (a "
                        "route with `prefix_rewrite`) is added by the router after the filter and reaches the "
                        "upstream; the filter must come before any HTTP filter that rewrites the path "
                        "(gRPC-JSON transcoder, AWS Lambda), which would set it first. Dry-run mode lets an "
                        "override through, marked, like any other deny."),
    "param-mangling": ("Mangled parameter names", "PHP manual: variables from external sources",
                       "PHP's parser (which builds `$_GET`, `$_POST` and multipart fields) cuts a name at NUL, drops "
                       "leading spaces and turns `.` and spaces into `_`; PHP, Rack and `qs` read `_method[x]` as "
                       "`_method`; ASP.NET Core ignores case. The engine reads `_method` under every one of these "
                       "(`overrides::is_override_name`), after `+` and percent-decoding."),
    "body-override": ("Method override in the body", "Rack::MethodOverride, Symfony, Laravel, Spring, ASP.NET Core docs",
                      "A POST whose body a framework parses (form, multipart, JSON, or no content type) and that "
                      "the policy allows has its body held until it is complete, then is refused if any reading "
                      "of it names "
                      "`_method` (multipart: every `name=` in a `Content-Disposition` line; JSON: top-level keys). "
                      "A body past `body_inspection_limit` gets 413; a compressed one or one in a charset that is "
                      "not ASCII-compatible is refused. A proxy-wasm filter is shown no body while it holds the "
                      "headers, so the headers of a held request go on at once; no byte of its body reaches the "
                      "upstream before it is judged (the suite checks what the upstream read). Other requests "
                      "are decided on their headers alone. "
                      "`\"method_overrides\": \"ignore\"` turns all of this off for backends that never honour overrides."),
    "head": ("HEAD under deny rules on GET", "Rails, Django, Express, Spring: HEAD runs the GET handler",
             "A deny rule whose `methods` name `GET` also denies `HEAD` unless it says `\"head_with_get\": false`. "
             "Allow rules are unchanged: they allow only the methods they list."),
    "method": ("Methods", "—",
               "Lower-case methods: HTTP/1 codec 400; over HTTP/2 they reach the engine, which refuses non-canonical "
               "methods (`post` must not dodge a deny rule on `POST`)."),
    "connect-absolute": ("CONNECT, absolute-form targets", "—",
                         "CONNECT has no path: the filter refuses it (fails closed). Absolute-form targets are split "
                         "by the HTTP/1 codec and the origin-form path decided and forwarded. `*` and other "
                         "non-origin paths get 404 from the connection manager before any filter."),
    "huge": ("Huge paths", "—",
             "The engine refuses paths over 8 KiB or 128 segments (bounded matching); Envoy refuses request heads "
             "over 60 KiB with 431."),
    "backend-equivalence": ("Backend equivalences (residual risk R1)", "Istio wordlist; IIS/Windows path rules",
                            "Spellings that some backends treat as equal to a denied path. A segment ending in "
                            "`.` or a space (Windows strips them; `TrailingDotOrSpace`) and characters that "
                            "Unicode NFKC turns into `/`, `\\`, `.`, `%`, `;`, `?`, `#` (fullwidth `／` `．`, "
                            "small forms, dot leaders; `LookalikeDelimiter`) are refused by the engine, anywhere "
                            "in the path. Case is not: paths match case-sensitively by the policy contract, so "
                            "`/docs/INTERNAL/...` dodges a `/docs/internal/**` carve-out on a case-insensitive "
                            "backend (R1). Against an allow-list with default deny these spellings are harmless."),
}


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
