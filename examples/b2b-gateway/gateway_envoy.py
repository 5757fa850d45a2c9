"""Add the partner-gateway parts to an Envoy config rendered by envoy/render.py.

    python3 examples/b2b-gateway/gateway_envoy.py --out examples/b2b-gateway/envoy.yaml

writes the example's config: envoy/render.py's, with the policy
examples/b2b-gateway/policy.json, and

* `stats_config.stats_tags`: the regexes that turn the filter's per-rule and
  per-identity stat names into the labels `rule` and `identity` of
  /stats/prometheus (from filter/constants.json, generated from the Rust);
* an access log writing the filter's audit record, one JSON object a line
  (`%FILTER_STATE(wasm.mtls_authz.audit:PLAIN)%`), only for requests that
  have one;
* Envoy's own `local_ratelimit` after the filter, keyed on the partner
  name the filter publishes as filter state `wasm.mtls_authz.o`: a second,
  native quota per partner (the policy's `limits` are the first).

The end-to-end suite (policy-tests/e2e/test_b2b_gateway.py) runs the same
function with its own ports and certificates, and checks that the committed
envoy.yaml is what this script writes.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "envoy"))
import render  # noqa: E402

CONSTANTS = json.loads((REPO / "filter" / "constants.json").read_text())["gateway"]
AUDIT_STATE = CONSTANTS["audit_filter_state"]
# The filter state the policy publishes (its "filter_state": ["principal", "rule", "o"]).
PARTNER_STATE = "wasm.mtls_authz.o"

# Native quotas: partner (the O the filter publishes) -> (requests, per seconds).
# Partners not listed share the filter-wide bucket below.
QUOTAS = {"Globex Corporation": (100, 60), "Initech": (100, 60)}
DEFAULT_BUCKET = (1000, 1)

HTTP_FILTERS_ANCHOR = "          - name: envoy.filters.http.router\n"
HCM_ANCHOR = "          codec_type: AUTO\n"


def _stats_config():
    lines = ["", "# Per-rule and per-identity labels: the filter writes the rule or the", "# caller into the stat name; these cut it out as a tag.", "stats_config:", "  stats_tags:"]
    for tag, regex in sorted(CONSTANTS["stats_tags"].items()):
        lines += ["  - tag_name: %s" % tag, "    regex: '%s'" % regex]
    return "\n".join(lines) + "\n"


def _access_log(path):
    return """          # The filter's audit record, one JSON object a line, for requests that have one
          # (the policy's audit_log says which). The record is made by serde_json in the
          # engine: certificate and request content are escaped inside its strings.
          access_log:
          - name: envoy.access_loggers.file
            filter:
              extension_filter:
                name: envoy.access_loggers.extension_filters.cel
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                  expression: "size(filter_state['%(state)s']) > 0"
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %(path)s
              log_format:
                text_format_source:
                  inline_string: "%%FILTER_STATE(%(state)s:PLAIN)%%\\n"
""" % {"state": AUDIT_STATE, "path": render.yaml_quote(path)}


def _local_ratelimit(quotas, default_bucket):
    out = """          # Envoy's native local rate limit, keyed on the partner the filter names
          # (filter state %(state)s, set only on requests the policy allows). Per
          # Envoy instance, like the policy's limits; for one quota across a fleet use
          # envoy.filters.http.ratelimit with a rate limit service and the same
          # descriptor (examples/b2b-gateway/README.md).
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: partner_quota
              token_bucket: { max_tokens: %(dmax)d, tokens_per_fill: %(dmax)d, fill_interval: %(dfill)ds }
              filter_enabled:
                default_value: { numerator: 100, denominator: HUNDRED }
              filter_enforced:
                default_value: { numerator: 100, denominator: HUNDRED }
              response_headers_to_add:
              - header: { key: x-partner-quota, value: exceeded }
                append_action: OVERWRITE_IF_EXISTS_OR_ADD
              rate_limits:
              - actions:
                - extension:
                    name: envoy.rate_limit_descriptors.expr
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor
                      descriptor_key: partner
                      text: "filter_state['%(state)s']"
                      skip_if_error: true
              descriptors:
""" % {"state": PARTNER_STATE, "dmax": default_bucket[0], "dfill": default_bucket[1]}
    for partner, (requests, seconds) in sorted(quotas.items()):
        out += """              - entries: [{ key: partner, value: %s }]
                token_bucket: { max_tokens: %d, tokens_per_fill: %d, fill_interval: %ds }
""" % (render.yaml_quote(partner), requests, requests, seconds)
    return out


def add_gateway(config, *, audit_log="/dev/stdout", quotas=None, default_bucket=DEFAULT_BUCKET):
    """`config` (render.render's output) with stats tags, the audit access log and local_ratelimit."""
    if config.count(HTTP_FILTERS_ANCHOR) < 1 or config.count(HCM_ANCHOR) < 1:
        raise ValueError("not a config from envoy/render.py: no router filter or HTTP connection manager found")
    config = config.replace(HCM_ANCHOR, HCM_ANCHOR + _access_log(audit_log))
    config = config.replace(HTTP_FILTERS_ANCHOR, _local_ratelimit(QUOTAS if quotas is None else quotas, default_bucket)
                            + HTTP_FILTERS_ANCHOR)
    return config.rstrip("\n") + "\n" + _stats_config()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="-", help="output file, - for stdout")
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from the rendering")
    args = ap.parse_args(argv)
    policy = (HERE / "policy.json").read_text()
    config = add_gateway(render.render(policy, policy_origin="examples/b2b-gateway/policy.json",
                                       regenerate="python3 examples/b2b-gateway/gateway_envoy.py --out examples/b2b-gateway/envoy.yaml"))
    if args.check:
        same = Path(args.out).read_text() == config
        print("%s: %s" % (args.out, "in sync" if same else "differs; regenerate it"))
        return 0 if same else 1
    if args.out == "-":
        sys.stdout.write(config)
    else:
        Path(args.out).write_text(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
