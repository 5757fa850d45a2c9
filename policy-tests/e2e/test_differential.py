"""The differential suite (policy-tests/differential/): the short variant of
the generated paths through `mtls-authz path` under every profile and through
the real backends (Python, Express 4 and 5, java.net.URI, Tomcat, Go, Envoy);
fails on any path a profile accepts whose engine `decoded` differs from the
reading of a backend the profile is declared safe for (safety.py, README).

A backend whose toolchain is missing fails the suite on CI (CI=true) and is
skipped, with the reason, elsewhere. The figures go to
<basetemp>/differential/figures.txt (.work/e2e/... under scripts/test.sh).
"""

import os
import sys
from pathlib import Path

import pytest

POLICY_TESTS = Path(__file__).resolve().parents[1]
if str(POLICY_TESTS) not in sys.path:
    sys.path.insert(0, str(POLICY_TESTS))
from differential import engine, harness  # noqa: E402  (policy-tests/differential)


@pytest.fixture(scope="module")
def differential(request, envoy_bin, workdir):
    cli = engine.cli_path()
    if not cli.is_file():
        pytest.fail("mtls-authz CLI not found at %s: %s" % (cli, engine.CLI_HINT), pytrace=False)
    out = workdir / "differential"
    result = harness.run(workdir=out, envoy=envoy_bin, cli=cli, log=lambda m: None)
    figures = harness.report(result, max_print=200)
    (out / "figures.txt").write_text(figures + "\n")
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if tr is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            tr.write_line("\ndifferential: %d paths, %d sent to %d backend readings, %d disagreements (+%d known), "
                          "%d backends missing; %.1fs (figures: %s)" % (
                              len(result.corpus), len(result.sent), len(result.readings), len(result.disagreements),
                              len(result.known), len(result.missing), result.timings["total"], out / "figures.txt"))
    return result, figures


def test_every_backend_ran(differential):
    result, _ = differential
    if result.missing:
        why = "; ".join("%s: %s" % kv for kv in sorted(result.missing.items()))
        if harness.on_ci():
            pytest.fail("backends missing on CI: %s" % why, pytrace=False)
        pytest.skip("backends missing (the other backends still ran): %s" % why)


def test_backends_read_the_classic_tricks_as_known(differential):
    """Each backend is live and reads with its own rules (a backend answering
    something else than its reading would make the suite vacuous)."""
    result, _ = differential
    wrong = harness.check_probes(result.probe_readings)
    assert not wrong, "\n".join("%r: %s read %s, expected %s" % w for w in wrong)


def test_every_backend_serves_what_strict_accepts(differential):
    """A backend that is down or misrouted refuses everything; refusals are
    not disagreements, so that would pass unnoticed without this."""
    result, _ = differential
    low = harness.underserving(result)
    assert not low, low


def test_engine_decoded_equals_every_declared_backend(differential):
    result, figures = differential
    assert result.readings, "no backend ran"
    if result.disagreements:
        lines = harness.grouped(result.disagreements)
        shown = "\n".join("  %s" % line for line in lines[:200])
        more = len(lines) - 200
        pytest.fail("%d disagreements (path [family]: engine decoded under profiles; backends read):\n%s%s\n\n%s"
                    % (len(result.disagreements), shown, "\n  ... and %d more" % more if more > 0 else "", figures),
                    pytrace=False)


def test_known_disagreements_still_occur(differential):
    """safety.KNOWN lists disagreements reported and not yet resolved; one that
    no longer occurs (the engine was fixed, the declaration narrowed) must go."""
    result, _ = differential
    stale = result.stale_known()
    assert not stale, "no longer occurs, remove from safety.KNOWN: %s" % "; ".join(k.why for k in stale)


def test_short_variant_is_short(differential):
    result, _ = differential
    # CI budget: the short variant must stay a few thousand paths (~2 minutes at most on 2 cores).
    assert 2000 <= len(result.corpus) <= 6000, len(result.corpus)
    assert result.timings["total"] < float(os.environ.get("DIFFERENTIAL_TIME_BUDGET", "120")), result.timings
