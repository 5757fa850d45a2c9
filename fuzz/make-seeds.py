#!/usr/bin/env python3
"""Write the hand-made seed corpora under fuzz/corpus/.

Run once by hand (python3 fuzz/make-seeds.py) when the seeds should change;
the output is committed, and fuzz/run.sh never writes into fuzz/corpus/.

- policy_parse: the README and example policies, and policies each broken in
  one way (syntax, types, unknown/duplicate keys, bad patterns and values).
- canonicalize: the bypass classes of shared/research/bypass-classes.md and the
  canonicaliser's own edge cases.
- identity: real certificates made here with openssl (fresh throwaway keys that
  are deleted; only the public certificates are written), as DER and PEM, plus
  broken variants (trailing byte, truncation, chains, junk, CRLF, wrong labels).
  Re-running makes new keys, so the identity seeds change; the others do not.
- differential: inputs are `arbitrary` bytes, so hand-made seeds mean little;
  a few fixed byte strings start it.

Files named by a 40-hex SHA-1 are not written here: the fuzzers found them
(see "Seeds" in fuzz/README.md). This script leaves them alone.
"""

import hashlib
import os
import pathlib
import random
import shutil
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target: str, name: str, data) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    (d / name).write_bytes(data)


# ---------------------------------------------------------------------------
# policy_parse

README_POLICY = """{
  "version": 1,
  "default_action": "deny",
  "rules": [
    {"name": "orders-create-payment", "action": "allow",
     "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/order"}, {"cn": "order-service"}],
     "paths": ["/api/payment/create"], "methods": ["POST"]},
    {"name": "reports-read-payment", "action": "allow",
     "principals": [{"cn": "report-service", "ou": "reporting"}],
     "paths": ["/api/payment/query", "/api/payment/query/**"], "methods": ["GET", "HEAD"]},
    {"name": "nobody-on-admin", "action": "deny",
     "principals": [{"any": true}], "paths": ["/api/payment/admin/**"]}
  ]
}
"""

EVERY_FIELD = """{
  "$schema": "../policy/policy.schema.json",
  "version": 1,
  "description": "every field the language has",
  "revision": "2026-11-27.1",
  "mode": "dry_run",
  "deny_response": {"details": false},
  "upstream_headers": {"principal": true, "principal_format": "legacy", "rule": false, "revision": false},
  "default_action": "allow",
  "rules": [
    {"name": "all-fields", "description": "d", "action": "deny",
     "principals": [{"cn": "order-*", "o": "Shop", "ou": "payments", "issuer_cn": "Shop CA",
                     "uri_san": "spiffe://shop.test/ns/*/sa/order", "dns_san": "*.Shop.Test",
                     "email_san": "*@shop.test", "ip_san": "10.0.0.0/8",
                     "serial": "00:1A:2B", "sha256": "AB:ab:ababababababababababababababababababababababababababababababab"}],
     "paths": ["/", "/a/*/b", "/devices/{cn}/telemetry", "/dns/{dns_san}", "/accounts/{uri_san_last_segment}/**", "/**"],
     "methods": ["GET", "M-SEARCH", "X_Y"]},
    {"name": "v6", "action": "allow", "principals": [{"ip_san": "fd00::/8"}, {"ip_san": "::1"}], "paths": ["/v6"]}
  ]
}
"""


def rule(extra: str = "", principals: str = '[{"any": true}]', paths: str = '["/"]') -> str:
    return f'{{"name": "r", "action": "allow", "principals": {principals}, "paths": {paths}{extra}}}'


def doc(rules: str = "", top: str = "") -> str:
    return f'{{"version": 1, "default_action": "deny"{top}, "rules": [{rules}]}}'


BROKEN_POLICIES = {
    "empty": "",
    "null": "null",
    "bom": "\ufeff" + doc(),
    "crlf-unclosed": '{\r\n  "version": 1,\r\n  "rules": [\r\n}',
    "trailing-garbage": doc() + "x",
    "trailing-comma": '{"version": 1, "default_action": "deny", "rules": [],}',
    "deep-nesting": "[" * 200 + "]" * 200,
    "too-deep": '{"rules": ' + "[" * 300 + "]" * 300 + "}",
    "lone-surrogate": '{"version": 1, "default_action": "deny", "rules": [], "description": "\\ud800"}',
    "escaped-key": '{"versio\\u006e": 1, "default_action": "deny", "rules": []}',
    "huge-number": '{"version": 1e400, "default_action": "deny", "rules": []}',
    "version-float": '{"version": 1.0, "default_action": "deny", "rules": []}',
    "version-2": '{"version": 2, "default_action": "deny", "rules": []}',
    "missing-everything": "{}",
    "unknown-top-key": '{"version": 1, "default_action": "deny", "rules": [], "a b": 1}',
    "duplicate-key": '{"version": 1, "default_action": "allow", "default_action": "deny", "rules": []}',
    "rules-object": '{"version": 1, "default_action": "deny", "rules": {}}',
    "bad-mode": doc(top=', "mode": "audit"'),
    "bad-revision": doc(top=', "revision": "has space"'),
    "deny-response-type": doc(top=', "deny_response": {"details": "no"}'),
    "upstream-headers-type": doc(top=', "upstream_headers": {"rule": 0, "dry_run": false}'),
    "duplicate-rule-names": doc(rule() + ", " + rule()),
    "rule-name-newline": doc('{"name": "bad name\\n", "action": "allow", "principals": [{"any": true}], "paths": ["/"]}'),
    "unknown-rule-key": doc(rule(', "method": ["GET"]')),
    "lowercase-method": doc(rule(', "methods": ["get"]')),
    "empty-methods": doc(rule(', "methods": []')),
    "empty-principals": doc(rule(principals="[]")),
    "empty-principal": doc(rule(principals="[{}]")),
    "any-false": doc(rule(principals='[{"any": false}]')),
    "any-and-cn": doc(rule(principals='[{"any": true, "cn": "x"}]')),
    "cn-number": doc(rule(principals='[{"cn": 7}]')),
    "cn-empty": doc(rule(principals='[{"cn": ""}]')),
    "cn-control": doc(rule(principals='[{"cn": "a\\u0085b"}]')),
    "dns-double-star": doc(rule(principals='[{"dns_san": "**.shop.test"}]')),
    "bad-serial": doc(rule(principals='[{"serial": "xyz"}]')),
    "bad-sha256": doc(rule(principals='[{"sha256": "abc"}]')),
    "ip-prefix-33": doc(rule(principals='[{"ip_san": "10.0.0.1/33"}]')),
    "ip-host-bits": doc(rule(principals='[{"ip_san": "10.0.0.1/8"}]')),
    "ip-plus-prefix": doc(rule(principals='[{"ip_san": "10.0.0.0/+8"}]')),
    "ip-v6-prefix-129": doc(rule(principals='[{"ip_san": "fd00::/129"}]')),
    "ip-zero": doc(rule(principals='[{"ip_san": "0.0.0.0/0"}]')),
    "empty-paths": doc(rule(paths="[]")),
    "path-double-star-middle": doc(rule(paths='["/a/**/b"]')),
    "path-double-slash": doc(rule(paths='["/a//b"]')),
    "path-trailing-slash": doc(rule(paths='["/a/"]')),
    "path-no-slash": doc(rule(paths='["nope"]')),
    "path-dot-dot": doc(rule(paths='["/a/../b"]')),
    "path-percent": doc(rule(paths='["/a%2Fb"]')),
    "path-query": doc(rule(paths='["/a?x"]')),
    "path-partial-star": doc(rule(paths='["/a*"]')),
    "path-unknown-placeholder": doc(rule(paths='["/{sn}"]')),
    "path-partial-placeholder": doc(rule(paths='["/x{cn}"]')),
    "path-semicolon": doc(rule(paths='["/a;b"]')),
    "path-nul": doc(rule(paths='["/a\\u0000"]')),
    "many-errors": '{"version": 1, "default_action": "maybe", "rules": [{"name": "", "action": "x", "principals": [], "paths": ["nope"]}]}',
    "errors-on-many-lines": '{\n"version": 3,\n\n"default_action": "x",\n"rules": [\n{"name": 1}\n]\n}\n',
    "unicode-columns": '{"description": "\u00e9\u00e9\u00e9\U0001f600", "version": "1", "default_action": "deny", "rules": []}',
}


def policy_seeds() -> None:
    write("policy_parse", "readme-example.json", README_POLICY)
    write("policy_parse", "every-field.json", EVERY_FIELD)
    for example in sorted((ROOT / "examples").glob("*/policy.json")):
        write("policy_parse", f"example-{example.parent.name}.json", example.read_bytes())
    for name, text in BROKEN_POLICIES.items():
        write("policy_parse", f"broken-{name}.json", text)


# ---------------------------------------------------------------------------
# canonicalize

PATHS = [
    # plain and allowed
    "/", "/api/payment/create", "/api/payment/query?x=1", "/a/..b/.c", "/a/my%20file",
    "/caf%C3%A9", "/api/payment/%61dmin", "/a/%62/c", "/~u/a-b_c.d!$&'()*+,=:@",
    # dot segments
    "/a/../b", "/a/./b", "/a/..", "/..", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/%2e/b", "/a/.%2e/b", "/a/.",
    # multiple slashes and trailing slash
    "//a/b", "/a//b", "/a/b/", "/a/b//",
    # escaped slashes and backslashes
    "/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/a%5c..%5cb",
    # fragment and query tricks
    "/a#x", "/a#x?y", "/api/payment/create?/query", "/a%3Fb", "/a%23b", "?x", "#",
    # path parameters
    "/a;x/b", "/a/b;/../c", "/a%3bx",
    # double encoding, overlong UTF-8, NUL, controls
    "/a%252fb", "/a%c0%af", "/a%ff", "/a%00", "/a\x00", "/a%0d%0a", "/a%7f", "/a%E2%80%A8",  # %C2%85: see FINDINGS
    # broken escapes
    "/a%", "/a%2", "/a%zz", "/%%41",
    # case and odd characters
    "/API/payment", "/a b", "/a\tb", "/a\u00e9", "/a\"b", "/a<b>", "/a|b", "/a^b", "/a`b", "/a{b}", "/a[b]",
    # request-target forms that are not paths
    "", "*", "example.com:443", "http://host/a",
    # limits
    "/a" * 128, "/a" * 129, "/" + "a" * 8191, "/" + "a" * 8192,
]


# Findings: reproducers for engine bugs the fuzzers found (see fuzz/README.md).
FINDINGS = {
    # A percent-encoded C1 control (NEL, U+0085) survives canonicalisation.
    "finding-1-c1-control-nel": "/api/payment/admin%C2%85",
    # Characters whose NFKC form holds a delimiter, missing from the engine's
    # look-alike list: U+FE30 -> "..", U+2100 -> "a/c", U+2048 -> "?!",
    # U+037E -> ";" (U+037E already under NFC).
    "finding-2a-nfkc-two-dot-leader": "/docs/public/%EF%B8%B0/internal/x",
    "finding-2b-nfkc-account-of": "/docs/%E2%84%80/x",
    "finding-2c-nfkc-question-exclamation": "/docs/internal%E2%81%88/x",
    "finding-2d-nfc-greek-question-mark": "/docs/internal%CD%BE/x",
}


def path_seeds() -> None:
    for name, p in FINDINGS.items():
        write("canonicalize", name, p)
    for p in PATHS:
        digest = hashlib.sha1(p.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        write("canonicalize", f"path-{digest}", p)


# ---------------------------------------------------------------------------
# identity

def openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def der_of(pem: bytes) -> bytes:
    return subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem, check=True, capture_output=True).stdout


def cert_seeds() -> None:
    tmp = tempfile.mkdtemp(prefix="mtls-authz-seeds-")
    try:
        t = pathlib.Path(tmp)
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=tmp)
        openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/O=Shop/CN=Shop Seed CA", "-days", "3650", "-out", "ca.pem", cwd=tmp)
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=tmp)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key", cwd=tmp)

        def leaf(name: str, subj: str, ext: str = "", serial: str = "0x1A2B", days: str = "365",
                 key: str = "leaf.key", extra_req=()) -> bytes:
            openssl("req", "-new", "-key", key, "-subj", subj, *extra_req, "-out", f"{name}.csr", cwd=tmp)
            args = ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-set_serial", serial, "-days", days, "-out", f"{name}.pem"]
            if ext:
                (t / f"{name}.ext").write_text(ext)
                args += ["-extfile", f"{name}.ext"]
            openssl(*args, cwd=tmp)
            return (t / f"{name}.pem").read_bytes()

        certs = {
            "order-full": leaf(
                "order", "/O=Shop/OU=payments/CN=order-service",
                "subjectAltName=URI:spiffe://shop.test/ns/prod/sa/order,DNS:Order.Shop.Test,DNS:order,"
                "email:ops@shop.test,IP:10.1.2.3,IP:::1\nextendedKeyUsage=clientAuth\n",
                serial="0x80FF00"),
            "two-cns": leaf("twocn", "/OU=fleet/CN=dev-1/CN=dev-2", "subjectAltName=DNS:dev-1.fleet.test\n", serial="1"),
            "multivalued-rdn": leaf("mv", "/CN=dev-7+OU=fleet/O=Acme", "", serial="0",
                                    extra_req=("-multivalue-rdn",)),
            "utf8-cn": leaf("utf8", "/CN=caf\u00e9 \u00fcber/OU=a\\+b,c", "subjectAltName=URI:spiffe://t/sa/caf\n",
                            serial="0x00000001", extra_req=("-utf8",)),
            "no-subject-san-only": leaf("nosubj", "/", "subjectAltName=critical,URI:spiffe://shop.test/ns/prod/sa/billing\n",
                                        serial="0x7F"),
            "v1-no-extensions": leaf("v1", "/CN=legacy", "", serial="123456789"),
            "rsa-long-validity": leaf("rsa", "/CN=report-service/OU=reporting", "subjectAltName=URI:spiffe://shop.test/ns/prod/sa/report,URI:urn:x:y\n",
                                      serial="0x0123456789ABCDEF0123", days="20000", key="rsa.key"),
            "ca": (t / "ca.pem").read_bytes(),
        }
        for name, pem in certs.items():
            der = der_of(pem)
            write("identity", f"{name}.der", der)
            write("identity", f"{name}.pem", pem)

        order_pem = certs["order-full"]
        order_der = der_of(order_pem)
        ca_pem = certs["ca"]
        public_key = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ca_pem, check=True,
                                    capture_output=True).stdout
        write("identity", "chain-leaf-then-ca.pem", order_pem + ca_pem)
        write("identity", "crlf.pem", order_pem.replace(b"\n", b"\r\n"))
        write("identity", "junk-and-public-key-first.pem", b"subject=CN = order-service\n" + public_key + order_pem)
        write("identity", "end-label-mismatch.pem", order_pem.replace(b"-----END CERTIFICATE-----", b"-----END X509 CRL-----"))
        write("identity", "broken-base64-then-good.pem",
              b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n" + order_pem)
        write("identity", "public-key-only.pem", public_key)
        write("identity", "trailing-byte.der", order_der + b"\x00")
        write("identity", "truncated.der", order_der[: len(order_der) // 2])
        write("identity", "empty", b"")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# differential

def differential_seeds() -> None:
    rng = random.Random(20261127)
    for n in (16, 64, 256, 1024):
        write("differential", f"random-{n}", bytes(rng.randrange(256) for _ in range(n)))
    write("differential", "zeros-256", bytes(256))
    write("differential", "ones-256", b"\x01" * 256)


# ---------------------------------------------------------------------------
# body_overrides: the first byte picks the readings (1 form, 2 multipart, 4 JSON)

BODY_SEEDS = {
    "form-override": (1, b"amount=10&_method=DELETE"),
    "form-php-name": (1, b"a=1&+.method=DELETE"),
    "form-clean": (1, b"amount=10&currency=EUR"),
    "multipart-override": (2, b'--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n'),
    "multipart-folded-5987": (2, b"--b\r\nContent-Disposition: form-data;\r\n name*=utf-8''%5Fmethod\r\n\r\nx\r\n--b--\r\n"),
    "multipart-file": (2, b'--b\r\nContent-Disposition: form-data; name="f"; filename="a.js"\r\n\r\nx._method=1\r\n--b--\r\n'),
    "json-escaped-key": (4, b'{"a":[1,{"b":2}],"\\u005fmethod":"DELETE"}'),
    "json-clean-all-readings": (7, b'{"amount": 10}'),
    "json-broken": (4, b'{"a":1,'),
}


def body_seeds() -> None:
    for name, (bits, body) in BODY_SEEDS.items():
        write("body_overrides", name, bytes([bits]) + body)


if __name__ == "__main__":
    policy_seeds()
    path_seeds()
    cert_seeds()
    differential_seeds()
    body_seeds()
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
