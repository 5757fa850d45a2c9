"""What the upstream is told in x-mtls-authz-principal, through a real Envoy.

The header says which certificate field names the caller (`uri=`, `cn=`,
`dns=`, `subject=`, `sha256=`) and percent-encodes the value, so that a CN
cannot pose as the URI SAN it spells, a comma cannot make two principals of
one, and callers without a URI SAN or CN are still told apart. Each case is
a certificate signed by the dev CA, sent through Envoy to the echo upstream,
and the header value the upstream received is compared with the exact bytes
expected; for the non-ASCII CN also with what `mtls-authz explain` prints.
With `"principal_format": "legacy"` the old bare form is still forwarded.
"""

import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from e2e_lib import PRINCIPAL_HEADER, REPO, issue_client_cert

pytestmark = pytest.mark.filter

CLI = Path(os.environ.get("MTLS_AUTHZ_CLI") or REPO / "target" / "release" / "mtls-authz")

ORDER_SPIFFE = "spiffe://shop.test/ns/prod/sa/order"
NON_ASCII_CN = "Zoë Ops-服务"


def policy(**upstream_headers):
    doc = {"version": 1, "default_action": "deny", "revision": "principal-e2e",
           "rules": [{"name": "anyone-whoami", "action": "allow", "principals": [{"any": True}],
                      "paths": ["/whoami"], "methods": ["GET"]}]}
    if upstream_headers:
        doc["upstream_headers"] = upstream_headers
    return json.dumps(doc, indent=2) + "\n"


def cn(value):
    """An openssl -subj with one CN (a `/` in the value is escaped)."""
    return "/CN=" + value.replace("/", "\\/")


# name -> (openssl subject, subjectAltName or None)
CALLERS = {
    "cn-spells-spiffe": (cn(ORDER_SPIFFE), None),
    "cn-comma": (cn("order-service, spiffe://shop.test/ns/prod/sa/admin"), None),
    "cn-non-ascii": (cn(NON_ASCII_CN), None),
    "dns-only": ("/", "DNS:api.shop.test"),
    "dns-only-other": ("/", "DNS:evil.shop.test"),
}


@pytest.fixture(scope="module")
def stems(certs, tmp_path_factory):
    out = tmp_path_factory.mktemp("principal-certs")
    return {name: issue_client_cert(certs, out / name, subject, san) for name, (subject, san) in CALLERS.items()}


@pytest.fixture(scope="module")
def typed(request, envoy_factory, tmp_path_factory):
    """An Envoy whose policy lets anyone GET /whoami; the default principal format."""
    text = policy()
    path = tmp_path_factory.mktemp("principal-policy") / "policy.json"
    path.write_text(text)
    env = envoy_factory.start("principal-typed", text, owner=request.node.nodeid)
    gw = envoy_factory.gateway(env)
    gw.extra["policy_file"] = path
    return gw


@pytest.fixture(scope="module")
def legacy(request, envoy_factory, tmp_path_factory):
    text = policy(principal_format="legacy")
    path = tmp_path_factory.mktemp("principal-legacy-policy") / "policy.json"
    path.write_text(text)
    env = envoy_factory.start("principal-legacy", text, owner=request.node.nodeid)
    gw = envoy_factory.gateway(env)
    gw.extra["policy_file"] = path
    return gw


def principal_at_upstream(gw, identity):
    r = gw.request(identity, "GET", "/whoami")
    assert r.status == 200, r
    got = r.upstream_headers(PRINCIPAL_HEADER)
    assert len(got) == 1, r.echo["headers"]
    return got[0]


def explain(gw, cert):
    """(text line value, JSON value) of the principal `mtls-authz explain` prints for `cert`."""
    if not CLI.is_file():
        pytest.fail("no mtls-authz CLI at %s; build it with `bash scripts/build.sh`" % CLI, pytrace=False)
    args = [str(CLI), "explain", "--policy", str(gw.extra["policy_file"]), "--cert", str(cert),
            "--method", "GET", "--path", "/whoami"]
    text = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True).stdout
    prefix = b"  " + PRINCIPAL_HEADER.encode() + b": "
    lines = [l[len(prefix):] for l in text.split(b"\n") if l.startswith(prefix)]
    assert len(lines) == 1, text
    out = subprocess.run(args + ["--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                         check=True).stdout
    return lines[0], json.loads(out)["upstream_principal"]


def test_a_cn_spelling_a_spiffe_id_is_not_the_uri_san_holder(typed, stems):
    impostor = principal_at_upstream(typed, stems["cn-spells-spiffe"])
    assert impostor == "cn=spiffe://shop.test/ns/prod/sa/order"
    assert principal_at_upstream(typed, "order-service") == "uri=spiffe://shop.test/ns/prod/sa/order"


def test_a_comma_in_a_cn_cannot_split_the_principal(typed, stems):
    got = principal_at_upstream(typed, stems["cn-comma"])
    assert got == "cn=order-service%2C%20spiffe://shop.test/ns/prod/sa/admin"
    assert "," not in got and " " not in got


def test_a_non_ascii_cn_is_what_explain_prints(typed, stems):
    got = principal_at_upstream(typed, stems["cn-non-ascii"])
    assert got == "cn=Zo%C3%AB%20Ops-%E6%9C%8D%E5%8A%A1"
    text, js = explain(typed, str(stems["cn-non-ascii"]) + ".crt")
    assert text == got.encode(), "explain's text line differs from the header: %r" % text
    assert js == got
    # What the README tells a backend: split at the first "=", percent-decode the rest.
    kind, _, value = got.partition("=")
    assert (kind, urllib.parse.unquote(value, errors="strict")) == ("cn", NON_ASCII_CN)


def test_callers_with_only_a_dns_san_are_told_apart(typed, stems):
    assert principal_at_upstream(typed, stems["dns-only"]) == "dns=api.shop.test"
    assert principal_at_upstream(typed, stems["dns-only-other"]) == "dns=evil.shop.test"


def test_the_deny_log_line_shows_the_typed_principal(typed, stems):
    r = typed.request(stems["cn-non-ascii"], "GET", "/private")
    assert r.status == 403, r
    want = 'mtls-authz: deny principal="cn=Zo%C3%AB%20Ops-%E6%9C%8D%E5%8A%A1" '
    deadline = time.monotonic() + 5
    while want not in typed.envoy.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert want in typed.envoy.log_text(), typed.envoy.log_tail(20)


def test_legacy_format_still_forwards_the_bare_name(legacy, stems):
    assert principal_at_upstream(legacy, stems["cn-spells-spiffe"]) == ORDER_SPIFFE
    assert principal_at_upstream(legacy, "order-service") == ORDER_SPIFFE, "the ambiguity legacy keeps"
    got = principal_at_upstream(legacy, stems["cn-non-ascii"])
    assert got == "Zo%C3%AB Ops-%E6%9C%8D%E5%8A%A1"
    text, js = explain(legacy, str(stems["cn-non-ascii"]) + ".crt")
    assert (text, js) == (got.encode(), got)
