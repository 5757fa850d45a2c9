//! `mtls-authz explain`: what would the proxy do with this certificate and
//! request, and why?
//!
//! It runs the very engine the Envoy filter runs, on the same inputs the filter
//! has (certificate, method, `:path`), so the answer on a laptop is the answer
//! in production. It also prints every identity field read from the
//! certificate, because most surprises turn out to be "the certificate does
//! not say what I thought" (an OU missing, a second CN, a SAN in another
//! case), and the `x-mtls-authz-principal` value exactly as the upstream
//! would receive it, from the same engine function the filter calls. The
//! exit status is 0 for any decision: a deny is an answer, not an error; only
//! unusable inputs exit 2.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use mtls_authz_policy::metrics;
use mtls_authz_policy::outcome_view::{self, OutcomeView};
use mtls_authz_policy::principal::HEADER as PRINCIPAL_HEADER;
use mtls_authz_policy::reading::PathReport;
use mtls_authz_policy::{Action, CompiledPolicy, Decision, Identity, IdentityView, Mode, PrincipalFormat, Reason, RequestParts, Verdict};
use serde::Serialize;

use crate::console::Console;
use crate::identity_input::{load_cert_file, load_fields_file, Caller};
use crate::input::{load_policy, InputError};
use crate::output::{to_json_line, Format};

/// Where the caller's identity comes from.
#[derive(Debug, Clone)]
pub enum CallerSource {
    /// A PEM or DER certificate file.
    Cert(PathBuf),
    /// An identity-fields JSON file.
    Fields(PathBuf),
    /// No client certificate on the connection.
    NoCert,
}

/// One `explain` invocation.
#[derive(Debug, Clone)]
pub struct Request {
    pub policy: PathBuf,
    pub caller: CallerSource,
    pub method: String,
    pub path: String,
    /// Other request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body; `None` when the request ends with its headers.
    pub body: Option<Vec<u8>>,
    pub format: Format,
}

/// What `explain --format json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// What the policy says: "allow" or "deny".
    decision: &'static str,
    /// What the proxy does: the decision, except that dry-run turns deny into allow.
    enforced: &'static str,
    /// The deciding rule; null when the default decided or the request was refused before any rule.
    rule: Option<&'a str>,
    reason: &'static str,
    /// "rule", "default", or "refused" (no certificate, non-canonical path or method).
    decided_by: &'static str,
    /// The `x-mtls-authz-principal` value the filter sets when it lets this
    /// request through, byte for byte (in the policy's `principal_format`);
    /// null without a certificate or when `upstream_headers.principal` is off.
    upstream_principal: Option<Cow<'a, str>>,
    /// What the proxy does, from the engine's outcome: on an allow, the
    /// filter's headers on the upstream request as `[name, value]` (headers it
    /// clears are not listed); on a refusal, the local reply as sent; and the
    /// log line, for a deny or a dry-run deny.
    outcome: OutcomeView,
    request: RequestView<'a>,
    policy: PolicyView<'a>,
    identity_source: SourceView,
    identity: Option<IdentityView>,
    /// The policy's gateway sections as they meet this request.
    gateway: GatewayView,
}

/// Which counters the request counts in, which limits it takes a token from.
#[derive(Debug, Serialize)]
struct GatewayView {
    /// The `rule` label of its per-rule counters; null when `metrics.per_rule` is off.
    rule_label: Option<String>,
    /// The `identity` label of its per-identity counters (before the cap); null when off.
    identity_label: Option<String>,
    /// The limits on the rule that allowed it (none on a deny); `dry_run`
    /// when the limit or the policy is.
    limits: Vec<LimitView>,
}

#[derive(Debug, Serialize)]
struct LimitView {
    name: String,
    key: Vec<(&'static str, String)>,
    rate: String,
    dry_run: bool,
}

impl GatewayView {
    fn new(policy: &CompiledPolicy, decision: &Decision<'_>, identity: Option<&Identity>) -> GatewayView {
        let gateway = &policy.policy().gateway;
        let allowed_by = decision.rule.filter(|_| decision.verdict == Verdict::Allow);
        let limits = allowed_by.map_or_else(Vec::new, |rule| {
            gateway
                .limits_for(Some(rule))
                .map(|l| LimitView {
                    name: l.name.clone(),
                    key: l.key_parts(identity, rule),
                    rate: l.rate_text(),
                    dry_run: l.dry_run || policy.mode() == Mode::DryRun,
                })
                .collect()
        });
        GatewayView {
            rule_label: gateway.metrics.per_rule.then(|| metrics::rule_label(decision)),
            identity_label: gateway.metrics.per_identity.map(|per| metrics::identity_label(per, identity)),
            limits,
        }
    }
}

#[derive(Debug, Serialize)]
struct RequestView<'a> {
    method: &'a str,
    path: &'a str,
    /// The decoded path the rules were matched against; null when the path was refused.
    canonical_path: Option<String>,
    /// How the path reads under the policy's path_reading: what the backend
    /// receives and the names the rules meet, or the refusal and which option would accept it.
    reading: PathReport,
    /// Other request headers given, as `[name, value]`.
    headers: &'a [(String, String)],
    /// The length of the body given; null when the request ends with its headers.
    body_bytes: Option<usize>,
}

#[derive(Debug, Serialize)]
struct PolicyView<'a> {
    file: String,
    revision: Option<&'a str>,
    mode: Mode,
    default_action: Action,
    principal_format: PrincipalFormat,
    /// `upstream_headers.principal`: whether the filter sends the principal header at all.
    principal_header: bool,
    /// How the policy says its backends read paths.
    path_reading: mtls_authz_policy::PathReading,
}

#[derive(Debug, Serialize)]
struct SourceView {
    /// "certificate", "identity" (a fields file) or "none".
    kind: &'static str,
    file: Option<String>,
}

fn decided_by(reason: Reason) -> &'static str {
    match reason {
        Reason::Rule(_) => "rule",
        Reason::Default(_) => "default",
        _ => "refused",
    }
}

pub(crate) fn load_caller(source: &CallerSource) -> Result<Option<Caller>, InputError> {
    match source {
        CallerSource::Cert(path) => load_cert_file(path).map(Some),
        CallerSource::Fields(path) => load_fields_file(path).map(Some),
        CallerSource::NoCert => Ok(None),
    }
}

fn source_view(source: &CallerSource) -> SourceView {
    let file = |p: &Path| Some(p.display().to_string());
    match source {
        CallerSource::Cert(p) => SourceView { kind: "certificate", file: file(p) },
        CallerSource::Fields(p) => SourceView { kind: "identity", file: file(p) },
        CallerSource::NoCert => SourceView { kind: "none", file: None },
    }
}

/// Decide and print. Inputs are all loaded before anything is printed, so a
/// bad input produces only an error, never half a report.
pub fn run(req: &Request, console: &mut Console<'_>) -> Result<(), InputError> {
    let policy: CompiledPolicy = load_policy(&req.policy)?;
    let caller = load_caller(&req.caller)?;
    let identity = caller.as_ref().map(|c| &c.identity);
    let headers: Vec<(&[u8], &[u8])> = req.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
    let parts = RequestParts { method: &req.method, target: &req.path, headers: &headers, body: req.body.as_deref() };
    let (decision, outcome_view) = outcome_view::explain(&policy, identity, &parts);
    let gateway = GatewayView::new(&policy, &decision, identity);
    let headers = policy.policy().upstream_headers;
    let reading = PathReport::new(&req.path, &policy.policy().path_reading);
    let report = Report {
        decision: decision.verdict.as_str(),
        enforced: decision.enforced.as_str(),
        rule: decision.rule,
        reason: decision.reason.as_str(),
        decided_by: decided_by(decision.reason),
        upstream_principal: identity.filter(|_| headers.principal).map(|i| i.upstream_principal(headers.principal_format)),
        outcome: outcome_view,
        request: RequestView {
            method: &req.method,
            path: &req.path,
            canonical_path: reading.path.clone(),
            reading,
            headers: &req.headers,
            body_bytes: req.body.as_ref().map(Vec::len),
        },
        policy: PolicyView {
            file: req.policy.display().to_string(),
            revision: policy.revision(),
            mode: policy.mode(),
            default_action: policy.policy().default_action,
            principal_format: headers.principal_format,
            principal_header: headers.principal,
            path_reading: policy.policy().path_reading,
        },
        identity_source: source_view(&req.caller),
        identity: caller.as_ref().map(Caller::view),
        gateway,
    };
    match req.format {
        Format::Json => console.out(&to_json_line(&report)),
        Format::Text => print_text(&report, console),
    }
    Ok(())
}

fn print_text(r: &Report<'_>, console: &mut Console<'_>) {
    let row = |console: &mut Console<'_>, label: &str, value: &str| console.out(&format!("{:<11} {value}", format!("{label}:")));
    row(console, "decision", r.decision);
    let enforced = if r.decision != r.enforced {
        format!("{} (dry run: the policy's mode is dry_run, so this deny is reported, not enforced)", r.enforced)
    } else {
        r.enforced.to_owned()
    };
    row(console, "enforced", &enforced);
    let rule = match (r.rule, r.decided_by) {
        (Some(name), _) => name.to_owned(),
        (None, "default") => "default".to_owned(),
        (None, _) => "none (refused before any rule was consulted)".to_owned(),
    };
    row(console, "rule", &rule);
    row(console, "reason", r.reason);
    let request = match &r.request.canonical_path {
        Some(c) if c != strip_query(r.request.path) => format!("{} {} (matched as {c})", r.request.method, r.request.path),
        _ => format!("{} {}", r.request.method, r.request.path),
    };
    row(console, "request", &request);
    for other in &r.request.reading.alternatives {
        row(console, "also", &format!("/{} (another name the backend may resolve: it must be allowed too)", other.join("/")));
    }
    for other in &r.request.reading.deny_readings {
        row(console, "also", &format!("/{} (a name some backend may resolve: deny rules meet it)", other.join("/")));
    }
    if let Some(why) = &r.request.reading.refusal {
        let accepted_by = why.accepted_by.map_or(String::new(), |option| format!("; accepted with {option}"));
        row(console, "path", &format!("refused [{}]{accepted_by}", why.code));
    }
    for (name, value) in r.request.headers {
        row(console, "header", &format!("{name}: {value}"));
    }
    if let Some(len) = r.request.body_bytes {
        row(console, "body", &format!("{len} bytes"));
    }
    let mode = match r.policy.mode {
        Mode::Enforce => "enforce",
        Mode::DryRun => "dry_run",
    };
    row(
        console,
        "policy",
        &format!(
            "{} (mode {mode}, default_action {}, revision {}, principal_format {})",
            r.policy.file,
            r.policy.default_action.as_str(),
            r.policy.revision.unwrap_or("-"),
            r.policy.principal_format.as_str()
        ),
    );
    if let Some(upstream) = &r.outcome.upstream_headers {
        let shown: Vec<String> = upstream.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        row(console, "upstream", &if shown.is_empty() { "(no filter headers)".to_owned() } else { shown.join("; ") });
    }
    if let Some(response) = &r.outcome.response {
        let shown = match response.grpc_status {
            // A gRPC client sees only the status and the message (the trailer, percent-encoded).
            Some(status) => {
                let message =
                    response.headers.iter().find(|(n, _)| *n == mtls_authz_policy::grpc::MESSAGE_HEADER).map_or("", |(_, v)| v.as_str());
                format!("grpc-status {status}, grpc-message: {message}")
            }
            None => format!("{} {}", response.status, response.body),
        };
        row(console, "response", &shown);
    }
    if let Some(line) = &r.outcome.log_line {
        row(console, "log", line);
    }
    let labels: Vec<String> = [("rule", &r.gateway.rule_label), ("identity", &r.gateway.identity_label)]
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}=\"{v}\"")))
        .collect();
    if !labels.is_empty() {
        row(console, "counted", &labels.join(" "));
    }
    for limit in &r.gateway.limits {
        let key: Vec<String> = limit.key.iter().map(|(part, value)| format!("{part}={value:?}")).collect();
        let dry = if limit.dry_run { ", dry run" } else { "" };
        row(console, "limit", &format!("{} ({}; key {}{dry})", limit.name, limit.rate, key.join(" ")));
    }
    let source = match (r.identity_source.kind, &r.identity_source.file) {
        (kind, Some(file)) => format!("{kind} {file}"),
        (_, None) => "no client certificate".to_owned(),
    };
    row(console, "caller", &source);
    if let Some(identity) = &r.identity {
        // The header line as the upstream gets it, so the value can be compared byte for byte.
        match &r.upstream_principal {
            Some(value) => console.out(&format!("  {PRINCIPAL_HEADER}: {value}")),
            None => console.out(&format!("  {PRINCIPAL_HEADER}: - (not sent: upstream_headers.principal is false)")),
        }
        for (label, value) in identity.rows() {
            console.out(&format!("  {:<12} {value}", format!("{label}:")));
        }
    }
}

fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}
