//! What a decision looks like from outside: the 403 body and the log line.
//!
//! Both carry content the client controls (the path, the method) or the
//! certificate's owner chose (the name), so the body is built with
//! `serde_json` string escaping and the log line with [`escape::log_field`].

use mtls_authz_policy::{Decision, Identity, PrincipalFormat, Reason};

use crate::escape;

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
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Deny => "deny",
            Event::DryRunDeny => "dry-run deny",
        }
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
    let mut line = format!(
        "mtls-authz: {} principal=\"{principal}\" sha256={} method=\"{method}\" path=\"{path}\" rule={rule} reason=\"{}\" revision={}",
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
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtls_authz_policy::{Action, PathRejection, Verdict};

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
    fn body_without_rule_has_null() {
        let body = deny_body(true, &deny(None, Reason::Path(PathRejection::DotSegment)));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["rule"], serde_json::Value::Null);
        assert_eq!(v["reason"], "path has a '.' or '..' segment");
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
    fn log_line_without_identity() {
        let line = log_line(Event::DryRunDeny, &Facts::default(), &deny(None, Reason::NoPeerCertificate));
        assert_eq!(
            line,
            "mtls-authz: dry-run deny principal=\"-\" sha256=- method=\"-\" path=\"-\" rule=- \
             reason=\"no verified client certificate on the connection\" revision=-"
        );
    }
}
