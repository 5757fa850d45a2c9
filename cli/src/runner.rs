//! `mtls-authz test`: run a policy against its cases and report every mismatch.
//!
//! Each case is decided by the same engine Envoy runs. A failure shows the
//! request, what was expected and what happened (decision, rule, reason), so
//! the fix is usually obvious without running `explain`. The last line is
//! always `N passed, N failed`, for people and for CI logs.

use std::path::Path;

use mtls_authz_policy::{CompiledPolicy, RequestParts, Verdict};
use serde::Serialize;

use crate::cases::{self, Case, Expectation};
use crate::console::Console;
use crate::input::{load_policy, InputError};
use crate::output::{quoted, to_json_line, Format};
use crate::Exit;

/// What the engine said about one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Got {
    pub decision: Verdict,
    pub enforced: Verdict,
    pub rule: Option<String>,
    pub reason: &'static str,
}

/// One case's result; `mismatches` names the assertions that failed.
#[derive(Debug, Clone)]
pub struct Outcome<'c> {
    pub case: &'c Case,
    pub got: Got,
    pub mismatches: Vec<&'static str>,
}

impl Outcome<'_> {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Decide every case; never stops at the first failure.
pub fn evaluate<'c>(policy: &CompiledPolicy, cases: &'c [Case]) -> Vec<Outcome<'c>> {
    cases
        .iter()
        .map(|case| {
            let headers: Vec<(&[u8], &[u8])> = case.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
            let request =
                RequestParts { method: &case.method, target: &case.path, headers: &headers, body: case.body.as_deref().map(str::as_bytes) };
            let identity = case.caller.as_ref().map(|c| &c.identity);
            let d = if case.connection { policy.decide_connection(identity) } else { policy.decide_request(identity, &request) };
            let got = Got { decision: d.verdict, enforced: d.enforced, rule: d.rule.map(str::to_owned), reason: d.reason.as_str() };
            let mismatches = compare(&case.expect, &got);
            Outcome { case, got, mismatches }
        })
        .collect()
}

fn compare(want: &Expectation, got: &Got) -> Vec<&'static str> {
    let mut out = Vec::new();
    if want.decision != got.decision {
        out.push("decision");
    }
    if want.enforced.is_some_and(|e| e != got.enforced) {
        out.push("enforced");
    }
    if want.rule.as_ref().is_some_and(|r| *r != got.rule) {
        out.push("rule");
    }
    if want.reason.as_ref().is_some_and(|r| !got.reason.contains(r.as_str())) {
        out.push("reason");
    }
    out
}

/// Load, run, report. Returns [`Exit::Failed`] when any case failed.
pub fn run(
    policy_path: &Path,
    cases_path: &Path,
    certs: Option<&Path>,
    format: Format,
    verbose: bool,
    console: &mut Console<'_>,
) -> Result<Exit, InputError> {
    // Both inputs are loaded and validated before any case runs, so a broken
    // input is reported as such (exit 2), never as a pile of failed cases.
    let policy = load_policy(policy_path)?;
    let cases = cases::load(cases_path, certs)?;
    let outcomes = evaluate(&policy, &cases);
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let passed = outcomes.len() - failed;
    match format {
        Format::Text => {
            for o in &outcomes {
                if o.passed() {
                    if verbose {
                        console.out(&format!("ok   {}", o.case.name));
                    }
                } else {
                    print_failure(o, &policy, console);
                }
            }
            console.out(&format!("{passed} passed, {failed} failed"));
        }
        Format::Json => console.out(&to_json_line(&JsonReport {
            policy: policy_path.display().to_string(),
            cases: cases_path.display().to_string(),
            passed,
            failed,
            results: outcomes.iter().map(JsonResult::new).collect(),
        })),
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

fn rule_text(rule: Option<&str>) -> String {
    match rule {
        Some(name) => format!("rule {}", quoted(name)),
        None => "rule null".to_owned(),
    }
}

fn print_failure(o: &Outcome<'_>, policy: &CompiledPolicy, console: &mut Console<'_>) {
    let case = o.case;
    let want = &case.expect;
    console.out(&format!("FAIL {} ({})", quoted(&case.name), case.location));
    if case.connection {
        console.out(&format!("  connection from {}", case.caller_label));
    } else {
        console.out(&format!("  request:  {} {} from {}", case.method, case.path, case.caller_label));
    }
    for (name, value) in &case.headers {
        console.out(&format!("            {name}: {value}"));
    }
    if let Some(body) = &case.body {
        console.out(&format!("            body: {} bytes", body.len()));
    }
    let mut expected = vec![want.decision.as_str().to_owned()];
    if let Some(e) = want.enforced {
        expected.push(format!("enforced {}", e.as_str()));
    }
    if let Some(rule) = &want.rule {
        expected.push(rule_text(rule.as_deref()));
    }
    if let Some(reason) = &want.reason {
        expected.push(format!("reason containing {}", quoted(reason)));
    }
    let mut got = vec![o.got.decision.as_str().to_owned()];
    if want.enforced.is_some() || o.got.enforced != o.got.decision {
        got.push(format!("enforced {}", o.got.enforced.as_str()));
    }
    got.push(rule_text(o.got.rule.as_deref()));
    got.push(format!("reason {}", quoted(o.got.reason)));
    console.out(&format!("  expected: {}", expected.join(", ")));
    console.out(&format!("  got:      {}", got.join(", ")));
    // A typo in an expected rule name looks like an engine bug; say which it is.
    if let Some(Some(name)) = &want.rule {
        if !policy.policy().rules.iter().any(|r| *r.name == **name) {
            console.out(&format!("  note:     the policy has no rule named {}", quoted(name)));
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'c> {
    policy: String,
    cases: String,
    passed: usize,
    failed: usize,
    results: Vec<JsonResult<'c>>,
}

#[derive(Serialize)]
struct JsonResult<'c> {
    name: &'c str,
    location: &'c str,
    passed: bool,
    method: &'c str,
    path: &'c str,
    caller: &'c str,
    expected: JsonExpected<'c>,
    got: &'c Got,
    mismatches: &'c [&'static str],
}

#[derive(Serialize)]
struct JsonExpected<'c> {
    decision: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    enforced: Option<Verdict>,
    /// Absent: not checked; null: no rule decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Option<&'c str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'c str>,
}

impl<'c> JsonResult<'c> {
    fn new(o: &'c Outcome<'c>) -> JsonResult<'c> {
        let want = &o.case.expect;
        JsonResult {
            name: &o.case.name,
            location: &o.case.location,
            passed: o.passed(),
            method: &o.case.method,
            path: &o.case.path,
            caller: &o.case.caller_label,
            expected: JsonExpected {
                decision: want.decision,
                enforced: want.enforced,
                rule: want.rule.as_ref().map(|r| r.as_deref()),
                reason: want.reason.as_deref(),
            },
            got: &o.got,
            mismatches: &o.mismatches,
        }
    }
}
