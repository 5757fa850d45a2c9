"""The reasons the e2e suites expect are the engine's own, from filter/constants.json.

That file is rendered from the Rust source (filter/tests/constants.rs fails when
it is stale); these checks make sure the Python side takes its reasons from it
rather than from a string typed here.
"""

import bypass_cases as bc
from filter_constants import REASONS


def test_every_r_constant_is_an_engine_reason():
    r_constants = {name: value for name, value in vars(bc).items() if name.startswith("R_")}
    assert len(r_constants) >= 20, "bypass_cases has only %d R_* constants" % len(r_constants)
    unknown = {name: value for name, value in r_constants.items() if value not in REASONS.values()}
    assert not unknown, "R_* constants that are not a reason in filter/constants.json: %s" % unknown


def test_every_denied_case_expects_an_engine_reason():
    """A reason written into a case directly, not through an R_* constant, must be the engine's too."""
    expected = [(c.name, listener, c.expect(listener).reason) for c in bc.CASES for listener in bc.LISTENERS
                if c.expect(listener).kind == "deny"]
    assert len(expected) >= 100, "only %d deny expectations" % len(expected)
    unknown = [e for e in expected if e[2] not in REASONS.values()]
    assert not unknown, "cases expecting a reason the engine does not give: %s" % unknown
