//! filter/constants.json is rendered from the Rust that defines each name.
//!
//! The e2e suites (policy-tests/e2e) and bench need the filter's upstream
//! header names, its metric names, the engine's reason phrases and its
//! override-header lists. They read them from that file instead of copying
//! the strings, so a rename in Rust cannot leave a Python check matching a
//! name the filter no longer uses. This test renders the file from the
//! constants themselves and fails when the checked-in copy differs; with
//! `MTLS_AUTHZ_WRITE_CONSTANTS=1` it rewrites the file instead.
//!
//! It lives in the filter crate because only this crate sees both the
//! filter's names (headers, metrics) and the engine's (reasons, overrides).

use std::collections::BTreeMap;
use std::path::PathBuf;

use mtls_authz_filter::host::{Metric, ENVOY_STATS_PREFIX};
use mtls_authz_filter::http::{DRY_RUN_HEADER, OWN_HEADERS, PRINCIPAL_HEADER, REVISION_HEADER, RULE_HEADER};
use mtls_authz_filter::pending::FLUSH_PERIOD_MS;
use mtls_authz_policy::overrides::{METHOD_OVERRIDE_HEADERS, OVERRIDE_HEADERS, OVERRIDE_PARAMETER, PATH_OVERRIDE_HEADERS};
use mtls_authz_policy::Reason;
use mtls_authz_policy::{audit, limits, metrics};
use serde::Serialize;

const WRITE_VAR: &str = "MTLS_AUTHZ_WRITE_CONSTANTS";
const REWRITE: &str = "MTLS_AUTHZ_WRITE_CONSTANTS=1 cargo test -p mtls-authz-filter --test constants";

/// The file's shape. Structs and `BTreeMap`s, not `serde_json::Value`: the
/// key order must not depend on whether some crate in the build turned on
/// serde_json's `preserve_order`.
#[derive(Serialize)]
struct Constants {
    #[serde(rename = "_generated")]
    generated: String,
    /// The headers the filter sets on the upstream request (and the 403).
    headers: Headers,
    /// The headers the filter owns: a client's copies are always removed.
    own_headers: Vec<&'static str>,
    metrics: Metrics,
    /// [`Reason::as_str`] by [`Reason::code`], every reason the engine gives.
    reasons: BTreeMap<&'static str, &'static str>,
    override_headers: OverrideHeaders,
    /// The parameter (query or body) that asks for another method.
    override_parameter: &'static str,
    /// Per-rule and per-identity counters, limits and the audit log.
    gateway: Gateway,
}

#[derive(Serialize)]
struct Gateway {
    /// Stat name prefixes (before Envoy's `wasmcustom.`), then the label, then a suffix.
    rule_prefix: &'static str,
    identity_prefix: &'static str,
    /// By count name: the last part of the stat name (`requests_allowed`).
    suffixes: Vec<&'static str>,
    /// `stats_config.stats_tags` for the bootstrap: tag name -> regex.
    stats_tags: BTreeMap<&'static str, &'static str>,
    /// The labels that are not names.
    labels: BTreeMap<&'static str, &'static str>,
    /// The audit record's filter state, as the access log names it.
    audit_filter_state: String,
    /// The 429 body when the policy hides details.
    rate_limited_minimal_body: &'static str,
}

#[derive(Serialize)]
struct Headers {
    principal: &'static str,
    rule: &'static str,
    dry_run: &'static str,
    policy_revision: &'static str,
}

#[derive(Serialize)]
struct Metrics {
    /// What every counter's `stats` name starts with: Envoy's prefix and the filter's namespace.
    stats_prefix: String,
    /// By short name (`requests_allowed`): the name given to `define_metric`
    /// and the full name in Envoy's `/stats`.
    counters: BTreeMap<&'static str, Counter>,
    /// A VM hands its counts to Envoy this often: a counter can show a
    /// request this much later than its response.
    flush_period_ms: u32,
}

#[derive(Serialize)]
struct Counter {
    define_metric: &'static str,
    stats: String,
}

#[derive(Serialize)]
struct OverrideHeaders {
    method: Vec<&'static str>,
    path: Vec<&'static str>,
    all: Vec<&'static str>,
}

fn render() -> Result<String, String> {
    let mut namespace = None;
    let mut counters = BTreeMap::new();
    for metric in Metric::ALL {
        let name = metric.name();
        let (ns, short) = name.split_once('.').ok_or(format!("metric {name:?} has no namespace"))?;
        if *namespace.get_or_insert(ns) != ns {
            return Err(format!("metric {name:?} is not under {namespace:?}: one stats_prefix no longer fits every counter"));
        }
        let counter = Counter { define_metric: name, stats: format!("{ENVOY_STATS_PREFIX}{name}") };
        if counters.insert(short, counter).is_some() {
            return Err(format!("two metrics have the short name {short:?}"));
        }
    }
    let mut reasons = BTreeMap::new();
    for reason in Reason::all() {
        if reasons.insert(reason.code(), reason.as_str()).is_some() {
            return Err(format!("two reasons have the code {:?}", reason.code()));
        }
    }
    let constants = Constants {
        generated: format!("Generated from the Rust source by filter/tests/constants.rs; do not edit. Rewrite: {REWRITE}"),
        headers: Headers { principal: PRINCIPAL_HEADER, rule: RULE_HEADER, dry_run: DRY_RUN_HEADER, policy_revision: REVISION_HEADER },
        own_headers: OWN_HEADERS.to_vec(),
        metrics: Metrics {
            stats_prefix: format!("{ENVOY_STATS_PREFIX}{}.", namespace.unwrap_or_default()),
            counters,
            flush_period_ms: FLUSH_PERIOD_MS,
        },
        reasons,
        override_headers: OverrideHeaders {
            method: METHOD_OVERRIDE_HEADERS.to_vec(),
            path: PATH_OVERRIDE_HEADERS.to_vec(),
            all: OVERRIDE_HEADERS.to_vec(),
        },
        override_parameter: OVERRIDE_PARAMETER,
        gateway: Gateway {
            rule_prefix: metrics::RULE_PREFIX,
            identity_prefix: metrics::IDENTITY_PREFIX,
            suffixes: metrics::Count::ALL.iter().map(|c| c.suffix()).collect(),
            stats_tags: metrics::TAG_EXTRACTORS.into_iter().collect(),
            labels: [
                ("no_rule_default", metrics::NO_RULE_DEFAULT),
                ("no_rule_refused", metrics::NO_RULE_REFUSED),
                ("identity_none", metrics::IDENTITY_NONE),
                ("identity_other", metrics::IDENTITY_OTHER),
            ]
            .into_iter()
            .collect(),
            audit_filter_state: format!("wasm.{}", audit::FILTER_STATE),
            rate_limited_minimal_body: std::str::from_utf8(limits::MINIMAL_BODY).map_err(|e| e.to_string())?,
        },
    };
    serde_json::to_string_pretty(&constants).map(|s| s + "\n").map_err(|e| e.to_string())
}

fn file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("constants.json")
}

/// The first line where `want` and `got` differ, both sides, for the failure message.
fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for n in 1.. {
        match (w.next(), g.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => return format!("line {n}: generated {:?}, checked in {:?}", a.unwrap_or("<end>"), b.unwrap_or("<end>")),
        }
    }
    "only in line endings".to_owned()
}

#[test]
fn constants_json_is_generated_from_the_rust_source() {
    let want = render().unwrap();
    let path = file();
    if std::env::var_os(WRITE_VAR).is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "{} is not what the Rust source says ({}).\nRegenerate it with: {REWRITE}\nand commit it with the Rust change.",
        path.display(),
        first_difference(&want, &got),
    );
}

#[test]
fn the_file_has_every_header_metric_reason_and_override_header() {
    // Catches a renderer that drops a section, which comparing the file with
    // itself after a rewrite would not.
    let v: serde_json::Value = serde_json::from_str(&render().unwrap()).unwrap();
    assert_eq!(v["headers"]["principal"], mtls_authz_policy::principal::HEADER);
    assert_eq!(v["own_headers"].as_array().map(Vec::len), Some(OWN_HEADERS.len()));
    for metric in Metric::ALL {
        let short = metric.name().trim_start_matches("mtls_authz.");
        assert_eq!(v["metrics"]["counters"][short]["stats"], format!("wasmcustom.{}", metric.name()), "{metric:?}");
    }
    assert_eq!(v["metrics"]["stats_prefix"], "wasmcustom.mtls_authz.");
    assert_eq!(v["metrics"]["flush_period_ms"], FLUSH_PERIOD_MS);
    let reasons = v["reasons"].as_object().unwrap();
    assert_eq!(reasons.len(), Reason::all().count());
    for reason in Reason::all() {
        assert_eq!(reasons[reason.code()], reason.as_str(), "{reason:?}");
    }
    assert_eq!(v["override_headers"]["all"].as_array().map(Vec::len), Some(OVERRIDE_HEADERS.len()));
}
