//! `mtls-authz explain --connection`: what an L4 (network filter) listener
//! does with a connection from this certificate, and why. The same engine
//! call the filter makes ([`CompiledPolicy::decide_connection`]) and the same
//! log line, so the answer here is what Envoy enforces. Exit 0 for any
//! decision; unusable inputs exit 2, as `explain` does.

use mtls_authz_policy::connection::unfit_for_connections;
use mtls_authz_policy::outcome::{log_line, Event, Facts};
use mtls_authz_policy::{CompiledPolicy, IdentityView, Reason};
use serde::Serialize;

use crate::console::Console;
use crate::explain::{load_caller, CallerSource};
use crate::input::{load_policy, InputError};
use crate::output::{to_json_line, Format};

/// What `explain --connection --format json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// What the policy says: "allow" or "deny".
    decision: &'static str,
    /// What the filter does: "allow" keeps the connection, "deny" closes it (dry run allows).
    enforced: &'static str,
    rule: Option<&'a str>,
    reason: &'static str,
    /// Why this policy cannot run an L4 listener at all (it has no connection_rules); null when it can.
    unfit: Option<&'static str>,
    log_line: String,
    identity: Option<IdentityView>,
}

pub fn run(policy_file: &std::path::Path, caller: &CallerSource, format: Format, console: &mut Console<'_>) -> Result<(), InputError> {
    let policy: CompiledPolicy = load_policy(policy_file)?;
    let caller = load_caller(caller)?;
    let identity = caller.as_ref().map(|c| &c.identity);
    let decision = policy.decide_connection(identity);
    let facts = Facts { identity, digest: identity.map(|i| i.sha256.as_str()), revision: policy.revision(), ..Facts::default() };
    let report = Report {
        decision: decision.verdict.as_str(),
        enforced: decision.enforced.as_str(),
        rule: decision.rule,
        reason: decision.reason.as_str(),
        unfit: unfit_for_connections(&policy),
        log_line: log_line(Event::for_connection(&decision), &facts, &decision),
        identity: caller.as_ref().map(|c| c.view()),
    };
    match format {
        Format::Json => console.out(&to_json_line(&report)),
        Format::Text => {
            let row = |console: &mut Console<'_>, label: &str, value: &str| console.out(&format!("{:<11} {value}", format!("{label}:")));
            row(console, "decision", report.decision);
            let action = if report.enforced == "allow" { "kept: tcp_proxy connects upstream" } else { "closed: no upstream connection" };
            row(console, "connection", action);
            let rule = match (decision.rule, decision.reason) {
                (Some(name), _) => name,
                (None, Reason::Default(_)) => "default",
                (None, _) => "none (refused before any rule was consulted)",
            };
            row(console, "rule", rule);
            row(console, "reason", report.reason);
            if let Some(why) = report.unfit {
                row(console, "warning", why);
            }
            row(console, "log", &report.log_line);
            if let Some(identity) = &report.identity {
                for (label, value) in identity.rows() {
                    console.out(&format!("  {:<12} {value}", format!("{label}:")));
                }
            }
        }
    }
    Ok(())
}
