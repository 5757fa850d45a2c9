"""The filter's and the engine's names and strings, from filter/constants.json (stdlib only).

That file is rendered from the Rust constants by filter/tests/constants.rs,
which fails when the checked-in copy is stale (rewrite it with
`MTLS_AUTHZ_WRITE_CONSTANTS=1 cargo test -p mtls-authz-filter --test constants`).
The e2e suites read names from here instead of copying them, so a rename in
Rust cannot leave a test checking a name the filter no longer uses.
"""

import json
from pathlib import Path

FILE = Path(__file__).resolve().parents[2] / "filter" / "constants.json"
DATA = json.loads(FILE.read_text())

HEADERS = DATA["headers"]  # principal, rule, dry_run, policy_revision -> header name
PRINCIPAL_HEADER = HEADERS["principal"]
RULE_HEADER = HEADERS["rule"]
DRY_RUN_HEADER = HEADERS["dry_run"]  # "deny" when a dry-run policy would have denied
REVISION_HEADER = HEADERS["policy_revision"]  # the policy's revision, when it has one
OWN_HEADERS = tuple(DATA["own_headers"])  # the headers the filter owns: a client's copies are removed
METRIC_PREFIX = DATA["metrics"]["stats_prefix"]  # "wasmcustom.mtls_authz."
COUNTERS = DATA["metrics"]["counters"]  # short name -> {"define_metric": ..., "stats": full /stats name}
# Each VM hands its summed counts to Envoy this often (filter/src/pending.rs):
# a counter shows a request up to this long after its response.
COUNTER_FLUSH_SECONDS = DATA["metrics"]["flush_period_ms"] / 1000.0
REASONS = DATA["reasons"]  # code ("path.dot_segment") -> the engine's phrase, as in the 403 body
METHOD_OVERRIDE_HEADERS = tuple(DATA["override_headers"]["method"])
PATH_OVERRIDE_HEADERS = tuple(DATA["override_headers"]["path"])
OVERRIDE_HEADERS = tuple(DATA["override_headers"]["all"])
OVERRIDE_PARAMETER = DATA["override_parameter"]


def reason(code):
    """The engine's phrase for the reason `code`; a code the engine does not have fails at import."""
    try:
        return REASONS[code]
    except KeyError:
        raise KeyError("no reason %r in %s (codes: %s)" % (code, FILE, ", ".join(sorted(REASONS)))) from None

GATEWAY = DATA["gateway"]  # per-rule / per-identity counter names, stats_tags, labels, audit filter state
