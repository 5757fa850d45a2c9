"""A policy the filter rejects stops Envoy from taking the configuration.

The filter validates the policy in on_configure and returns false on any
error; with failure_policy FAIL_CLOSED Envoy then refuses the config (at
start-up: it does not start). The log must say why, pointing at the policy
source: `mtls-authz: policy rejected: ...LINE:COL: rules[0].paths[0]: ...`.
"""

import re

import pytest

from e2e_lib import POLICY_FILE, READY_TIMEOUT, validate_config

pytestmark = pytest.mark.filter

GOOD_PATH = '"paths": ["/api/payment/create"]'
BAD_PATH = '"paths": ["api/payment/create"]'  # a path pattern must start with "/"


def broken_policy():
    """The example policy with rules[0].paths[0] made invalid; (text, line, column) of the bad value."""
    text = POLICY_FILE.read_text()
    assert text.count(GOOD_PATH) == 1, "envoy/policy.json changed shape; update this test"
    bad = text.replace(GOOD_PATH, BAD_PATH)
    offset = bad.index(BAD_PATH) + BAD_PATH.index('"api')
    line = bad.count("\n", 0, offset) + 1
    column = offset - (bad.rfind("\n", 0, offset) + 1) + 1
    return bad, line, column


def rejection_lines(log):
    return [l for l in log.splitlines() if "policy rejected" in l]


def assert_rejects_start(envoy_factory, name, text):
    env = envoy_factory.start(name, text, wait=False)
    rc = env.wait_exit(READY_TIMEOUT)
    if rc is None:
        ready = env.admin is not None or env.admin_path.exists()
        env.stop()
        pytest.fail("Envoy kept running (admin up: %s) with a policy the filter should reject; log tail:\n%s"
                    % (ready, env.log_tail()))
    assert rc != 0, "Envoy exited 0 with a broken policy"
    lines = rejection_lines(env.log_text())
    assert lines, "no 'policy rejected' in the Envoy log; tail:\n%s" % env.log_tail()
    return "\n".join(lines)


def test_invalid_path_pattern_refuses_start(envoy_factory):
    text, line, column = broken_policy()
    msg = assert_rejects_start(envoy_factory, "bad-path", text)
    assert "mtls-authz: policy rejected" in msg, msg
    m = re.search(r"(\d+):(\d+): rules\[0\]\.paths\[0\]", msg)
    assert m, "rejection lacks LINE:COL: rules[0].paths[0]: %s" % msg
    assert int(m.group(1)) == line, "error points at line %s, the bad value is on line %d: %s" % (m.group(1), line, msg)
    assert int(m.group(2)) in (column, column + 1), \
        "error points at column %s, the bad value starts at column %d: %s" % (m.group(2), column, msg)


def test_json_syntax_error_refuses_start(envoy_factory):
    text = POLICY_FILE.read_text()
    truncated = text[: text.index('"reports-read-payment"')]  # unterminated document
    msg = assert_rejects_start(envoy_factory, "bad-json", truncated)
    assert re.search(r"\d+:\d+", msg), "syntax error without line:column: %s" % msg


def test_invalid_policy_fails_validate_mode(envoy_factory, workdir):
    text, _, _ = broken_policy()
    path = workdir / "bad-policy-validate.yaml"
    path.write_text(envoy_factory.config(text))
    rc, out = validate_config(envoy_factory.envoy_bin, path)
    assert rc != 0, "envoy --mode validate accepted a broken policy:\n%s" % out[-3000:]
    assert "policy rejected" in out and "rules[0].paths[0]" in out, out[-3000:]
