//! The bypass table (policy-tests/cases/bypass.json) through the engine,
//! the filter over a mock host, and the CLI: every case whose raw-listener
//! expectation is the filter's own decision, so breaking a canonicalisation
//! or override rule fails `cargo test`, not only the Envoy suite. Which
//! cases are left to Envoy, and why: `table::skipped`.
//!
//! This lives in the CLI's tests because only the package that builds the
//! `mtls-authz` binary gets its path (`CARGO_BIN_EXE_mtls-authz`); the
//! engine and filter runners need nothing but those crates' public APIs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod examples;
mod runners;
mod table;

use std::time::Instant;

use runners::{Cli, Engine, Filter, Outcome, Request, Runner};
use table::{Expect, Table};

/// Run every selected case through `runner`; fail with every mismatch, each naming its case.
fn run_table(runner: &dyn Runner, table: &Table) {
    let start = Instant::now();
    let mut failures = Vec::new();
    for case in &table.cases {
        let identity = if case.identity == table.no_cert { None } else { Some(table.identities[&case.identity].pem.as_str()) };
        let request = Request { method: &case.method, target: &case.target, headers: &case.headers, body: case.body.as_deref() };
        let got = runner.run(&case.identity, identity, &request);
        if let Some(why) = mismatch(runner.name(), table, case, &got) {
            failures.push(format!("{} {}: {why}", runner.name(), case.name));
        }
    }
    eprintln!("{}: {} bypass cases in {:.2?}", runner.name(), table.cases.len(), start.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {} bypass cases fail through the {}:\n{}",
        failures.len(),
        table.cases.len(),
        runner.name(),
        failures.join("\n")
    );
}

fn mismatch(runner: &str, table: &Table, case: &table::Case, got: &Outcome) -> Option<String> {
    let phrase = |code: &str| {
        table.reasons.get(code).cloned().unwrap_or_else(|| panic!("{}: reason code {code} is not in filter/constants.json", case.name))
    };
    match &case.expect {
        Expect::Allow { rule } => {
            if !got.allowed || got.rule.as_deref() != Some(rule) {
                return Some(format!("expected allow by rule {rule}, got {got:?}"));
            }
            if got.reason.is_some() && got.reason != Some(phrase("rule.allow")) {
                return Some(format!("expected the reason of an allow rule, got {got:?}"));
            }
            let want = table.identities.get(&case.identity).and_then(|m| m.principal.as_deref());
            if let (Some(want), true) = (want, runner != "engine") {
                if got.principal.as_deref() != Some(want) {
                    return Some(format!("expected principal {want}, got {got:?}"));
                }
            }
        }
        Expect::Deny { reason, rule, status } => {
            let want = phrase(reason);
            if got.allowed || got.rule != *rule || got.reason.as_deref() != Some(want.as_str()) {
                return Some(format!("expected deny ({reason}: {want:?}, rule {rule:?}), got {got:?}"));
            }
            if got.status.is_some_and(|s| s != *status) {
                return Some(format!("expected status {status}, got {got:?}"));
            }
        }
    }
    None
}

#[test]
fn engine_decides_the_bypass_table() {
    let table = table::load();
    run_table(&Engine::new(&table.policy), &table);
}

#[test]
fn filter_decides_the_bypass_table() {
    let table = table::load();
    run_table(&Filter::new(&table.policy), &table);
}

#[test]
fn cli_explains_the_bypass_table() {
    let table = table::load();
    run_table(&Cli::new(&table.policy), &table);
}

/// The selection cannot quietly shrink: a case the runners skip must be one
/// of the kinds left to Envoy, and most of the table is run here.
#[test]
fn most_of_the_bypass_table_runs_here() {
    let all = table::selection();
    let run = all.iter().filter(|(_, skip)| skip.is_none()).count();
    assert_eq!(all.len(), table::load().cases.len() + all.iter().filter(|(_, s)| s.is_some()).count());
    assert!(run >= 220, "only {run} of {} bypass cases run through the Rust runners", all.len());
}
