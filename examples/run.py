#!/usr/bin/env python3
"""Try one example by hand: its PKI, its Envoy and the echo upstream, on this machine.

    python3 examples/run.py microservices          # runs until Ctrl-C
    python3 examples/run.py iot-fleet --port 10443 # a fixed listener port (default: any free one)
    python3 examples/run.py b2b-gateway --once     # replay the cases and stop (what CI runs)

It generates the example's PKI (examples/pki.py) into .work/examples/NAME/pki,
renders an Envoy config from envoy/envoy.template.yaml with the example's
policy and file-watched SDS certificates, starts the echo upstream and Envoy
(the processes the e2e suite starts, from policy-tests/e2e/e2e_lib.py),
replays every case that names a certificate through Envoy and prints what
happened, then prints curl commands to go on by hand. While it runs,
`python3 examples/pki.py revoke .work/examples/NAME/pki CERT` revokes a
certificate and Envoy refuses it on new connections without a restart.

Needs `bash scripts/build.sh` (the filter and the CLI) and Envoy
(`bash scripts/setup.sh`, or ENVOY_BIN). Exit status: 0 every case did what
the engine says, 1 some did not, 2 it could not start.
"""

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "policy-tests" / "e2e"))
import e2e_lib  # noqa: E402
import examples_lib  # noqa: E402
from e2e_lib import render  # noqa: E402


def start(example, work, port):
    """Generate the PKI, start the upstream and Envoy; returns (Deployment, upstream)."""
    wasm = Path(os.environ.get("MTLS_AUTHZ_WASM") or e2e_lib.DEFAULT_WASM)
    envoy_bin = e2e_lib.envoy_binary()
    for what, path, hint in (("filter", wasm, "bash scripts/build.sh"), ("CLI", e2e_lib.CLI, "bash scripts/build.sh"),
                             ("Envoy", envoy_bin, "bash scripts/setup.sh")):
        if not path.is_file():
            raise SystemExit("run.py: no %s at %s; run %s" % (what, path, hint))
    pki_dir = work / "pki"
    examples_lib.pki.generate(examples_lib.EXAMPLES_DIR / example, pki_dir)
    upstream = e2e_lib.Upstream(work / "upstream.log").start()
    config = render.render(
        examples_lib.policy_of(example), wasm_path=str(wasm), admin=("127.0.0.1", 0),
        listeners=[render.Listener("mtls", "127.0.0.1", port),
                   render.Listener(examples_lib.CASES_LISTENER, "127.0.0.1", 0, normalize=False)],
        upstream=(upstream.host, upstream.port), policy_origin="examples/%s/policy.json" % example,
        sds_dir=str(pki_dir / "sds"), regenerate="python3 examples/run.py %s" % example)
    env = e2e_lib.Envoy(envoy_bin, work, "envoy", config)
    env.start()
    try:
        env.wait_ready()
    except (e2e_lib.EnvoyExited, TimeoutError) as e:
        upstream.stop()
        raise SystemExit("run.py: %s" % e) from None
    gw = e2e_lib.Gateway(host="127.0.0.1", port=env.listener_port("mtls"), certs=pki_dir, admin=env.admin, envoy=env)
    return examples_lib.Deployment(example, pki_dir, env, gw, env.listener_port(examples_lib.CASES_LISTENER)), upstream


def replay_all(dep):
    """Every case that names a certificate, through Envoy; prints one line each, returns the failures."""
    failed = 0
    for case in examples_lib.cases_of(dep.example):
        if "cert" not in case:
            continue
        engine = examples_lib.engine_outcome(dep, case)
        if not dep.trusts(case["cert"]):
            got = "TLS refused" if not dep.gateway.tls_attempt(dep.pki_dir / case["cert"]).got_http_response else "?"
            problems = [] if got == "TLS refused" else ["Envoy answered a certificate from an untrusted CA"]
        else:
            response = examples_lib.replay(dep, case)
            got = str(response.status)
            problems = examples_lib.mismatches(dep, case, response, engine)
        failed += bool(problems)
        policy = "%s %s" % (engine["decision"], engine["rule"] or "")
        print("%-4s %-11s %-6s %-42s %-22s policy: %-32s %s" % (
            "ok" if not problems else "FAIL", got, case["method"], case["path"][:42], case["cert"], policy,
            "; ".join(problems)))
    return failed


def curl_hint(dep):
    case = next(c for c in examples_lib.cases_of(dep.example) if "cert" in c and c["expect"] == "allow")
    p = dep.pki_dir / case["cert"]
    return "curl --cacert %s --cert %s.crt --key %s.key -X %s https://localhost:%d%s" % (
        shlex.quote(str(dep.pki_dir / "ca.crt")), shlex.quote(str(p)), shlex.quote(str(p)), case["method"],
        dep.gateway.port, shlex.quote(case["path"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("example", choices=examples_lib.EXAMPLES)
    ap.add_argument("--port", type=int, default=0, help="listener port on 127.0.0.1 (default: any free port)")
    ap.add_argument("--once", action="store_true", help="replay the cases, then stop")
    ap.add_argument("--work", type=Path, default=None,
                    help="where the PKI, configs and logs go (default: .work/examples/EXAMPLE in the checkout)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop Envoy and the upstream on `kill` too
    work = args.work or REPO / ".work" / "examples" / args.example
    work.mkdir(parents=True, exist_ok=True)
    dep, upstream = start(args.example, work, args.port)
    try:
        print("examples/%s: Envoy on https://127.0.0.1:%d (admin http://%s), certificates in %s"
              % (args.example, dep.gateway.port, dep.envoy.admin.hostport, dep.pki_dir))
        print("The cases that name a certificate, through Envoy (path normalisation off, as the engine reads them):")
        failed = replay_all(dep)
        print("%d failed" % failed if failed else "every case did what the engine says")
        print("\nBy hand:\n  %s\n  python3 examples/pki.py revoke %s CERT   # then try that certificate again"
              % (curl_hint(dep), dep.pki_dir))
        if not args.once:
            print("Envoy log: %s. Ctrl-C stops." % dep.envoy.log_path)
            while dep.envoy.running():
                time.sleep(0.5)
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    finally:
        dep.envoy.stop()
        upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
