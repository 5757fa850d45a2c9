#!/usr/bin/env python3
"""Generate an example's PKI from its recipe, and revoke or rotate in it (stdlib + the openssl CLI).

Every example in examples/ has a `pki.json` recipe: its certificate
authorities, which of them Envoy trusts for client certificates, and the
client certificates its story needs. Nothing generated is committed: run

    python3 examples/pki.py generate examples/b2b-gateway .work/pki/b2b-gateway
    python3 examples/pki.py generate examples/iot-fleet .work/pki/iot-fleet --fleet 1000
    python3 examples/pki.py revoke .work/pki/revocation-rotation billing-leaked
    python3 examples/pki.py publish .work/pki/revocation-rotation --trust shop-ca-2025

The output directory holds, for Envoy:

    ca.crt, ca.key          the server CA; clients verify Envoy with ca.crt
    server.crt, server.key  Envoy's listener certificate (localhost, envoy, 127.0.0.1)
    sds/server.json         SDS secret "server": the listener certificate and key
    sds/client_ca.json      SDS secret "client_ca": the trusted client CAs and their CRLs

and, for clients, `<name>.crt` / `<name>.key` for every certificate of the
recipe (`fleet/<name>.*` for a generated device fleet). Envoy reads the two
SDS files through file-watched SDS (envoy/render.py --sds-dir DIR/sds): each
is replaced atomically (written aside, then renamed into sds/), and Envoy
applies it to new connections without a restart.

The recipe (examples/*/pki.json):

    {"cas": {"partner-ca": {"subject": "/O=Partner Network/CN=Partner CA 2025"}},
     "trust": ["partner-ca"],                         # client CAs Envoy accepts
     "certs": {"globex-api-client": {"ca": "partner-ca",
                "subject": "/O=Globex Corporation/CN=api-client-01",
                "san": "URI:spiffe://...,DNS:...",    # optional
                "serial": "4f1c0a9e",                 # optional, hex (else random)
                "revoked": true}},                    # optional: listed in the CRL
     "fleet": {"ca": "device-ca", "subject": "/O=Acme Devices/OU=fleet/CN={name}",
               "name": "dev-{n:05d}", "default_count": 50}}

Every trusted CA gets a CRL (Envoy, with a CRL configured, refuses a
certificate whose issuer has none). Private keys are written 0600.
"""

import argparse
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SERVER_CA_SUBJECT = "/O=mtls-authz examples/CN=Example Server CA"
SERVER_SAN = "DNS:localhost,DNS:envoy,IP:127.0.0.1"
DAYS = 30
STATE = "pki-state.json"
# SDS secret names, as envoy/envoy.template.yaml refers to them.
SERVER_SECRET = "server"
CLIENT_CA_SECRET = "client_ca"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

CA_EXT = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class PkiError(Exception):
    pass


def _run(*args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise PkiError("%s failed: %s" % (" ".join(args[:3]), r.stderr.decode(errors="replace").strip()))
    return r.stdout


def _serial(hex_serial=None):
    return "0x" + (hex_serial.replace(":", "") if hex_serial else secrets.token_hex(12))


def _conf(out):
    path = out / ".openssl.cnf"
    if not path.exists():
        path.write_text(CA_EXT)
    return path


def _write_secret_file(path, text, mode):
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def make_ca(out, name, subject):
    """A self-signed CA: `<name>.crt` and `<name>.key` in `out`."""
    key, crt = out / (name + ".key"), out / (name + ".crt")
    _run("openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-subj", subject, "-config", str(_conf(out)), "-extensions", "ca",
         "-set_serial", _serial(), "-days", str(DAYS * 12), "-utf8", "-out", str(crt))
    os.chmod(key, 0o600)
    return crt


def make_leaf(out, name, ca, subject, eku="clientAuth", san=None, serial=None, days=DAYS):
    """A leaf signed by CA `ca` (a name in `out`), in one openssl call: `<name>.crt` / `.key`.

    openssl reads an -addext value as a config line, where '#' starts a
    comment: a '#' in a SAN (a URI fragment) is escaped.
    """
    stem = out / name
    stem.parent.mkdir(parents=True, exist_ok=True)
    args = ["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(stem) + ".key", "-subj", subject, "-utf8",
            "-config", str(_conf(out)), "-extensions", "leaf", "-addext", "extendedKeyUsage = " + eku,
            "-CA", str(out / (ca + ".crt")), "-CAkey", str(out / (ca + ".key")),
            "-set_serial", _serial(serial), "-days", str(days), "-out", str(stem) + ".crt"]
    if san:
        args[args.index("-CA"):args.index("-CA")] = ["-addext", "subjectAltName = " + san.replace("#", "\\#")]
    _run(*args)
    os.chmod(str(stem) + ".key", 0o600)
    return Path(str(stem) + ".crt")


def serial_of(crt):
    """Upper-case hex serial, as openssl's CA database writes it."""
    text = _run("openssl", "x509", "-in", str(crt), "-noout", "-serial").decode().strip()
    value = text.split("=", 1)[1]
    return value if len(value) % 2 == 0 else "0" + value


def sha256_of(crt):
    text = _run("openssl", "x509", "-in", str(crt), "-noout", "-fingerprint", "-sha256").decode().strip()
    return text.split("=", 1)[1].replace(":", "").lower()


def make_crl(out, ca, revoked_serials):
    """`<ca>.crl.pem`: the CRL of CA `ca` listing `revoked_serials` (openssl ca -gencrl)."""
    db = out / ".ca-db" / ca
    db.mkdir(parents=True, exist_ok=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%y%m%d%H%M%SZ")
    expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=DAYS)).strftime("%y%m%d%H%M%SZ")
    (db / "index.txt").write_text("".join("R\t%s\t%s\t%s\tunknown\t/CN=revoked\n" % (expiry, when, s)
                                          for s in sorted(set(revoked_serials))))
    (db / "index.txt.attr").write_text("unique_subject = no\n")
    (db / "crlnumber").write_text("%04X\n" % int(time.time() * 1000 % 65536))
    cnf = db / "ca.cnf"
    cnf.write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\n"
                   "default_crl_days = %d\n" % (db / "index.txt", db / "crlnumber", DAYS))
    crl = out / (ca + ".crl.pem")
    _run("openssl", "ca", "-gencrl", "-batch", "-config", str(cnf), "-cert", str(out / (ca + ".crt")),
         "-keyfile", str(out / (ca + ".key")), "-out", str(crl))
    return crl


# --------------------------------------------------------------------------- state

def load_state(out):
    try:
        return json.loads((Path(out) / STATE).read_text())
    except OSError:
        raise PkiError("%s has no %s: run `pki.py generate` first" % (out, STATE)) from None


def save_state(out, state):
    _write_secret_file(Path(out) / STATE, json.dumps(state, indent=1) + "\n", 0o644)


def publish(out, trust=None, server=None):
    """Write sds/client_ca.json (trusted CAs + their CRLs) and sds/server.json, atomically.

    `trust`: the CA names to trust (default: as in the state); `server`: the
    stem of the listener certificate (default: as in the state). Each file is
    replaced by a rename, which is what Envoy's watched directory reacts to.
    """
    out = Path(out)
    state = load_state(out)
    if trust is not None:
        state["trust"] = list(trust)
    if server is not None:
        state["server"] = server
    for ca in state["trust"]:
        revoked = [c["serial"] for c in state["certs"].values() if c["ca"] == ca and c.get("revoked")]
        make_crl(out, ca, revoked)
    bundle = "".join((out / (ca + ".crt")).read_text() for ca in state["trust"])
    crls = "".join((out / (ca + ".crl.pem")).read_text() for ca in state["trust"])
    (out / "client-ca-bundle.pem").write_text(bundle)
    (out / "crl.pem").write_text(crls)
    sds = out / "sds"
    sds.mkdir(exist_ok=True)
    client_ca = {"resources": [{"@type": SECRET_TYPE, "name": CLIENT_CA_SECRET, "validation_context": {
        "trusted_ca": {"inline_string": bundle}, "crl": {"inline_string": crls}}}]}
    stem = out / state["server"]
    server_secret = {"resources": [{"@type": SECRET_TYPE, "name": SERVER_SECRET, "tls_certificate": {
        "certificate_chain": {"inline_string": Path(str(stem) + ".crt").read_text()},
        "private_key": {"inline_string": Path(str(stem) + ".key").read_text()}}}]}
    # Written elsewhere in the same file system, then renamed into the watched directory.
    for name, doc, mode in (("server.json", server_secret, 0o600), ("client_ca.json", client_ca, 0o644)):
        tmp = out / (".sds-" + name)
        _write_secret_file(tmp, json.dumps(doc, indent=1) + "\n", mode)
        os.replace(tmp, sds / name)
    save_state(out, state)
    return sds


def revoke(out, name):
    """Mark certificate `name` revoked and republish the CRLs; returns its serial."""
    state = load_state(out)
    if name not in state["certs"]:
        raise PkiError("no certificate %r in %s (have: %s)" % (name, out, ", ".join(sorted(state["certs"]))))
    state["certs"][name]["revoked"] = True
    save_state(out, state)
    publish(out)
    return state["certs"][name]["serial"]


def issue(out, name, ca, subject, eku="clientAuth", san=None, serial=None):
    """Issue one more certificate into an existing PKI (rotation: reissue the leaves)."""
    state = load_state(out)
    crt = make_leaf(Path(out), name, ca, subject, eku=eku, san=san, serial=serial)
    state["certs"][name] = {"ca": ca, "serial": serial_of(crt)}
    save_state(out, state)
    return crt


def mint_fleet(out, fleet, count, workers=4):
    """`count` device certificates into out/fleet/, in parallel; returns (names, seconds)."""
    names = [fleet.get("name", "dev-{n:05d}").format(n=n) for n in range(1, count + 1)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda nm: make_leaf(out, "fleet/" + nm, fleet["ca"], fleet["subject"].format(name=nm)), names))
    return names, time.monotonic() - started


def generate(example_dir, out, fleet_count=None):
    """Generate the PKI of `example_dir/pki.json` into `out` (emptied first); publish the SDS files."""
    recipe = json.loads((Path(example_dir) / "pki.json").read_text())
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    make_ca(out, "ca", SERVER_CA_SUBJECT)
    make_leaf(out, "server", "ca", "/CN=envoy", eku="serverAuth", san=SERVER_SAN)
    for name, ca in recipe["cas"].items():
        make_ca(out, name, ca["subject"])
    state = {"example": Path(example_dir).name, "trust": recipe["trust"], "server": "server", "certs": {}}
    for name, c in recipe.get("certs", {}).items():
        crt = make_leaf(out, name, c["ca"], c["subject"], san=c.get("san"), serial=c.get("serial"))
        state["certs"][name] = {"ca": c["ca"], "serial": serial_of(crt), "revoked": bool(c.get("revoked"))}
    if "fleet" in recipe:
        count = fleet_count if fleet_count is not None else recipe["fleet"].get("default_count", 50)
        names, seconds = mint_fleet(out, recipe["fleet"], count)
        state["fleet"] = {"ca": recipe["fleet"]["ca"], "count": len(names), "seconds": round(seconds, 2)}
    save_state(out, state)
    publish(out)
    return state


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate EXAMPLE_DIR/pki.json into OUT (emptied first)")
    g.add_argument("example_dir")
    g.add_argument("out")
    g.add_argument("--fleet", type=int, metavar="N", help="device certificates to mint (recipe's default_count)")
    r = sub.add_parser("revoke", help="revoke certificate NAME: regenerate the CRLs and publish them")
    r.add_argument("out")
    r.add_argument("name")
    p = sub.add_parser("publish", help="rewrite the SDS files (optionally trusting other CAs / another server cert)")
    p.add_argument("out")
    p.add_argument("--trust", nargs="+", metavar="CA")
    p.add_argument("--server", metavar="STEM")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "generate":
            state = generate(args.example_dir, args.out, args.fleet)
            fleet = state.get("fleet")
            print("pki.py: %s: %d certificates%s in %s" % (state["example"], len(state["certs"]),
                  " + %d devices (%.1f s)" % (fleet["count"], fleet["seconds"]) if fleet else "", args.out))
        elif args.cmd == "revoke":
            print("pki.py: revoked %s (serial %s); CRL published to %s/sds" % (args.name, revoke(args.out, args.name),
                                                                             args.out))
        else:
            print("pki.py: published %s" % publish(args.out, args.trust, args.server))
    except (PkiError, OSError, KeyError, ValueError) as e:
        print("pki.py: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
