//! What the proxy does with a decision, as the outside sees it: the filter's
//! headers on an allowed request, the local reply that refuses one, and the
//! log line. The filter only carries these out (host calls), and
//! `mtls-authz explain` prints the same values, so what the CLI shows is what
//! the upstream and the client get.
//!
//! These carry content the client controls (the path, the method) or the
//! certificate's owner chose (the name), so the body is built with
//! `serde_json` string escaping, header values with
//! [`escape::header_value`], and the log line with [`escape::log_field`].

use std::borrow::Cow;

use crate::compile::CompiledPolicy;
use crate::escape;
use crate::grpc;
use crate::{Decision, Identity, PrincipalFormat, Reason};

/// Who the caller is, for the upstream: [`Identity::upstream_principal`] in the
/// policy's `principal_format`.
pub const PRINCIPAL_HEADER: &str = crate::principal::HEADER;
/// Which rule decided (`default` when no rule did). On a dry-run deny that is
/// the rule that *would* have denied, next to [`DRY_RUN_HEADER`].
pub const RULE_HEADER: &str = "x-mtls-authz-rule";
/// Present (`deny`) only when a dry-run policy would have denied the request.
pub const DRY_RUN_HEADER: &str = "x-mtls-authz-dry-run";
/// The `revision` of the policy that judged the request, so that during a
/// reload an operator can tell which version decided: on the upstream request
/// when it is let through, and on the 403 when the policy shows deny details.
/// Absent when the policy has no revision.
pub const REVISION_HEADER: &str = "x-mtls-authz-policy-revision";

/// The headers the filter owns: whatever the client sent under these names is dropped.
pub const OWN_HEADERS: [&str; 4] = [PRINCIPAL_HEADER, RULE_HEADER, DRY_RUN_HEADER, REVISION_HEADER];

/// What happens to one of [`OWN_HEADERS`] on a request that goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamHeader<'a> {
    /// Set to this value, replacing every client-sent copy.
    Set(&'static str, Cow<'a, str>),
    /// Not set on this request (turned off by `upstream_headers`, or nothing
    /// to say): any client-sent copy is removed.
    Clear(&'static str),
}

impl UpstreamHeader<'_> {
    /// The header's name.
    pub fn name(&self) -> &'static str {
        match self {
            UpstreamHeader::Set(name, _) | UpstreamHeader::Clear(name) => name,
        }
    }
}

/// The filter's headers on a request it lets through, one entry for each of
/// [`OWN_HEADERS`] in that order. `identity` is `None` for a dry run without
/// a certificate: nobody to name, and nobody may be named by the client.
pub fn upstream_headers<'a>(
    policy: &'a CompiledPolicy,
    decision: &Decision<'a>,
    identity: Option<&'a Identity>,
) -> [UpstreamHeader<'a>; 4] {
    let wanted = policy.policy().upstream_headers;
    let principal = match identity.filter(|_| wanted.principal) {
        Some(identity) => UpstreamHeader::Set(PRINCIPAL_HEADER, identity.upstream_principal(wanted.principal_format)),
        None => UpstreamHeader::Clear(PRINCIPAL_HEADER),
    };
    let rule = match decision.rule_label() {
        label if wanted.rule => UpstreamHeader::Set(RULE_HEADER, escape::header_value(label)),
        _ => UpstreamHeader::Clear(RULE_HEADER),
    };
    // The dry-run marker is the point of dry-run mode: never turned off.
    let dry_run = if decision.is_dry_run_deny() {
        UpstreamHeader::Set(DRY_RUN_HEADER, Cow::Borrowed("deny"))
    } else {
        UpstreamHeader::Clear(DRY_RUN_HEADER)
    };
    let revision = match policy.revision().filter(|_| wanted.revision) {
        Some(revision) => UpstreamHeader::Set(REVISION_HEADER, escape::header_value(revision)),
        None => UpstreamHeader::Clear(REVISION_HEADER),
    };
    [principal, rule, dry_run, revision]
}

/// The local reply that refuses a request, exactly as it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// 403, or 413 for a body too large to check ([`Reason::deny_status`]);
    /// 200 for a gRPC reply, whose status travels in `grpc-status`.
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// For a gRPC request, the `grpc-status` Envoy sends in the trailers-only
    /// reply ([`grpc::PERMISSION_DENIED`]); the readable message is in `headers`.
    pub grpc_status: Option<u32>,
}

/// The reply for a refused request. `policy` is `None` when the VM has none
/// to name; then the reply says no more than [`MINIMAL_BODY`].
pub fn local_reply(policy: Option<&CompiledPolicy>, decision: &Decision<'_>) -> LocalReply {
    let details = policy.is_some_and(|p| p.policy().deny_response.details);
    let mut headers = vec![("content-type", "application/json".to_owned())];
    // The revision is a detail too: an internet-facing policy (details off) does not show it.
    if let Some(revision) = policy.and_then(CompiledPolicy::revision).filter(|_| details) {
        headers.push((REVISION_HEADER, escape::header_value(revision).into_owned()));
    }
    LocalReply { status: decision.reason.deny_status(), headers, body: deny_body(details, decision), grpc_status: None }
}

/// The reply for a refused gRPC call ([`grpc`]): `grpc-status: 7` and a
/// percent-encoded `grpc-message` sentence, no body. Envoy writes the status
/// and the `application/grpc` content type itself; the filter's headers are
/// the message and, with details on, the revision.
pub fn grpc_reply(policy: Option<&CompiledPolicy>, decision: &Decision<'_>) -> LocalReply {
    let details = policy.is_some_and(|p| p.policy().deny_response.details);
    let mut headers = vec![(grpc::MESSAGE_HEADER, grpc::encode_message(&grpc::message(details, decision)))];
    if let Some(revision) = policy.and_then(CompiledPolicy::revision).filter(|_| details) {
        headers.push((REVISION_HEADER, escape::header_value(revision).into_owned()));
    }
    LocalReply { status: 200, headers, body: Vec::new(), grpc_status: Some(grpc::PERMISSION_DENIED) }
}

/// The refusal `facts` call for: [`grpc_reply`] for a gRPC request, else [`local_reply`].
pub fn refusal(policy: Option<&CompiledPolicy>, decision: &Decision<'_>, facts: &Facts<'_>) -> LocalReply {
    if facts.grpc {
        grpc_reply(policy, decision)
    } else {
        local_reply(policy, decision)
    }
}

/// Everything the proxy does with one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    pub decision: Decision<'a>,
    /// Allowed: the filter's headers on the upstream request.
    pub upstream: Option<[UpstreamHeader<'a>; 4]>,
    /// Refused: the local reply.
    pub reply: Option<LocalReply>,
    /// The log line, for a deny and for a dry-run deny; an allow is not logged.
    pub log: Option<String>,
}

/// The outcome of `decision` for the request `facts` describes.
pub fn outcome<'a>(policy: &'a CompiledPolicy, decision: Decision<'a>, facts: &Facts<'a>) -> Outcome<'a> {
    if decision.is_allowed() {
        let log = decision.is_dry_run_deny().then(|| log_line(Event::DryRunDeny, facts, &decision));
        let upstream = Some(upstream_headers(policy, &decision, facts.identity));
        return Outcome { decision, upstream, reply: None, log };
    }
    let reply = Some(refusal(Some(policy), &decision, facts));
    Outcome { decision, upstream: None, reply, log: Some(log_line(Event::Deny, facts, &decision)) }
}

/// The body when the policy hides details, or when there is no policy to ask.
pub const MINIMAL_BODY: &[u8] = br#"{"error":"forbidden"}"#;

/// The 403 body: `{"error":"forbidden","rule":<name|null>,"reason":"..."}`,
/// or just `{"error":"forbidden"}` when `details` is off (internet-facing
/// listeners should not tell a prober which rule stopped it).
pub fn deny_body(details: bool, decision: &Decision<'_>) -> Vec<u8> {
    if !details {
        return MINIMAL_BODY.to_vec();
    }
    let rule = serde_json::to_string(&decision.rule);
    let reason = serde_json::to_string(decision.reason.as_str());
    match (rule, reason) {
        (Ok(rule), Ok(reason)) => format!(r#"{{"error":"forbidden","rule":{rule},"reason":{reason}}}"#).into_bytes(),
        // Serialising a string cannot fail; if it ever did, say less rather than nothing.
        _ => MINIMAL_BODY.to_vec(),
    }
}

/// What the log line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The request was refused.
    Deny,
    /// The policy denies it, but runs in dry-run mode, so it was let through.
    DryRunDeny,
    /// A connection (L4 mode, [`crate::connection`]) was let through: logged
    /// too, since there is one decision per connection, not per request.
    ConnectionAllow,
    /// A connection was closed.
    ConnectionDeny,
    /// A connection the policy denies, let through in dry-run mode.
    ConnectionDryRunDeny,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Deny => "deny",
            Event::DryRunDeny => "dry-run deny",
            Event::ConnectionAllow => "connection allow",
            Event::ConnectionDeny => "connection deny",
            Event::ConnectionDryRunDeny => "connection dry-run deny",
        }
    }

    /// The event for a connection's decision.
    pub fn for_connection(decision: &Decision<'_>) -> Event {
        if decision.is_dry_run_deny() {
            Event::ConnectionDryRunDeny
        } else if decision.is_allowed() {
            Event::ConnectionAllow
        } else {
            Event::ConnectionDeny
        }
    }

    /// A connection has no method or path to report.
    fn is_connection(self) -> bool {
        matches!(self, Event::ConnectionAllow | Event::ConnectionDeny | Event::ConnectionDryRunDeny)
    }
}

/// The request facts a log line reports; any of them may be unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub identity: Option<&'a Identity>,
    /// Envoy's digest of the peer certificate (lower-case hex), when there was one.
    pub digest: Option<&'a str>,
    pub method: Option<&'a [u8]>,
    pub path: Option<&'a [u8]>,
    /// The method- or path-override header that got the request refused, as the client spelt it.
    pub override_header: Option<&'a [u8]>,
    pub revision: Option<&'a str>,
    /// The request is gRPC ([`grpc::is_grpc_content_type`]): refused with a gRPC status, not a 403.
    pub grpc: bool,
}

/// Hex digits of the certificate fingerprint shown in logs: enough to find the certificate.
const DIGEST_PREFIX: usize = 16;

/// One line, `key=value` pairs, untrusted values quoted and escaped:
/// `mtls-authz: deny principal="..." sha256=0123456789abcdef method="GET" path="/x" rule=r reason="..." revision=v`,
/// and ` header="x-original-url"` at the end when an override header got the request refused.
///
/// The principal is the typed form whatever the policy's `principal_format`:
/// the legacy form is kept for backends that parse it, but whoever reads the
/// log must be able to tell a CN from a URI SAN. The typed form has no `"` or
/// `\`, so the field shows the bytes the upstream would get (cut, like every
/// field, past [`escape::LOG_FIELD_MAX`]).
pub fn log_line(event: Event, facts: &Facts<'_>, decision: &Decision<'_>) -> String {
    let typed = facts.identity.map(|id| id.upstream_principal(PrincipalFormat::Typed));
    let principal = typed.as_deref().map_or("-".into(), |p| escape::log_field(p.as_bytes()));
    let digest = facts.digest.map_or("-", |d| d.get(..DIGEST_PREFIX).unwrap_or(d));
    let method = facts.method.map_or("-".into(), escape::log_field);
    let path = facts.path.map_or("-".into(), escape::log_field);
    // Rule names are restricted to [A-Za-z0-9-_.:] by the policy validator, so they need no quotes.
    let rule = match (decision.rule, decision.reason) {
        (Some(name), _) => name,
        (None, Reason::Default(_)) => "default",
        (None, _) => "-",
    };
    let request = if event.is_connection() { String::new() } else { format!(" method=\"{method}\" path=\"{path}\"") };
    let mut line = format!(
        "mtls-authz: {} principal=\"{principal}\" sha256={}{request} rule={rule} reason=\"{}\" revision={}",
        event.as_str(),
        escape::log_field(digest.as_bytes()),
        decision.reason.as_str(),
        facts.revision.unwrap_or("-"),
    );
    if let (Reason::Override, Some(name)) = (decision.reason, facts.override_header) {
        line.push_str(" header=\"");
        line.push_str(&escape::log_field(name));
        line.push('"');
    }
    // A refused path says which path_reading option would accept it: the
    // operator reading the log is the one who knows the backend.
    if let Some(option) = match decision.reason {
        Reason::Path(rejection) => crate::reading::accepted_by(rejection),
        _ => None,
    } {
        line.push_str(" accepted_by=\"");
        line.push_str(&escape::log_field(option.as_bytes()));
        line.push('"');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, PathRejection, Verdict};

    fn deny(rule: Option<&str>, reason: Reason) -> Decision<'_> {
        Decision { verdict: Verdict::Deny, enforced: Verdict::Deny, rule, reason }
    }

    #[test]
    fn body_with_details_names_rule_and_reason() {
        let body = deny_body(true, &deny(Some("nobody-on-admin"), Reason::Rule(Action::Deny)));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"error": "forbidden", "rule": "nobody-on-admin", "reason": "matched a deny rule"}));
        assert!(body.starts_with(br#"{"error":"forbidden","rule":"#));
    }

    #[test]
    fn a_refused_path_logs_the_option_that_would_accept_it() {
        let facts = Facts { path: Some(b"/admin/login/"), ..Facts::default() };
        let line = log_line(Event::Deny, &facts, &deny(None, Reason::Path(PathRejection::TrailingSlash)));
        assert!(line.contains(r#"accepted_by="path_reading.trailing_slash "#), "{line}");
        let line = log_line(Event::Deny, &facts, &deny(None, Reason::Path(PathRejection::DotSegment)));
        assert!(!line.contains("accepted_by"), "{line}");
    }

    #[test]
    fn body_without_rule_has_null() {
        let body = deny_body(true, &deny(None, Reason::Path(PathRejection::DotSegment)));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["rule"], serde_json::Value::Null);
        assert_eq!(v["reason"], "path has a '.' or '..' segment");
    }

    const POLICY: &str = r#"{"version": 1, "default_action": "deny", "revision": "r1", "rules": [
        {"name": "orders", "action": "allow", "principals": [{"cn": "order-service"}], "paths": ["/a"]}]}"#;

    fn order() -> Identity {
        Identity { common_names: vec!["order-service".into()], ..Identity::default() }
    }

    #[test]
    fn an_allow_sets_every_header_the_policy_wants_and_clears_the_rest() {
        let p = CompiledPolicy::from_json(POLICY).unwrap();
        let id = order();
        let d = p.decide(Some(&id), "GET", "/a");
        let headers = upstream_headers(&p, &d, Some(&id));
        assert_eq!(
            headers,
            [
                UpstreamHeader::Set(PRINCIPAL_HEADER, "cn=order-service".into()),
                UpstreamHeader::Set(RULE_HEADER, "orders".into()),
                UpstreamHeader::Clear(DRY_RUN_HEADER),
                UpstreamHeader::Set(REVISION_HEADER, "r1".into()),
            ]
        );
        assert_eq!(headers.iter().map(UpstreamHeader::name).collect::<Vec<_>>(), OWN_HEADERS);
        let off = CompiledPolicy::from_json(&POLICY.replacen(
            r#""revision": "r1","#,
            r#""revision": "r1", "upstream_headers": {"principal": false, "rule": false, "revision": false},"#,
            1,
        ))
        .unwrap();
        let d = off.decide(Some(&id), "GET", "/a");
        assert!(upstream_headers(&off, &d, Some(&id)).iter().all(|h| matches!(h, UpstreamHeader::Clear(_))));
        let dry = CompiledPolicy::from_json(&POLICY.replacen(r#""revision": "r1","#, r#""mode": "dry_run","#, 1)).unwrap();
        let d = dry.decide(Some(&id), "GET", "/other");
        assert_eq!(upstream_headers(&dry, &d, Some(&id))[1], UpstreamHeader::Set(RULE_HEADER, "default".into()));
        assert_eq!(upstream_headers(&dry, &d, None)[2], UpstreamHeader::Set(DRY_RUN_HEADER, "deny".into()));
        assert_eq!(upstream_headers(&dry, &d, None)[0], UpstreamHeader::Clear(PRINCIPAL_HEADER), "nobody to name");
    }

    #[test]
    fn a_refusal_is_the_reply_as_sent_and_one_log_line() {
        let p = CompiledPolicy::from_json(POLICY).unwrap();
        let id = order();
        let d = p.decide(Some(&id), "GET", "/nope");
        let facts = Facts { identity: Some(&id), method: Some(b"GET"), path: Some(b"/nope"), revision: p.revision(), ..Facts::default() };
        let o = outcome(&p, d, &facts);
        assert_eq!(o.upstream, None);
        let reply = o.reply.unwrap();
        assert_eq!(reply.status, 403);
        assert_eq!(reply.headers, [("content-type", "application/json".to_owned()), (REVISION_HEADER, "r1".to_owned())]);
        assert_eq!(reply.body, br#"{"error":"forbidden","rule":null,"reason":"no rule matched; default_action is deny"}"#);
        assert!(o.log.unwrap().starts_with(r#"mtls-authz: deny principal="cn=order-service" "#));
        let hidden = CompiledPolicy::from_json(&POLICY.replacen(
            r#""revision": "r1","#,
            r#""revision": "r1", "deny_response": {"details": false},"#,
            1,
        ))
        .unwrap();
        let reply = local_reply(Some(&hidden), &hidden.decide(Some(&id), "GET", "/nope"));
        assert_eq!((reply.headers.len(), reply.body.as_slice()), (1, MINIMAL_BODY), "no rule, reason or revision");
        assert_eq!(local_reply(None, &Decision::internal_error()).body, MINIMAL_BODY);
        assert_eq!(local_reply(Some(&p), &p.refuse(Reason::BodyTooLarge)).status, 413);
        let allowed = outcome(&p, p.decide(Some(&id), "GET", "/a"), &facts);
        assert!(allowed.reply.is_none() && allowed.log.is_none() && allowed.upstream.is_some(), "an allow is not logged");
    }

    #[test]
    fn a_refused_grpc_call_gets_status_7_and_a_sentence() {
        let p = CompiledPolicy::from_json(POLICY).unwrap();
        let id = order();
        let facts = Facts { identity: Some(&id), grpc: true, ..Facts::default() };
        let o = outcome(&p, p.decide(Some(&id), "POST", "/etcdserverpb.KV/Put"), &facts);
        let reply = o.reply.unwrap();
        assert_eq!((reply.status, reply.grpc_status, reply.body.len()), (200, Some(grpc::PERMISSION_DENIED), 0));
        assert_eq!(
            reply.headers,
            [(grpc::MESSAGE_HEADER, "forbidden: no rule matched; default_action is deny".to_owned()), (REVISION_HEADER, "r1".to_owned())]
        );
        let hidden =
            CompiledPolicy::from_json(&POLICY.replacen(r#""revision": "r1","#, r#""deny_response": {"details": false},"#, 1)).unwrap();
        let reply = refusal(Some(&hidden), &hidden.decide(Some(&id), "POST", "/x"), &facts);
        assert_eq!(reply.headers, [(grpc::MESSAGE_HEADER, "forbidden".to_owned())], "details off: no reason, rule or revision");
        assert_eq!(grpc_reply(None, &Decision::internal_error()).grpc_status, Some(grpc::PERMISSION_DENIED), "fails closed too");
        let http = refusal(Some(&p), &p.decide(Some(&id), "POST", "/x"), &Facts::default());
        assert_eq!((http.status, http.grpc_status), (403, None), "other requests keep the 403");
    }

    #[test]
    fn body_without_details_is_minimal() {
        assert_eq!(deny_body(false, &deny(Some("r"), Reason::Rule(Action::Deny))), MINIMAL_BODY);
    }

    #[test]
    fn log_line_escapes_untrusted_fields() {
        let id = Identity { common_names: vec!["evil\" rule=ok\nmtls-authz: allow".into()], ..Identity::default() };
        let digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let facts = Facts {
            identity: Some(&id),
            digest: Some(digest),
            method: Some(b"GET"),
            path: Some(b"/a\"b\r\n"),
            override_header: None,
            revision: Some("r1"),
            grpc: false,
        };
        let line = log_line(Event::Deny, &facts, &deny(None, Reason::Default(Action::Deny)));
        assert_eq!(
            line,
            "mtls-authz: deny principal=\"cn=evil%22%20rule=ok%0Amtls-authz:%20allow\" sha256=0123456789abcdef \
             method=\"GET\" path=\"/a\\\"b\\x0D\\x0A\" rule=default reason=\"no rule matched; default_action is deny\" revision=r1"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn log_line_principal_is_the_typed_value_the_upstream_gets() {
        let real = Identity { uri_sans: vec!["spiffe://shop.test/ns/prod/sa/order".into()], ..Identity::default() };
        let impostor = Identity { common_names: vec!["spiffe://shop.test/ns/prod/sa/order".into()], ..Identity::default() };
        for (id, shown) in [(&real, "uri=spiffe://shop.test/ns/prod/sa/order"), (&impostor, "cn=spiffe://shop.test/ns/prod/sa/order")] {
            let facts = Facts { identity: Some(id), ..Facts::default() };
            let line = log_line(Event::Deny, &facts, &deny(None, Reason::Default(Action::Deny)));
            assert!(line.starts_with(&format!("mtls-authz: deny principal=\"{shown}\" ")), "{line}");
            assert_eq!(shown, id.upstream_principal(PrincipalFormat::Typed), "the log shows the header's bytes");
        }
    }

    #[test]
    fn log_line_names_the_override_header_only_when_it_decided() {
        let facts = Facts { override_header: Some(b"X-Original-URL\""), ..Facts::default() };
        let line = log_line(Event::Deny, &facts, &deny(None, Reason::Override));
        assert!(line.ends_with(" revision=- header=\"X-Original-URL\\\"\""), "{line}");
        let line = log_line(Event::Deny, &facts, &deny(None, Reason::NoPeerCertificate));
        assert!(line.ends_with(" revision=-"), "{line}");
    }

    #[test]
    fn a_connection_line_has_no_method_or_path() {
        let id = Identity { common_names: vec!["dev-1".into()], ..Identity::default() };
        let facts = Facts { identity: Some(&id), revision: Some("m1"), ..Facts::default() };
        let d = deny(Some("stolen"), Reason::Rule(Action::Deny));
        assert_eq!(Event::for_connection(&d), Event::ConnectionDeny);
        assert_eq!(
            log_line(Event::for_connection(&d), &facts, &d),
            "mtls-authz: connection deny principal=\"cn=dev-1\" sha256=- rule=stolen reason=\"matched a deny rule\" revision=m1"
        );
    }

    #[test]
    fn log_line_without_identity() {
        let line = log_line(Event::DryRunDeny, &Facts::default(), &deny(None, Reason::NoPeerCertificate));
        assert_eq!(
            line,
            "mtls-authz: dry-run deny principal=\"-\" sha256=- method=\"-\" path=\"-\" rule=- \
             reason=\"no verified client certificate on the connection\" revision=-"
        );
    }
}
