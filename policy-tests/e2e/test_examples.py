"""Every example in examples/ as a deployment: its own PKI, its own Envoy, its cases on both.

For each example: its PKI recipe is generated (examples/pki.py), an Envoy is
rendered from the shared template with the example's policy and SDS-delivered
certificates, and every case that names a certificate is sent through it with
that certificate. Envoy must do what the engine says for the same certificate
and request (the reply for a denial; the path and the filter's headers the
upstream saw for a request let through), and the engine must say what the
case expects (`mtls-authz test --certs`, which also refuses a case whose
written identity differs from its certificate).
"""

import json
import subprocess
import sys

import pytest

import e2e_lib
import examples_lib
from examples_lib import EXAMPLES, Deployment

pytestmark = pytest.mark.filter

_DEPLOYMENTS = {}


@pytest.fixture
def deployment(request, envoy_factory, workdir):
    """The running Deployment of the test's `example` (one Envoy per example, started once)."""
    example = request.node.callspec.params["example"]
    if example not in _DEPLOYMENTS:
        _DEPLOYMENTS[example] = examples_lib.start(envoy_factory, workdir, example,
                                                   owner=request.node.nodeid.split("::")[0])
    dep = _DEPLOYMENTS[example]
    assert dep.envoy.running(), "the %s Envoy died; log tail:\n%s" % (example, dep.envoy.log_tail())
    return dep


def _case_params():
    out = []
    for example in EXAMPLES:
        for case in examples_lib.cases_of(example):
            if "cert" in case or case.get("no_cert"):
                out.append(pytest.param(example, case, id="%s: %s" % (example, case["name"])))
    return out


def test_every_example_is_a_deployment():
    assert len(EXAMPLES) >= 5, EXAMPLES
    for example in EXAMPLES:
        cases = examples_lib.cases_of(example)
        named = [c for c in cases if "cert" in c]
        # The story runs on real certificates, both ways in; cases may still
        # use identities no certificate of a regenerated PKI can have (a
        # pinned fingerprint).
        assert len(named) >= 8, "%s: only %d of %d cases name a certificate" % (example, len(named), len(cases))
        assert {c["expect"] for c in named} == {"allow", "deny"}, example
        assert any(c.get("no_cert") for c in cases), example


@pytest.mark.parametrize("example", EXAMPLES)
def test_engine_on_the_real_certificates_agrees_with_the_cases(example, deployment: Deployment):
    r = examples_lib.run_cli("test", "--certs", deployment.pki_dir, deployment.policy_file,
                             examples_lib.EXAMPLES_DIR / example / "cases.json")
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    assert out.strip().splitlines()[-1].endswith(" passed, 0 failed"), out


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_drifted_identity_is_refused(example, deployment: Deployment, tmp_path):
    """The check behind the previous test can fail: change one written field of a named case."""
    doc = json.loads((examples_lib.EXAMPLES_DIR / example / "cases.json").read_text())
    case = next(c for c in doc["cases"] if "cert" in c)
    field = next(f for f in case["identity"] if f not in ("serial", "sha256", "ip_san"))
    case["identity"][field] = ["drifted"] if isinstance(case["identity"][field], list) else "drifted"
    doc["cases"] = [case]
    drifted = tmp_path / "cases.json"
    drifted.write_text(json.dumps(doc))
    r = examples_lib.run_cli("test", "--certs", deployment.pki_dir, deployment.policy_file, drifted)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2 and "differs from certificate %s: %s" % (case["cert"], field) in err, err
    r = examples_lib.run_cli("test", deployment.policy_file, drifted)  # without --certs the fields are used
    assert r.returncode in (0, 1), r.stderr.decode(errors="replace")


@pytest.mark.parametrize("example,case", _case_params())
def test_case_through_envoy(example, case, deployment: Deployment):
    engine = examples_lib.engine_outcome(deployment, case)
    if case.get("no_cert"):
        # Envoy requires a client certificate: the connection ends in the
        # handshake, before the filter (which would deny it) is reached.
        assert engine["decision"] == "deny"
        attempt = deployment.gateway.tls_attempt(None, port=deployment.cases_port)
        assert not attempt.got_http_response, attempt
        return
    if not deployment.trusts(case["cert"]):
        # A CA Envoy does not trust: refused in the handshake; the engine,
        # which never sees such a certificate in Envoy, denies it by policy.
        assert engine["enforced"] == "deny"
        attempt = deployment.gateway.tls_attempt(deployment.pki_dir / case["cert"], port=deployment.cases_port)
        assert not attempt.got_http_response, attempt
        return
    response = examples_lib.replay(deployment, case)
    problems = examples_lib.mismatches(deployment, case, response, engine)
    assert not problems, "%s %s with %s: %s" % (case["method"], case["path"], case["cert"], "; ".join(problems))


FLEET = 1000  # devices minted
SAMPLE = 25  # of them, sent through Envoy (a bounded loop)


def test_iot_fleet_distribution_each_device_reaches_only_its_own_path(envoy_factory, workdir, request):
    """examples/iot-fleet: mint a fleet of per-device certificates by script, then
    send a spread-out sample of them through Envoy, each to its own {cn} path and
    to a neighbour's."""
    pki_dir = examples_lib.generate_pki(workdir / "fleet", "iot-fleet", fleet=FLEET)
    state = examples_lib.pki.load_state(pki_dir)
    devices = sorted(p.stem for p in (pki_dir / "fleet").glob("*.crt"))
    assert len(devices) == FLEET and state["fleet"]["count"] == FLEET, len(devices)
    e2e_lib.report(request, "iot-fleet: %d device certificates (key + certificate each) minted in %.1f s"
                   % (FLEET, state["fleet"]["seconds"]))
    dep = examples_lib.start(envoy_factory, workdir, "iot-fleet", pki_dir=pki_dir)
    sample = devices[:: FLEET // SAMPLE][:SAMPLE]
    for i, device in enumerate(sample):
        stem = pki_dir / "fleet" / device
        own = dep.gateway.request(stem, "POST", "/devices/%s/telemetry" % device, body=b"{}")
        assert own.status == 200, (device, str(own))
        assert own.upstream_headers(e2e_lib.PRINCIPAL_HEADER) == ["cn=%s" % device], own.echo
        assert own.upstream_headers(e2e_lib.RULE_HEADER) == ["device-posts-own-telemetry"]
        neighbour = sample[(i + 1) % len(sample)]
        other = dep.gateway.request(stem, "POST", "/devices/%s/telemetry" % neighbour, body=b"{}")
        assert other.status == 403, (device, neighbour, str(other))


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_one_command_that_runs_an_example_by_hand(example, tmp_path):
    """`python3 examples/run.py EXAMPLE --once`, as the README says (without --once it stays up for curl).
    Its files go to a scratch directory, so this also runs from a read-only checkout (the compose tests service)."""
    r = subprocess.run([sys.executable, str(examples_lib.EXAMPLES_DIR / "run.py"), example, "--once",
                        "--work", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0 and "every case did what the engine says" in out, out[-4000:]
    assert "curl --cacert" in out, out[-2000:]
