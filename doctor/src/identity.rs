//! Check 7: what the filter will see, and what the policy decides.
//!
//! Once the handshake works the next surprise is a 403: the certificate says
//! `CN=orders` where the policy expects `order-service`, the SPIFFE ID is in
//! a second URI SAN, the OU is missing. The fields are read with the engine's
//! own parser, and the decision comes from the engine the filter runs, so
//! this answers "will the request be allowed?" exactly as Envoy would.

use mtls_authz_policy::principal::HEADER as PRINCIPAL_HEADER;
use mtls_authz_policy::view::list;
use mtls_authz_policy::{CompiledPolicy, Identity, IdentityView, LoadError, Mode, PrincipalFormat};
use serde_json::json;

use super::{Check, Status};

/// The identity check, and the identity for the policy check.
pub fn check(leaf_der: &[u8]) -> (Check, Option<Identity>) {
    let identity = match Identity::from_der(leaf_der) {
        Ok(identity) => identity,
        Err(e) => {
            let check = Check::new("identity", Status::Fail, format!("the filter cannot read this certificate: {e}"))
                .cause("unreadable_identity")
                .fix("The filter denies every request from a certificate it cannot read (reason: the client certificate could not be parsed). Reissue it with plain UTF-8/ASCII names.");
            return (check, None);
        }
    };
    let spiffe: Vec<&String> = identity.uri_sans.iter().filter(|u| u.starts_with("spiffe://")).collect();
    // The default format; the policy check below shows the policy's own.
    let principal = identity.upstream_principal(PrincipalFormat::Typed).into_owned();
    let mut summary = format!("the filter sees principal '{principal}'");
    if !principal.starts_with("cn=") {
        summary.push_str(&format!(" (CN {})", list(&identity.common_names)));
    }
    let view = IdentityView::new(&identity, Some(identity.not_before), Some(identity.not_after));
    let mut detail: Vec<String> = view.rows().into_iter().map(|(label, value)| format!("{label}: {value}")).collect();
    let spiffe_text: Vec<String> = spiffe.iter().map(|s| (*s).clone()).collect();
    detail.insert(0, format!("principal: {principal}"));
    detail.insert(1, format!("spiffe_id: {}", list(&spiffe_text)));
    let mut status = Status::Pass;
    let mut fix = None;
    let mut cause = None;
    if identity.common_names.len() > 1 {
        status = Status::Warn;
        cause = Some("several_cns");
        detail.push(format!(
            "note: {} CNs; a policy 'cn' principal matches only a certificate with exactly one",
            identity.common_names.len()
        ));
        fix = Some("Reissue the certificate with a single CN, or match it by SAN instead.");
    }
    if spiffe.len() > 1 {
        status = Status::Warn;
        cause = Some("several_spiffe_ids");
        detail
            .push("note: more than one SPIFFE ID; SPIFFE allows exactly one URI SAN, and {uri_san_last_segment} needs exactly one".into());
        fix = Some("Reissue the certificate with exactly one spiffe:// URI SAN.");
    }
    if identity.common_names.is_empty() && identity.uri_sans.is_empty() {
        status = Status::Warn;
        cause = Some("no_name");
        detail.push("note: no CN and no URI SAN: only o/ou/dns_san/serial/sha256 principals can match it".into());
    }
    let data = json!({"principal": principal, "spiffe_id": spiffe_text, "identity": view});
    let mut check = Check::new("identity", status, summary).detail(detail).data(data);
    if let Some(c) = cause {
        check = check.cause(c);
    }
    if let Some(f) = fix {
        check = check.fix(f);
    }
    (check, Some(identity))
}

/// What `--policy` says about `--method --path` for this identity.
pub fn policy_check(policy: Result<CompiledPolicy, LoadError>, identity: Option<&Identity>, method: &str, path: &str) -> Check {
    let policy = match policy {
        Ok(p) => p,
        Err(errors) => {
            return Check::new("policy", Status::Fail, "the policy is invalid; the filter refuses to load it")
                .cause("invalid_policy")
                .detail(errors.lines())
                .fix("Fix the errors listed (`mtls-authz check POLICY.json` prints the same).")
        }
    };
    let Some(identity) = identity else {
        return Check::new("policy", Status::Fail, format!("deny: {method} {path} — the client certificate could not be parsed"))
            .cause("policy_deny")
            .fix("See the identity check.");
    };
    let d = policy.decide(Some(identity), method, path);
    let rule = d.rule.map(|r| format!("rule '{r}'")).unwrap_or_else(|| "no rule (default_action)".into());
    let data = json!({
        "decision": d.verdict.as_str(),
        "enforced": d.enforced.as_str(),
        "rule": d.rule,
        "reason": d.reason.as_str(),
        "method": method,
        "path": path,
        "revision": policy.revision(),
    });
    let detail = vec![
        format!("decision: {} (enforced: {})", d.verdict.as_str(), d.enforced.as_str()),
        format!("rule: {}", d.rule.unwrap_or("-")),
        format!("reason: {}", d.reason.as_str()),
        format!("{PRINCIPAL_HEADER}: {}", identity.upstream_principal(policy.policy().upstream_headers.principal_format)),
    ];
    let summary = format!("{}: {method} {path} — {rule}: {}", d.verdict.as_str(), d.reason.as_str());
    let explain =
        format!("`mtls-authz explain --policy POLICY.json --cert CERT --method {method} --path '{path}'` shows every field the rules saw.");
    if d.is_allowed() && !d.is_dry_run_deny() {
        Check::new("policy", Status::Pass, summary).detail(detail).data(data)
    } else if d.is_dry_run_deny() {
        let mode = if policy.mode() == Mode::DryRun {
            " (the policy is in dry_run mode: the request passes, the deny is only logged)"
        } else {
            ""
        };
        Check::new("policy", Status::Warn, format!("{summary}{mode}"))
            .cause("policy_dry_run_deny")
            .detail(detail)
            .data(data)
            .fix(format!("Once the policy enforces, this request will be denied. {explain}"))
    } else {
        Check::new("policy", Status::Fail, summary)
            .cause("policy_deny")
            .detail(detail)
            .data(data)
            .fix(format!("Add or change a rule for this principal, or call with the certificate the rule expects. {explain}"))
    }
}
