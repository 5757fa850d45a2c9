#!/usr/bin/env python3
"""Render an Envoy config for mtls-authz from envoy/envoy.template.yaml (stdlib only).

Envoy cannot pass a file to a Wasm plugin, so the policy is embedded in the
config as the plugin's `configuration` string. This script does the embedding
(verbatim, so line:column in the filter's errors point into the policy file)
and fills in cert paths, the wasm path and addresses.

    python3 envoy/render.py --out envoy/envoy.yaml          # the committed docker config
    python3 envoy/render.py --check --out envoy/envoy.yaml  # exit 1 if it is out of date
    python3 envoy/render.py --cert-dir .work/certs --wasm target/wasm32-wasip1/release/mtls_authz_filter.wasm \\
        --admin 127.0.0.1:9901 --listener mtls=127.0.0.1:10000 --raw-listener raw=127.0.0.1:10001 \\
        --upstream 127.0.0.1:8080 --out .work/envoy.yaml

Listeners: `--listener NAME=HOST:PORT` has Envoy's path normalisation on (the
production setting); `--raw-listener NAME=HOST:PORT` has it off, to test that
the filter holds on its own. Both may be repeated; with neither, one
normalised listener `mtls` on 0.0.0.0:10000 is rendered.

Live reload (ECDS): with `--ecds-dir DIR` the policy is not embedded; the
filter's configuration comes from DIR/mtls_authz.yaml, which
`mtls-authz publish` / `mtls-authz watch` write and Envoy reloads when it is
replaced (`--ecds-file mtls_authz.json` for the JSON resource or
`mtls_authz.pb` for binary protobuf, which Envoy reads faster at thousands of
rules; Envoy picks the format by the extension).
`--ecds-grpc HOST:PORT` gets it from an xDS control plane instead.

    python3 envoy/render.py --ecds-dir /etc/envoy/policy --out envoy/envoy-ecds.yaml
    python3 envoy/render.py --ecds-grpc control-plane:18000 --out deploy/xds/envoy-ecds-grpc.yaml

Test harnesses import this file and call `render()` directly.
"""

import argparse
import os
import string
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATE = os.path.join(HERE, "envoy.template.yaml")
DEFAULT_POLICY = os.path.join(HERE, "policy.json")
DEFAULT_OUT = os.path.join(HERE, "envoy.yaml")

# Defaults are the paths and addresses inside the docker compose setup.
DEFAULT_CERT_DIR = "/etc/envoy/certs"
DEFAULT_WASM = "/etc/envoy/mtls_authz_filter.wasm"
DEFAULT_ADMIN = ("0.0.0.0", 9901)
DEFAULT_UPSTREAM = ("upstream", 8080)
DEFAULT_LISTENER_NAME = "mtls"
DEFAULT_LISTENER = ("0.0.0.0", 10000)
# ECDS: the resource (and HTTP filter) name, and the file it is published to in --ecds-dir
# (by default; --ecds-file / ecds_file name another, e.g. mtls_authz.json).
ECDS_NAME = "mtls_authz"
ECDS_FILE = ECDS_NAME + ".yaml"
# What `mtls-authz publish --out` writes, by extension (Envoy reads .yaml/.yml as YAML, the rest as JSON).
ECDS_FILE_EXTENSIONS = (".yaml", ".yml", ".json", ".pb")
# SDS: the secret files in --sds-dir (examples/pki.py publish writes them).
SDS_SERVER_FILE = "server.json"
SDS_CLIENT_CA_FILE = "client_ca.json"


@dataclass(frozen=True)
class Listener:
    name: str
    address: str
    port: int
    normalize: bool = True


class RenderError(Exception):
    pass


def yaml_quote(s):
    """A YAML double-quoted scalar for any string (escapes everything non-printable)."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and ch not in "\ufeff":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append("\\U%08x" % ord(ch))
    out.append('"')
    return "".join(out)


def _block_literal_ok(text):
    """Can `text` be a YAML literal block scalar that reads back byte-for-byte?"""
    if not text.strip() or "\r" in text or "\t" in text:
        return False
    lines = text.split("\n")
    body = lines[:-1] if text.endswith("\n") else lines
    # Trailing empty lines are handled by the chomping indicator; any other
    # blank or whitespace-only line, or leading blank lines, could shift
    # indentation detection or lose spaces, so keep it simple and quote.
    while body and body[-1] == "":
        body.pop()
    if not body or body[0][:1] == " ":
        return False
    for line in body:
        if line.strip() == "" or not line.isprintable() or "\ufeff" in line:
            return False
    return True


def embed_policy(text, indent):
    """The YAML for `value: <here>` with the policy text, at the given key indentation."""
    if not _block_literal_ok(text):
        return yaml_quote(text)
    stripped = text.rstrip("\n")
    trailing = len(text) - len(stripped)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    pad = " " * (indent + 2)
    lines = stripped.split("\n") + [""] * max(0, trailing - 1)
    return "|" + chomp + "\n" + "\n".join((pad + line) if line else "" for line in lines)


def _split_block(lines, begin, end):
    """Cut lines into (before, block, after) at marker lines `# @<begin>` / `# @<end>`."""
    idx = {}
    for i, line in enumerate(lines):
        tag = line.strip()
        if tag in ("# @" + begin, "# @" + end):
            if tag in idx:
                raise RenderError("template has more than one %r marker" % tag)
            idx[tag] = i
    b, e = idx.get("# @" + begin), idx.get("# @" + end)
    if b is None or e is None or e < b:
        raise RenderError("template lacks a well-formed '# @%s' ... '# @%s' block" % (begin, end))
    return lines[:b], lines[b + 1 : e], lines[e + 1 :]


def _subst(lines, values, policy_text=None):
    out = []
    for line in lines:
        if policy_text is not None and "${policy}" in line:
            indent = len(line) - len(line.lstrip(" "))
            line = line.replace("${policy}", embed_policy(policy_text, indent))
            out.append(line)
            continue
        try:
            out.append(string.Template(line).substitute(values))
        except KeyError as e:
            raise RenderError("template placeholder %s has no value" % e) from None
        except ValueError as e:
            raise RenderError("bad placeholder in template line %r: %s" % (line, e)) from None
    return out


def render(
    policy_text,
    *,
    cert_dir=DEFAULT_CERT_DIR,
    wasm_path=DEFAULT_WASM,
    admin=DEFAULT_ADMIN,
    listeners=None,
    upstream=DEFAULT_UPSTREAM,
    with_wasm=True,
    policy_origin="envoy/policy.json",
    template_path=DEFAULT_TEMPLATE,
    ecds_dir=None,
    ecds_file=ECDS_FILE,
    ecds_grpc=None,
    sds_dir=None,
    regenerate="python3 envoy/render.py --out envoy/envoy.yaml",
):
    """Return the rendered Envoy config (YAML text).

    `ecds_dir` (a directory as Envoy sees it) or `ecds_grpc` ((host, port) of
    an xDS control plane) configure the filter by ECDS instead of embedding
    `policy_text`, which is then ignored; with `ecds_dir`, `ecds_file` is the
    resource file's name in it (.yaml, .yml, .json or .pb, as `mtls-authz
    publish --out` writes it). `sds_dir` (a directory as Envoy
    sees it) takes the listener certificate and the client CAs (with CRLs)
    from file-watched SDS secrets there (server.json, client_ca.json, as
    examples/pki.py writes them) instead of the files in `cert_dir`.
    """
    if ecds_dir and ecds_grpc:
        raise RenderError("--ecds-dir and --ecds-grpc exclude each other")
    if ("/" in ecds_file or ecds_file.startswith(".")
            or not ecds_file.lower().endswith(ECDS_FILE_EXTENSIONS)):
        raise RenderError("the ECDS resource file must be a plain file name ending in %s, got %r"
                          % (", ".join(ECDS_FILE_EXTENSIONS), ecds_file))
    ecds = bool(ecds_dir or ecds_grpc)
    if ecds and not with_wasm:
        raise RenderError("--no-wasm leaves the filter out; it cannot also come from ECDS")
    if listeners is None:
        listeners = [Listener(DEFAULT_LISTENER_NAME, *DEFAULT_LISTENER)]
    if not listeners:
        raise RenderError("at least one listener is needed")
    names = [l.name for l in listeners]
    if len(set(names)) != len(names):
        raise RenderError("listener names must be unique: %s" % names)
    with open(template_path, encoding="utf-8") as f:
        tmpl = [l for l in f.read().split("\n") if not l.startswith("#@")]

    before, listener_block, after = _split_block(tmpl, "listener-begin", "listener-end")
    tls_pre, tls_files, tls_rest = _split_block(listener_block, "tls-files-begin", "tls-files-end")
    sds_pre, tls_sds, sds_post = _split_block(tls_rest, "tls-sds-begin", "tls-sds-end")
    listener_block = tls_pre + (tls_sds if sds_dir else tls_files) + sds_pre + sds_post
    pre_wasm, wasm_block, post_wasm = _split_block(listener_block, "wasm-begin", "wasm-end")
    if not with_wasm:
        wasm_block = []
    pre_ecds, ecds_block, post_wasm = _split_block(post_wasm, "ecds-begin", "ecds-end")
    post_wasm = pre_ecds + post_wasm
    file_pre, file_block, file_post = _split_block(ecds_block, "ecds-file-begin", "ecds-file-end")
    grpc_pre, grpc_block, grpc_post = _split_block(file_pre + file_post, "ecds-grpc-begin", "ecds-grpc-end")
    if ecds:
        # The ECDS block takes the embedded filter's place, with one config source.
        source = file_block if ecds_dir else grpc_block
        wasm_block = grpc_pre + source + grpc_post
        policy_text = None
    after_pre, xds_cluster, after_post = _split_block(after, "xds-cluster-begin", "xds-cluster-end")
    after = after_pre + (xds_cluster if ecds_grpc else []) + after_post

    cert = lambda name: yaml_quote(cert_dir.rstrip("/") + "/" + name)  # noqa: E731
    common = {
        "policy_origin": policy_origin,
        "admin_address": yaml_quote(admin[0]),
        "admin_port": int(admin[1]),
        "upstream_address": yaml_quote(upstream[0]),
        "upstream_port": int(upstream[1]),
        "server_cert": cert("server.crt"),
        "server_key": cert("server.key"),
        "ca_cert": cert("ca.crt"),
        "wasm_path": yaml_quote(wasm_path),
        "regenerate": regenerate,
    }
    if sds_dir:
        common["sds_dir"] = yaml_quote(sds_dir)
        common["sds_server_path"] = yaml_quote(sds_dir.rstrip("/") + "/" + SDS_SERVER_FILE)
        common["sds_client_ca_path"] = yaml_quote(sds_dir.rstrip("/") + "/" + SDS_CLIENT_CA_FILE)
    if ecds_dir:
        common["policy_origin"] = "(not embedded: ECDS, see the %s filter)" % ECDS_NAME
        common["ecds_dir"] = yaml_quote(ecds_dir)
        common["ecds_path"] = yaml_quote(ecds_dir.rstrip("/") + "/" + ecds_file)
    if ecds_grpc:
        common["policy_origin"] = "(not embedded: ECDS from an xDS control plane)"
        common["xds_address"] = yaml_quote(ecds_grpc[0])
        common["xds_port"] = int(ecds_grpc[1])
    out = _subst(before, common)
    for l in listeners:
        values = dict(common)
        values.update(
            listener_name=l.name,
            listener_address=yaml_quote(l.address),
            listener_port=int(l.port),
            normalisation_note="ON: production setting" if l.normalize
            else "OFF: test listener only, the filter must hold on its own",
            normalize_path="true" if l.normalize else "false",
            merge_slashes="true" if l.normalize else "false",
            escaped_slashes_action="REJECT_REQUEST" if l.normalize else "KEEP_UNCHANGED",
        )
        block = pre_wasm + wasm_block + post_wasm
        out += _subst(block, values, policy_text)
    out += _subst(after, common)
    return "\n".join(out)


def _hostport(s, what):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError("%s must be HOST:PORT, got %r" % (what, s))
    return host, int(port)


def _listener(normalize):
    def parse(s):
        name, sep, hp = s.partition("=")
        if not sep or not name.replace("_", "").replace("-", "").isalnum():
            raise argparse.ArgumentTypeError("listener must be NAME=HOST:PORT, got %r" % s)
        host, port = _hostport(hp, "listener address")
        return Listener(name, host, port, normalize)
    return parse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=DEFAULT_POLICY, help="policy JSON file (default envoy/policy.json)")
    ap.add_argument("--template", default=DEFAULT_TEMPLATE, help="config template (default envoy/envoy.template.yaml)")
    ap.add_argument("--out", default="-", help="output file, - for stdout (default -)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if --out differs from the rendering")
    ap.add_argument("--cert-dir", default=DEFAULT_CERT_DIR, help="dir with ca.crt, server.crt, server.key (default %(default)s)")
    ap.add_argument("--wasm", default=DEFAULT_WASM, help="filter .wasm path as Envoy sees it (default %(default)s)")
    ap.add_argument("--no-wasm", action="store_true", help="leave the filter out (TLS-only harness debugging)")
    ap.add_argument("--admin", type=lambda s: _hostport(s, "--admin"), default=DEFAULT_ADMIN, help="admin HOST:PORT (default 0.0.0.0:9901)")
    ap.add_argument("--upstream", type=lambda s: _hostport(s, "--upstream"), default=DEFAULT_UPSTREAM, help="upstream HOST:PORT (default upstream:8080)")
    ap.add_argument("--listener", dest="listeners", type=_listener(True), action="append", default=[],
                    help="NAME=HOST:PORT, path normalisation on (repeatable)")
    ap.add_argument("--raw-listener", dest="listeners", type=_listener(False), action="append",
                    help="NAME=HOST:PORT, path normalisation off (repeatable)")
    ap.add_argument("--ecds-dir", metavar="DIR",
                    help="live reload: the filter config comes by ECDS from DIR/%s, written by "
                         "`mtls-authz publish` (the policy is not embedded)" % ECDS_FILE)
    ap.add_argument("--ecds-file", metavar="NAME", default=ECDS_FILE,
                    help="with --ecds-dir: the resource file's name in DIR, .yaml, .yml, .json or .pb "
                         "(default %(default)s)")
    ap.add_argument("--ecds-grpc", metavar="HOST:PORT", type=lambda s: _hostport(s, "--ecds-grpc"),
                    help="the filter config comes by ECDS from an xDS control plane at HOST:PORT")
    ap.add_argument("--sds-dir", metavar="DIR",
                    help="rotation/revocation: listener certificate and client CAs + CRLs from file-watched SDS "
                         "secrets DIR/%s and DIR/%s (examples/pki.py writes them)" % (SDS_SERVER_FILE, SDS_CLIENT_CA_FILE))
    args = ap.parse_args(argv)

    policy_text = ""
    if not (args.ecds_dir or args.ecds_grpc):
        try:
            with open(args.policy, encoding="utf-8") as f:
                policy_text = f.read()
        except OSError as e:
            print("render.py: cannot read policy: %s" % e, file=sys.stderr)
            return 2
    origin = os.path.relpath(os.path.abspath(args.policy), os.path.dirname(HERE))
    if origin.startswith(".."):
        origin = args.policy
    regenerate = "python3 envoy/render.py --out envoy/envoy.yaml"
    if args.ecds_dir:
        regenerate = "python3 envoy/render.py --ecds-dir %s%s --out %s" % (
            args.ecds_dir, "" if args.ecds_file == ECDS_FILE else " --ecds-file " + args.ecds_file, args.out)
    if args.ecds_grpc:
        regenerate = "python3 envoy/render.py --ecds-grpc %s:%d --out %s" % (*args.ecds_grpc, args.out)
    if args.sds_dir:
        regenerate = "python3 envoy/render.py --policy %s --sds-dir %s --out %s" % (args.policy, args.sds_dir, args.out)
    try:
        text = render(policy_text, cert_dir=args.cert_dir, wasm_path=args.wasm, admin=args.admin,
                      listeners=args.listeners or None, upstream=args.upstream,
                      with_wasm=not args.no_wasm, policy_origin=origin, template_path=args.template,
                      ecds_dir=args.ecds_dir, ecds_file=args.ecds_file, ecds_grpc=args.ecds_grpc,
                      sds_dir=args.sds_dir,
                      regenerate=regenerate)
    except (RenderError, OSError) as e:
        print("render.py: %s" % e, file=sys.stderr)
        return 2

    if args.check:
        if args.out == "-":
            print("render.py: --check needs --out FILE", file=sys.stderr)
            return 2
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            print("render.py: %s" % e, file=sys.stderr)
            return 1
        if current != text:
            print("render.py: %s is out of date; run: python3 envoy/render.py --out %s" % (args.out, args.out),
                  file=sys.stderr)
            return 1
        return 0
    if args.out == "-":
        sys.stdout.write(text)
    else:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
