//! The test-cases format for `mtls-authz test`, and its loader.
//!
//! A policy is code that decides who reaches what, so it deserves tests that
//! run in CI like any other code (the idea of `opa test` and Cedar's test
//! runner). A case names a caller, a request, and the expected answer. Callers
//! are usually written as identity fields rather than certificates, so test
//! suites can be committed without private keys.
//!
//! The loader is strict because a typo in a test must not make it vacuous:
//! unknown fields are errors, every case needs exactly one caller, names are
//! unique, and every problem is reported with `FILE:LINE:COL` before any case
//! runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mtls_authz_policy::Verdict;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::identity_input::{load_cert_file, Caller, IdentityFields};
use crate::input::{self, InputError};

/// Shown by `mtls-authz test --help`; keep in step with examples/README.md.
pub const FORMAT_HELP: &str = r#"CASES.json format:

  {"description": "optional",
   "cases": [
     {"name": "orders may create payments",
      "identity": {"cn": "order-service", "o": ["shop"]},
      "method": "POST", "path": "/api/payment/create",
      "expect": "allow", "rule": "orders-create-payment"},
     {"name": "no certificate, no entry",
      "no_cert": true, "method": "GET", "path": "/api/payment/query",
      "expect": "deny", "rule": null, "reason": "no verified client certificate"}
   ]}

Each case has:
  name       unique, shown in failures
  caller     exactly one of:
               "cert": "path/to/client.pem"   PEM or DER, relative to the cases file
               "cert": "NAME", "identity": {...}
                                              a certificate of a generated PKI and
                                              the fields it has: the fields are
                                              used, or with --certs DIR the file
                                              DIR/NAME.crt, whose name fields
                                              (cn, o, ou, issuer_cn, SANs) must
                                              be exactly the written ones
               "identity": {...}              the certificate's fields:
                   cn, issuer_cn              a string (or a list, for several CNs)
                   o, ou, uri_san, dns_san,   a list of strings (or one string)
                   email_san, ip_san
                   serial, sha256             hex, colons allowed
                   subject, issuer,           display only
                   not_before, not_after
               "no_cert": true                no client certificate
  connection optional true: a connection to an L4 (network filter) listener,
             judged by the policy's connection_rules; then no method, path,
             headers or body
  method     sent as-is ("get" is refused by the engine, as in Envoy)
  path       the :path as received, query and escapes included
  headers    optional: other request headers, {"name": "value", ...}
             (e.g. X-HTTP-Method-Override, Content-Type)
  body       optional: the request body as text; absent means the request
             ends with its headers (a POST form body is checked for _method)
  expect     "allow" or "deny": the policy's decision (before dry-run)
  enforced   optional "allow" or "deny": what the proxy does (after dry-run)
  rule       optional: the deciding rule's name, or null for "no rule
             decided" (the default, or a refusal such as a bad path)
  reason     optional: a substring of the engine's reason
  description  optional, ignored

Unknown fields are errors. Exit status: 0 all passed, 1 some failed,
2 unusable input (files, JSON, an invalid policy). The last line of text
output is "N passed, N failed"."#;

/// A decision as written in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Allow,
    Deny,
}

impl From<Expected> for Verdict {
    fn from(e: Expected) -> Verdict {
        match e {
            Expected::Allow => Verdict::Allow,
            Expected::Deny => Verdict::Deny,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesDoc<'a> {
    #[serde(default, rename = "description")]
    _description: Option<String>,
    /// Kept raw so each case is parsed on its own: one bad case does not hide
    /// the others' errors, and positions stay exact.
    #[serde(borrow)]
    cases: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    #[serde(default, rename = "description")]
    _description: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    identity: Option<IdentityFields>,
    #[serde(default)]
    no_cert: Option<bool>,
    /// `true`: a connection to an L4 listener, judged by `connection_rules`; no method, path, headers or body.
    #[serde(default)]
    connection: Option<bool>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    expect: Expected,
    #[serde(default)]
    enforced: Option<Expected>,
    #[serde(default, deserialize_with = "present")]
    rule: Option<Option<String>>,
    #[serde(default)]
    reason: Option<String>,
}

/// `"rule"` absent → `None` (not checked); `"rule": null` → `Some(None)` (no rule decided).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// What a case asserts about the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub decision: Verdict,
    pub enforced: Option<Verdict>,
    /// `None`: not checked. `Some(None)`: no rule decided. `Some(Some(name))`: that rule decided.
    pub rule: Option<Option<String>>,
    /// A substring the reason must contain.
    pub reason: Option<String>,
}

/// One loaded, validated case, ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// `FILE:LINE:COL` of the case, for failure reports.
    pub location: String,
    /// `None`: the request carries no client certificate.
    pub caller: Option<Caller>,
    /// How the caller was given, for failure reports ("certificate certs/a.pem").
    pub caller_label: String,
    /// A connection to an L4 listener (`connection_rules`), not a request: method and path are empty.
    pub connection: bool,
    pub method: String,
    pub path: String,
    /// Other request headers, as given.
    pub headers: Vec<(String, String)>,
    /// The body; `None` when the request ends with its headers.
    pub body: Option<String>,
    pub expect: Expectation,
}

/// Load and validate every case in `path`, or report every problem found.
///
/// `certs`: the directory of a generated PKI (`--certs`). A case that gives
/// both `cert` and `identity` is then run on the certificate `DIR/<cert>.crt`,
/// and refused if the certificate's fields differ from the written ones.
pub fn load(path: &Path, certs: Option<&Path>) -> Result<Vec<Case>, InputError> {
    let src = input::read_text(path, "cases file")?;
    let doc: CasesDoc<'_> = serde_json::from_str(&src).map_err(|e| {
        let at = input::position(path, &src, input::json_error_offset(&src, &e));
        InputError(format!("{at}: {}", input::json_error_message(&e)))
    })?;
    if doc.cases.is_empty() {
        return Err(InputError(format!("{}: \"cases\" is empty; a test file with no cases tests nothing", path.display())));
    }
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut errors = Vec::new();
    let mut cases = Vec::with_capacity(doc.cases.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in doc.cases.iter().enumerate() {
        let text = raw.get();
        // `raw` borrows from `src`, so its address gives its offset in the file.
        let base = (text.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize).min(src.len());
        let location = input::position(path, &src, base);
        let json_path = format!("cases[{i}]");
        let spec: CaseSpec = match serde_json::from_str(text) {
            Ok(spec) => spec,
            Err(e) => {
                let at = input::position(path, &src, base + input::json_error_offset(text, &e));
                errors.push(format!("{at}: {json_path}{}: {}", name_hint(text), input::json_error_message(&e)));
                continue;
            }
        };
        match resolve(spec, &base_dir, certs) {
            Ok(case) => {
                if let Some(first) = seen.get(&case.name) {
                    errors
                        .push(format!("{location}: {json_path}.name: duplicate case name {:?} (first used by cases[{first}])", case.name));
                    continue;
                }
                seen.insert(case.name.clone(), i);
                cases.push(Case { location, ..case });
            }
            Err(problems) => errors.extend(problems.into_iter().map(|(field, why)| format!("{location}: {json_path}{field}: {why}"))),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(InputError(errors.join("\n")))
    }
}

/// ` ("case name")` when the broken case at least has a readable name.
fn name_hint(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(|n| format!(" ({n:?})")))
        .unwrap_or_default()
}

/// Cross-field checks serde cannot express; returns (`.field`, message) pairs.
fn resolve(spec: CaseSpec, base_dir: &Path, certs: Option<&Path>) -> Result<Case, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    if spec.name.trim().is_empty() {
        problems.push((".name", "must not be empty".to_owned()));
    }
    if spec.reason.as_deref() == Some("") {
        problems.push((".reason", "must not be empty (it is a substring the reason must contain)".to_owned()));
    }
    if spec.no_cert == Some(false) {
        problems.push((".no_cert", "can only be true; to give a caller, use \"cert\" or \"identity\"".to_owned()));
    }
    let connection = spec.connection == Some(true);
    if spec.connection == Some(false) {
        problems.push((".connection", "can only be true; a request case gives \"method\" and \"path\" instead".to_owned()));
    }
    if connection {
        for (field, given) in [
            (".method", spec.method.is_some()),
            (".path", spec.path.is_some()),
            (".headers", !spec.headers.is_empty()),
            (".body", spec.body.is_some()),
        ] {
            if given {
                problems.push((field, "a connection case has no request: remove it, or drop \"connection\"".to_owned()));
            }
        }
    } else {
        for (field, given) in [(".method", spec.method.is_some()), (".path", spec.path.is_some())] {
            if !given {
                problems.push((field, "is required (or \"connection\": true for a connection to an L4 listener)".to_owned()));
            }
        }
    }
    // `cert` with `identity` is one caller: a named certificate and its fields.
    let named = spec.cert.is_some() && spec.identity.is_some();
    let given = usize::from(spec.cert.is_some() || spec.identity.is_some()) + usize::from(spec.no_cert == Some(true));
    let mut caller = None;
    let mut caller_label = String::new();
    if given != 1 {
        problems.push(("", "give exactly one caller: \"cert\", \"identity\" or \"no_cert\": true".to_owned()));
    } else if let (true, Some(name), Some(fields)) = (named, &spec.cert, &spec.identity) {
        match certs {
            None => {
                let c = crate::identity_input::caller_from_fields(fields.clone());
                caller_label = format!("identity {} (certificate {name})", display(&c));
                caller = Some(c);
            }
            Some(dir) => match load_cert_file(&dir.join(format!("{name}.crt"))) {
                Ok(c) => {
                    for why in fields.differences(&c.identity) {
                        problems.push((".identity", format!("differs from certificate {name}: {why}")));
                    }
                    caller_label = format!("certificate {name} ({})", display(&c));
                    caller = Some(c);
                }
                Err(e) => problems.push((".cert", e.0)),
            },
        }
    } else if let Some(cert) = &spec.cert {
        let file: PathBuf = base_dir.join(cert);
        match load_cert_file(&file) {
            Ok(c) => caller = Some(c),
            Err(e) => problems.push((".cert", e.0)),
        }
        caller_label = format!("certificate {cert}");
    } else if let Some(fields) = spec.identity {
        let c = crate::identity_input::caller_from_fields(fields);
        caller_label = format!("identity {}", display(&c));
        caller = Some(c);
    } else {
        caller_label = "no client certificate".to_owned();
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Case {
        name: spec.name,
        location: String::new(),
        caller,
        caller_label,
        connection,
        method: spec.method.unwrap_or_default(),
        path: spec.path.unwrap_or_default(),
        headers: spec.headers.into_iter().collect(),
        body: spec.body,
        expect: Expectation {
            decision: spec.expect.into(),
            enforced: spec.enforced.map(Verdict::from),
            rule: spec.rule,
            reason: spec.reason,
        },
    })
}

/// A short name for an identity in reports.
fn display(c: &Caller) -> String {
    let name = c.identity.display_name();
    if name.is_empty() {
        "(no name fields)".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(json: &str) -> Result<Vec<Case>, InputError> {
        let dir = std::env::temp_dir().join(format!("mtls-authz-cases-unit-{}-{}", std::process::id(), json.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cases.json");
        std::fs::write(&file, json).unwrap();
        let out = load(&file, None);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn rule_absent_null_and_named_are_three_different_assertions() {
        let cases = load_str(
            r#"{"cases": [
              {"name": "a", "no_cert": true, "method": "GET", "path": "/", "expect": "deny"},
              {"name": "b", "no_cert": true, "method": "GET", "path": "/", "expect": "deny", "rule": null},
              {"name": "c", "no_cert": true, "method": "GET", "path": "/", "expect": "deny", "rule": "r"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(cases[0].expect.rule, None);
        assert_eq!(cases[1].expect.rule, Some(None));
        assert_eq!(cases[2].expect.rule, Some(Some("r".into())));
    }

    #[test]
    fn a_connection_case_has_no_request_and_a_request_case_needs_one() {
        let cases = load_str(r#"{"cases": [{"name": "c", "connection": true, "no_cert": true, "expect": "deny"}]}"#).unwrap();
        assert!(cases[0].connection && cases[0].method.is_empty() && cases[0].path.is_empty());
        let err = load_str(
            r#"{"cases": [{"name": "c", "connection": true, "no_cert": true, "path": "/", "expect": "deny"},
                          {"name": "r", "no_cert": true, "expect": "deny"},
                          {"name": "f", "connection": false, "no_cert": true, "method": "GET", "path": "/", "expect": "deny"}]}"#,
        )
        .unwrap_err()
        .0;
        assert!(err.contains(".path: a connection case has no request"), "{err}");
        assert!(err.contains(".method: is required") && err.contains(".path: is required"), "{err}");
        assert!(err.contains(".connection: can only be true"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let err = load_str(
            "{\"cases\": [\n  {\"name\": \"a\", \"no_cert\": true, \"method\": \"GET\", \"path\": \"/\", \"expect\": \"deny\", \"rulee\": null},\n  {\"name\": \"b\", \"method\": \"GET\", \"path\": \"/\", \"expect\": \"deny\"},\n  {\"name\": \"b\", \"no_cert\": true, \"method\": \"GET\", \"path\": \"/\", \"expect\": \"Deny\"}\n]}",
        )
        .unwrap_err()
        .0;
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(lines[0].contains(":2:") && lines[0].contains("cases[0] (\"a\"): unknown field `rulee`"), "{err}");
        assert!(lines[1].contains(":3:3: cases[1]: give exactly one caller"), "{err}");
        assert!(lines[2].contains(":4:") && lines[2].contains("unknown variant `Deny`"), "{err}");
    }

    #[test]
    fn duplicate_names_and_empty_files_are_refused() {
        let dup = load_str(
            r#"{"cases": [{"name": "a", "no_cert": true, "method": "GET", "path": "/", "expect": "deny"},
                          {"name": "a", "no_cert": true, "method": "GET", "path": "/", "expect": "deny"}]}"#,
        )
        .unwrap_err()
        .0;
        assert!(dup.contains("duplicate case name \"a\""), "{dup}");
        assert!(load_str(r#"{"cases": []}"#).unwrap_err().0.contains("is empty"));
        assert!(load_str(r#"{"tests": []}"#).unwrap_err().0.contains("unknown field `tests`"));
    }
}
