//! The mtls-authz engine in the browser, through `wasm-bindgen`.
//!
//! Every function takes and returns JSON text, so the page needs no bindings
//! beyond strings, and every answer comes from the engine crate: loading and
//! its error positions ([`mtls_authz_policy::load`]), certificate parsing
//! ([`Identity::from_pem_or_der`]), typed identity fields
//! ([`IdentityFields`]), the decision and what Envoy does with it
//! ([`outcome_view::explain`]), path reading ([`PathReport`]) and the matrix
//! and its diff ([`mtls_authz_policy::matrix`]). This crate decides nothing
//! itself: it is the filter's engine with a JSON face, so the page shows what
//! the filter enforces, and what `mtls-authz matrix` and `diff` print.

use mtls_authz_policy::identity_json::IdentityFields;
use mtls_authz_policy::load::{self, LoadErrorKind};
use mtls_authz_policy::matrix::{Axes, Diff, Endpoint, Extra, IdentityKind, Matrix, MatrixIdentity, Shown, Window};
use mtls_authz_policy::outcome_view;
use mtls_authz_policy::reading::PathReport;
use mtls_authz_policy::Policy;
use mtls_authz_policy::{CompiledPolicy, Identity, IdentityView, PrincipalFormat, RequestParts};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::wasm_bindgen;

/// Who is calling, as the page sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum CallerSpec {
    /// A PEM certificate, as pasted or dropped.
    Pem(String),
    /// Identity fields, as typed (the test-case `identity` format).
    Fields(Box<IdentityFields>),
}

/// What the page adds to a matrix's axes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtraSpec {
    #[serde(default)]
    identities: Vec<CallerSpec>,
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    /// The part of a large matrix the page draws; absent: all of it.
    #[serde(default)]
    window: Option<Window>,
}

/// A caller read from the page: the identity, its validity window when known, and how it was given.
struct Caller {
    identity: Identity,
    not_before: Option<i64>,
    not_after: Option<i64>,
    kind: IdentityKind,
}

fn caller(spec: CallerSpec) -> Result<Caller, String> {
    match spec {
        CallerSpec::Pem(text) => Identity::from_pem_or_der(text.as_bytes())
            .map(|identity| Caller {
                not_before: Some(identity.not_before),
                not_after: Some(identity.not_after),
                identity,
                kind: IdentityKind::Certificate,
            })
            .map_err(|e| format!("cannot read certificate: {e}")),
        CallerSpec::Fields(fields) => {
            let (identity, not_before, not_after) = (*fields).into_identity();
            Ok(Caller { identity, not_before, not_after, kind: IdentityKind::Fields })
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
}

fn compile(policy: &str) -> Result<CompiledPolicy, Value> {
    load::load("policy", policy.as_bytes()).map_err(|e| match e.kind {
        LoadErrorKind::Invalid(errors) => json!({"ok": false, "errors": errors.0}),
        LoadErrorKind::NotText { line, column, .. } => {
            json!({"ok": false, "errors": [{"line": line, "column": column, "path": "", "message": "policy is not UTF-8 text"}]})
        }
    })
}

/// The axes of these policies with the page's additions, windowed when the page asks.
fn axes(policies: &[&Policy], spec: &str) -> Result<(Axes, Option<Shown>), String> {
    let spec: ExtraSpec = if spec.trim().is_empty() { ExtraSpec::default() } else { parse("matrix inputs", spec)? };
    let mut identities = Vec::new();
    for c in spec.identities {
        let c = caller(c)?;
        identities.push(MatrixIdentity::user(c.kind, c.identity));
    }
    let endpoints = spec.endpoints.iter().map(|e| Endpoint::parse(e)).collect::<Result<Vec<_>, _>>()?;
    let mut axes = Axes::for_policies(policies, &Extra { identities, endpoints, methods: spec.methods });
    let shown = spec.window.as_ref().map(|w| axes.window(w));
    Ok((axes, shown))
}

fn error(message: String) -> Value {
    json!({"ok": false, "error": message})
}

/// `{"ok": true, "rules": N, "revision": …}` or `{"ok": false, "errors": [{line, column, path, message}]}`.
pub fn validate_json(policy: &str) -> Value {
    match compile(policy) {
        Ok(p) => json!({"ok": true, "rules": p.policy().rules.len(), "revision": p.revision(), "mode": p.mode()}),
        Err(errors) => errors,
    }
}

/// Every field the filter would see for a caller (`{"pem": …}` or `{"fields": {…}}`),
/// the row label the matrix gives it, and the principal header the upstream gets.
pub fn identity_json(caller_spec: &str) -> Value {
    match parse::<CallerSpec>("caller", caller_spec).and_then(caller) {
        Ok(c) => {
            let view = IdentityView::new(&c.identity, c.not_before, c.not_after);
            json!({
                "ok": true,
                "kind": c.kind,
                "label": MatrixIdentity::user(c.kind, c.identity.clone()).label,
                "principal": c.identity.upstream_principal(PrincipalFormat::Typed),
                // As `explain` prints them: in the order people look for them, `-` for none.
                "rows": view.rows(),
                "identity": view,
            })
        }
        Err(e) => error(e),
    }
}

/// The decision for one request (caller `null` = no certificate), what Envoy
/// does with it, and how the path reads under the policy.
pub fn decide_json(policy: &str, caller_spec: &str, method: &str, target: &str) -> Value {
    let policy = match compile(policy) {
        Ok(p) => p,
        Err(errors) => return errors,
    };
    let caller = match parse::<Option<CallerSpec>>("caller", caller_spec).and_then(|c| c.map(caller).transpose()) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let identity = caller.as_ref().map(|c| &c.identity);
    let request = RequestParts { method, target, headers: &[], body: None };
    let (decision, outcome) = outcome_view::explain(&policy, identity, &request);
    json!({
        "ok": true,
        "decision": decision.verdict,
        "enforced": decision.enforced,
        "rule": decision.rule,
        "reason": decision.reason.as_str(),
        "outcome": outcome,
        "reading": PathReport::new(target, &policy.policy().path_reading),
    })
}

/// The access matrix of a policy over its axes and the page's additions.
pub fn matrix_json(policy: &str, extra_spec: &str) -> Value {
    let policy = match compile(policy) {
        Ok(p) => p,
        Err(errors) => return errors,
    };
    match axes(&[policy.policy()], extra_spec) {
        Ok((axes, shown)) => with_shown(matrix_value(&Matrix::compute(&policy, &axes)), shown),
        Err(e) => error(e),
    }
}

fn with_shown(mut v: Value, shown: Option<Shown>) -> Value {
    if let (Some(o), Some(shown)) = (v.as_object_mut(), shown) {
        o.insert("shown".into(), json!(shown));
    }
    v
}

fn matrix_value(m: &Matrix) -> Value {
    match serde_json::to_value(m) {
        Ok(Value::Object(mut o)) => {
            o.insert("ok".into(), Value::Bool(true));
            Value::Object(o)
        }
        _ => error("the matrix could not be serialised".into()),
    }
}

/// Both versions' matrices over the same axes, and the cells that flip.
pub fn diff_json(old: &str, new: &str, extra_spec: &str) -> Value {
    let (old, new) = match (compile(old), compile(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) => return json!({"ok": false, "which": "old", "errors": e["errors"]}),
        (_, Err(e)) => return json!({"ok": false, "which": "new", "errors": e["errors"]}),
    };
    match axes(&[old.policy(), new.policy()], extra_spec) {
        Ok((axes, shown)) => {
            let diff = Diff::over(&old, &new, &axes);
            json!({
                "ok": true,
                "old": matrix_value(&diff.old),
                "new": with_shown(matrix_value(&diff.new), shown),
                "flips": diff.flips,
                "rule_changes": diff.rule_changes,
            })
        }
        Err(e) => error(e),
    }
}

/// A `cases.json` for the cells picked by index (`null`: every cell) of the
/// matrix the page shows: `policy`'s, or with a `proposal` (non-empty), the
/// proposal's over both versions' axes, as in [`diff_json`], so indices agree.
pub fn cases_json(policy: &str, proposal: &str, extra_spec: &str, selected: &str) -> Value {
    let old = match compile(policy) {
        Ok(p) => p,
        Err(errors) => return errors,
    };
    let new = match proposal.trim() {
        "" => None,
        _ => match compile(proposal) {
            Ok(p) => Some(p),
            Err(errors) => return errors,
        },
    };
    let selected = match parse::<Option<Vec<usize>>>("selected cells", selected) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let (shown_policy, policies) = match &new {
        None => (&old, vec![old.policy()]),
        Some(new) => (new, vec![old.policy(), new.policy()]),
    };
    match axes(&policies, extra_spec) {
        Ok((axes, _)) => Matrix::compute(shown_policy, &axes).cases(selected.as_deref()),
        Err(e) => error(e),
    }
}

#[wasm_bindgen]
pub fn validate(policy: &str) -> String {
    validate_json(policy).to_string()
}

#[wasm_bindgen]
pub fn identity(caller_spec: &str) -> String {
    identity_json(caller_spec).to_string()
}

#[wasm_bindgen]
pub fn decide(policy: &str, caller_spec: &str, method: &str, target: &str) -> String {
    decide_json(policy, caller_spec, method, target).to_string()
}

#[wasm_bindgen]
pub fn matrix(policy: &str, extra_spec: &str) -> String {
    matrix_json(policy, extra_spec).to_string()
}

#[wasm_bindgen]
pub fn diff(old: &str, new: &str, extra_spec: &str) -> String {
    diff_json(old, new, extra_spec).to_string()
}

#[wasm_bindgen]
pub fn cases(policy: &str, proposal: &str, extra_spec: &str, selected: &str) -> String {
    cases_json(policy, proposal, extra_spec, selected).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"version": 1, "default_action": "deny", "rules": [
  {"name": "orders", "action": "allow", "principals": [{"cn": "order-service"}],
   "paths": ["/api/payment/create"], "methods": ["POST"]}]}"#;

    #[test]
    fn errors_carry_the_engines_line_column_and_path() {
        let v = validate_json(&POLICY.replace(r#""POST""#, r#""post""#));
        assert_eq!(v["ok"], false);
        let e = &v["errors"][0];
        assert_eq!((e["line"].as_u64(), e["path"].as_str()), (Some(3), Some("rules[0].methods[0]")));
        assert_eq!(validate_json(POLICY)["rules"], 1);
    }

    #[test]
    fn a_decision_comes_with_what_envoy_does() {
        let me = r#"{"fields": {"cn": "order-service"}}"#;
        let allowed = decide_json(POLICY, me, "POST", "/api/payment/create?x=1");
        assert_eq!((allowed["decision"].as_str(), allowed["rule"].as_str()), (Some("allow"), Some("orders")));
        assert!(allowed["outcome"]["upstream_headers"].to_string().contains("cn=order-service"));
        let denied = decide_json(POLICY, "null", "POST", "/api/payment/create");
        assert_eq!(denied["outcome"]["response"]["status"], 403);
        assert_eq!(decide_json(POLICY, me, "GET", "/a/%2e%2e/b")["reading"]["accepted"], false);
    }

    #[test]
    fn bad_inputs_are_answers_not_panics() {
        assert_eq!(identity_json(r#"{"pem": "hello"}"#)["ok"], false);
        assert_eq!(identity_json("{")["ok"], false);
        assert_eq!(matrix_json(POLICY, r#"{"endpoints": ["nope"]}"#)["ok"], false);
        assert_eq!(diff_json(POLICY, "{}", "")["which"], "new");
        assert_eq!(cases_json(POLICY, "", "", "[99]")["cases"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn the_matrix_is_the_engines() {
        let m = matrix_json(POLICY, r#"{"identities": [{"fields": {"cn": "report-service"}}]}"#);
        let policy = CompiledPolicy::from_json(POLICY).unwrap();
        let report = Identity { common_names: vec!["report-service".into()], ..Identity::default() };
        let extra = Extra { identities: vec![MatrixIdentity::user(IdentityKind::Fields, report)], ..Extra::default() };
        let expected = Matrix::compute(&policy, &Axes::for_policies(&[policy.policy()], &extra));
        assert_eq!(m["cells"], serde_json::to_value(&expected.cells).unwrap());
        assert_eq!(m["identities"][0]["label"], "cn=report-service", "the user's rows come first");
    }

    #[test]
    fn a_window_cuts_the_matrix_and_says_how_much_there_was() {
        let m = matrix_json(POLICY, r#"{"window": {"rows": "", "columns": "", "max_rows": 0, "max_columns": 5}}"#);
        assert_eq!(m["cells"].as_array().map(Vec::len), Some(0));
        assert_eq!(m["shown"]["matching_identities"], 1);
    }
}
