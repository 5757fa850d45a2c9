"""The Envoy configuration: committed rendering in sync, accepted by Envoy,
and the policy embedded byte-for-byte."""

import json
import subprocess
import sys

import pytest

from conftest import COMPOSE_TARGET
from e2e_lib import ENVOY_DIR, POLICY_FILE, render, validate_config

COMMITTED = ENVOY_DIR / "envoy.yaml"
DOCKER_CERT_DIR = "/etc/envoy/certs"
DOCKER_WASM = "/etc/envoy/mtls_authz_filter.wasm"
REGENERATE = "run: python3 envoy/render.py --out envoy/envoy.yaml"


def test_committed_config_in_sync_with_policy_and_template():
    expected = render.render(POLICY_FILE.read_text())
    assert COMMITTED.read_text() == expected, "envoy/envoy.yaml is out of date with policy.json/template; " + REGENERATE


def test_render_check_cli():
    r = subprocess.run([sys.executable, str(ENVOY_DIR / "render.py"), "--check", "--out", str(COMMITTED)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout.decode()


def test_committed_config_has_the_hardening():
    text = COMMITTED.read_text()
    for needle in ("require_client_certificate: true", "tls_minimum_protocol_version: TLSv1_2",
                   "normalize_path: true", "merge_slashes: true",
                   "path_with_escaped_slashes_action: REJECT_REQUEST", "forward_client_cert_details: SANITIZE",
                   "runtime: envoy.wasm.runtime.v8", "failure_policy: FAIL_CLOSED",
                   "type.googleapis.com/google.protobuf.StringValue", 'filename: "%s"' % DOCKER_WASM,
                   'port_value: 10000', 'port_value: 9901', 'address: "upstream", port_value: 8080'):
        assert needle in text, "envoy/envoy.yaml lacks %r" % needle


def test_raw_listener_turns_normalisation_off():
    text = render.render(POLICY_FILE.read_text(), listeners=[render.Listener("mtls", "0.0.0.0", 10000),
                                                             render.Listener("raw", "0.0.0.0", 10001, False)])
    assert text.count("normalize_path: true") == 1 and text.count("normalize_path: false") == 1
    assert text.count("merge_slashes: false") == 1
    assert text.count("path_with_escaped_slashes_action: KEEP_UNCHANGED") == 1
    assert text.count("require_client_certificate: true") == 2
    assert text.count("- name: mtls_authz") == 2


@pytest.mark.parametrize("policy", [
    '{"version": 1}',                            # no trailing newline
    '{\n\t"version": 1,\n\t"x": "a\\"b"\n}\n',   # tabs and an escaped quote: quoted form
    '{"k": "caf\u00e9 \u2028 \U0001F600"}\n\n',   # non-ASCII, a YAML line-break char, two newlines
    ' {"leading": "space"}\n',                   # would confuse block indentation detection
    '{\r\n"crlf": 1\r\n}\r\n',
    POLICY_FILE.read_text(),
])
def test_policy_embedding_is_exact(policy):
    """The renderer's YAML scalar for the policy reads back to the exact text."""
    assert _embedded_value(render.render(policy)) == policy


def _embedded_value(config_text):
    """Read back the `value:` scalar render.py wrote (literal block or double-quoted)."""
    lines = config_text.split("\n")
    i = next(i for i, l in enumerate(lines) if l.lstrip().startswith("value: "))
    head = lines[i].lstrip()[len("value: "):]
    if head.startswith('"'):
        return _yaml_double_quoted(head)
    assert head in ("|", "|-", "|+"), head
    indent = len(lines[i]) - len(lines[i].lstrip()) + 2
    body = []
    for l in lines[i + 1:]:
        if l != "" and not l.startswith(" " * indent):
            break
        body.append(l[indent:])
    blank_tail = 0
    while body and body[-1] == "":
        body.pop()
        blank_tail += 1
    text = "\n".join(body)
    return {"|-": text, "|": text + "\n", "|+": text + "\n" * (1 + blank_tail)}[head]


def _yaml_double_quoted(s):
    assert s.startswith('"') and s.endswith('"'), s
    simple = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
    out, i, body = [], 0, s[1:-1]
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
        elif body[i + 1] in simple:
            out.append(simple[body[i + 1]])
            i += 2
        else:
            width = {"u": 4, "U": 8}[body[i + 1]]
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
    return "".join(out)


def test_envoy_validates_rendered_config(envoy_factory, workdir):
    path = workdir / "validate-rendered.yaml"
    path.write_text(envoy_factory.config(POLICY_FILE.read_text()))
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc == 0 and "OK" in out, out[-3000:]


@pytest.mark.filter
def test_envoy_validates_committed_config(envoy_factory, workdir):
    # The committed docker config itself, with only the in-container paths mapped to local files.
    text = COMMITTED.read_text()
    text = text.replace(DOCKER_CERT_DIR, str(envoy_factory.certs)).replace(DOCKER_WASM, str(envoy_factory.wasm_path))
    path = workdir / "validate-committed.yaml"
    path.write_text(text)
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc == 0 and "OK" in out, out[-3000:]


@pytest.mark.filter
def test_running_envoy_holds_policy_verbatim(gateway):
    if COMPOSE_TARGET:
        pytest.skip("compose mode: the compose Envoy runs envoy/envoy.yaml, checked by the sync test")
    dump = json.loads(gateway.admin.get("/config_dump"))
    values = list(_string_values(dump))
    assert values, "no StringValue plugin configuration in /config_dump"
    assert all(v == POLICY_FILE.read_text() for v in values), "embedded policy differs from envoy/policy.json"


def _string_values(node):
    if isinstance(node, dict):
        if node.get("@type") == "type.googleapis.com/google.protobuf.StringValue":
            yield node.get("value")
        for v in node.values():
            yield from _string_values(v)
    elif isinstance(node, list):
        for v in node:
            yield from _string_values(v)


@pytest.mark.filter
def test_running_envoy_holds_quoted_policy_verbatim(envoy_factory):
    # A tab-indented policy without a final newline takes the double-quoted
    # path in render.py; Envoy must still hand the plugin the exact text.
    policy = json.dumps(json.loads(POLICY_FILE.read_text()), indent="\t")
    assert render.embed_policy(policy, 0).startswith('"')
    env = envoy_factory.start("quoted-policy", policy)
    values = list(_string_values(json.loads(env.admin.get("/config_dump"))))
    env.stop()
    assert values and all(v == policy for v in values)
