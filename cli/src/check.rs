//! `mtls-authz check`: is this policy valid, and if not, where exactly? And,
//! with `--envoy-config`, does Envoy route paths the way the policy reads them?
//!
//! Meant for CI and editors: one `FILE:LINE:COL: JSONPATH: message` line per
//! problem, the same text Envoy logs when it refuses the policy, so a broken
//! policy is caught before it reaches a proxy. Every file is checked even
//! after a bad one, so one run reports everything.
//!
//! The Envoy lint ([`crate::envoy_lint`]) prints its findings in the same
//! form, with `warning:` or `note:` in front of the message. A warning is a
//! route that can hand the backend a path the policy did not judge, so it
//! fails the check like an invalid policy (exit 1): CI can gate on it. It
//! reads the policies that loaded, to name the patterns a route cuts; an
//! invalid policy fails the check anyway, so its patterns are not needed.

use std::path::{Path, PathBuf};

use mtls_authz_policy::load::load;
use mtls_authz_policy::CompiledPolicy;

use crate::console::Console;
use crate::envoy_lint::{self, PolicySource, Severity};
use crate::input::{read_bytes, read_text};
use crate::Exit;

/// Check each policy, then lint each Envoy configuration; the exit status is the worst outcome seen.
pub fn run(files: &[PathBuf], envoy_configs: &[PathBuf], console: &mut Console<'_>) -> Exit {
    let mut worst = Exit::Ok;
    let mut loaded: Vec<(String, CompiledPolicy)> = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let bytes = match read_bytes(file, "policy") {
            Ok(bytes) => bytes,
            Err(e) => {
                console.err(&format!("mtls-authz: {e}"));
                worst = worst.max(Exit::BadInput);
                continue;
            }
        };
        match load(&name, &bytes) {
            Ok(policy) => {
                // Connection rules (L4 listeners) are counted only where there are any.
                let connection = match policy.policy().connection_rules.len() {
                    0 => String::new(),
                    n => format!(", {n} connection rules"),
                };
                console.out(&format!("{name}: ok ({} rules{connection})", policy.policy().rules.len()));
                loaded.push((name, policy));
            }
            Err(e) if e.is_not_text() => {
                console.err(&format!("mtls-authz: {e}"));
                worst = worst.max(Exit::BadInput);
            }
            Err(e) => {
                console.err(&e.to_string());
                worst = worst.max(Exit::Failed);
            }
        }
    }
    let sources: Vec<PolicySource<'_>> = loaded.iter().map(|(origin, p)| PolicySource { origin, policy: p.policy() }).collect();
    for config in envoy_configs {
        worst = worst.max(lint_envoy_config(config, &sources, console));
    }
    worst
}

/// Lint one Envoy configuration: its findings on stderr, "FILE: ok (N routes)" when none is a warning.
fn lint_envoy_config(file: &Path, policies: &[PolicySource<'_>], console: &mut Console<'_>) -> Exit {
    let name = file.display().to_string();
    let src = match read_text(file, "Envoy config") {
        Ok(src) => src,
        Err(e) => {
            crate::report_input_error(&e.0, console);
            return Exit::BadInput;
        }
    };
    let report = match envoy_lint::lint(&src, policies) {
        Ok(report) => report,
        Err(e) => {
            console.err(&format!("{name}:{}:{}: not a YAML or JSON Envoy config: {}", e.line, e.column, e.message));
            return Exit::BadInput;
        }
    };
    for finding in &report.findings {
        console.err(&finding.render(&name));
    }
    if report.route_configs == 0 {
        console.err(&format!(
            "{name}: note: no inline route_config found; routes from RDS or another control plane are not in the file and are not checked"
        ));
    }
    if report.has_warnings() {
        return Exit::Failed;
    }
    let notes = report.findings.iter().filter(|f| f.severity == Severity::Note).count();
    let plural = |n: usize, word: &str| if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") };
    let mut summary = plural(report.routes, "route");
    if notes > 0 {
        summary.push_str(&format!(", {}", plural(notes, "note")));
    }
    console.out(&format!("{name}: ok ({summary})"));
    Exit::Ok
}
