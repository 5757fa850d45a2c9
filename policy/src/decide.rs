//! Decisions: what the engine says about one request, and why.
//!
//! Precedence, independent of rule order: a matching `deny` rule wins; else a
//! matching `allow` rule; else `default_action`. When several rules of the
//! winning kind match, the one reported is the first by name, so the report is
//! as order-independent as the decision. Anything the engine cannot read with
//! certainty (no certificate, a non-canonical path or method) is denied.

use std::fmt;

use crate::canonical::{self, CanonicalPath, PathRejection};
use crate::identity::Identity;
use crate::model::{Action, MethodOverrides, Mode, Policy, Principal, Rule};
use crate::overrides;
use crate::pattern::{dns_name, Placeholder};

/// The outcome for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    /// `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// Why the engine decided as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule with this action matched.
    Rule(Action),
    /// No rule matched; the policy's `default_action` applied.
    Default(Action),
    /// The connection carries no verified client certificate.
    NoPeerCertificate,
    /// The peer certificate could not be parsed.
    UnreadableCertificate,
    /// The request has no path or method to decide on.
    MissingRequestData,
    /// The path has no single safe reading.
    Path(PathRejection),
    /// The method is not an upper-case HTTP token.
    Method,
    /// The request asks the backend to use another method or path
    /// (`X-HTTP-Method-Override`, `X-Original-URL`, `_method` in the query
    /// or in a POST body a framework parses).
    Override,
    /// A POST body that a framework parses carries `_method`.
    BodyOverride,
    /// A POST body that must be read for a method override is larger than
    /// the policy's `body_inspection_limit`.
    BodyTooLarge,
    /// A POST body that must be read for a method override cannot be read
    /// here the way a backend may read it (compressed, a charset that is not
    /// ASCII-compatible, JSON this parser refuses, trailers after the body).
    BodyUnreadable,
    /// Something inside the proxy adapter failed; fail closed.
    Internal,
}

impl Reason {
    /// Every reason, each once: the ones without a [`PathRejection`], then
    /// [`Reason::Path`] of each of [`PathRejection::ALL`]. What
    /// filter/constants.json lists, keyed by [`Reason::code`]. A new variant
    /// goes here too.
    pub fn all() -> impl Iterator<Item = Reason> {
        [
            Reason::Rule(Action::Allow),
            Reason::Rule(Action::Deny),
            Reason::Default(Action::Allow),
            Reason::Default(Action::Deny),
            Reason::NoPeerCertificate,
            Reason::UnreadableCertificate,
            Reason::MissingRequestData,
            Reason::Method,
            Reason::Override,
            Reason::BodyOverride,
            Reason::BodyTooLarge,
            Reason::BodyUnreadable,
            Reason::Internal,
        ]
        .into_iter()
        .chain(PathRejection::ALL.into_iter().map(Reason::Path))
    }

    /// A stable machine name (`no_peer_certificate`, `rule.deny`,
    /// `path.dot_segment`): the e2e suites and bench find a reason's wording
    /// by its code in filter/constants.json, so rewording
    /// [`Reason::as_str`] changes no key and copies no string.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Rule(Action::Allow) => "rule.allow",
            Reason::Rule(Action::Deny) => "rule.deny",
            Reason::Default(Action::Allow) => "default.allow",
            Reason::Default(Action::Deny) => "default.deny",
            Reason::NoPeerCertificate => "no_peer_certificate",
            Reason::UnreadableCertificate => "unreadable_certificate",
            Reason::MissingRequestData => "missing_request_data",
            Reason::Path(p) => p.code(),
            Reason::Method => "method",
            Reason::Override => "override",
            Reason::BodyOverride => "body_override",
            Reason::BodyTooLarge => "body_too_large",
            Reason::BodyUnreadable => "body_unreadable",
            Reason::Internal => "internal",
        }
    }

    /// A short, stable phrase for logs, metrics and 403 bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule(Action::Allow) => "matched an allow rule",
            Reason::Rule(Action::Deny) => "matched a deny rule",
            Reason::Default(Action::Allow) => "no rule matched; default_action is allow",
            Reason::Default(Action::Deny) => "no rule matched; default_action is deny",
            Reason::NoPeerCertificate => "no verified client certificate on the connection",
            Reason::UnreadableCertificate => "the client certificate could not be parsed",
            Reason::MissingRequestData => "the request has no path or method",
            Reason::Path(p) => p.as_str(),
            Reason::Method => "method is not an upper-case HTTP token",
            Reason::Override => "request asks the backend to override its method or path",
            Reason::BodyOverride => "request body asks the backend to override its method (_method)",
            Reason::BodyTooLarge => "request body is too large to check for a method override",
            Reason::BodyUnreadable => "request body cannot be checked for a method override",
            Reason::Internal => "internal error in the authorization filter",
        }
    }
}

impl Reason {
    /// The status of the local reply that refuses a request for this reason:
    /// 413 for a body too large to check, 403 for everything else.
    pub fn deny_status(self) -> u32 {
        match self {
            Reason::BodyTooLarge => 413,
            _ => 403,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// What the policy says.
    pub verdict: Verdict,
    /// What the proxy must do: the verdict, except that dry-run mode turns a deny into an allow.
    pub enforced: Verdict,
    /// The rule that decided, or `None` when the default (or a refusal) did.
    pub rule: Option<&'p str>,
    /// Why.
    pub reason: Reason,
}

impl Decision<'_> {
    /// Let the request through?
    pub fn is_allowed(&self) -> bool {
        self.enforced == Verdict::Allow
    }

    /// A deny that dry-run mode let through.
    pub fn is_dry_run_deny(&self) -> bool {
        self.verdict == Verdict::Deny && self.enforced == Verdict::Allow
    }

    /// The rule name, or `"default"` — for headers, logs and metrics.
    pub fn rule_label(&self) -> &str {
        self.rule.unwrap_or("default")
    }
}

impl Decision<'static> {
    /// A deny that dry-run mode does not soften, for failures of the proxy
    /// adapter itself: letting such a request through would forward it
    /// without the identity headers the upstream relies on.
    pub const fn internal_error() -> Decision<'static> {
        Decision { verdict: Verdict::Deny, enforced: Verdict::Deny, rule: None, reason: Reason::Internal }
    }
}

pub(crate) fn make_decision<'p>(mode: Mode, verdict: Verdict, rule: Option<&'p str>, reason: Reason) -> Decision<'p> {
    let enforced = if mode == Mode::DryRun { Verdict::Allow } else { verdict };
    Decision { verdict, enforced, rule, reason }
}

/// What every request must pass before any rule is looked at: a certificate,
/// a canonical method, a canonical path, and no `_method` in the query
/// unless the policy says its backends ignore it.
pub(crate) fn precheck<'i, 'r>(
    identity: Option<&'i Identity>,
    method: &str,
    path: &'r str,
    method_overrides: MethodOverrides,
) -> Result<(&'i Identity, CanonicalPath<'r>), Reason> {
    let identity = identity.ok_or(Reason::NoPeerCertificate)?;
    if !canonical::is_canonical_method(method) {
        return Err(Reason::Method);
    }
    let canonical = canonical::canonicalize(path).map_err(Reason::Path)?;
    if method_overrides == MethodOverrides::Refuse && overrides::query_overrides_method(path) {
        return Err(Reason::Override);
    }
    let path = canonical;
    Ok((identity, path))
}

/// Can this identity value stand in for a path segment? Never when it is empty,
/// a dot segment, or holds a character that would change the path's shape.
fn usable_in_path(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && !value.chars().any(|c| matches!(c, '/' | '\\' | '%' | ';' | '?' | '#') || c.is_control())
}

/// The last segment of a URI SAN's path (`spiffe://td/ns/x/sa/name` → `name`).
///
/// A URI with a query or fragment has none: a `/` after `?` or `#` is not part
/// of the path, so `spiffe://td/ns/dev/sa/x?/order` must not yield `order`, and
/// SPIFFE IDs never carry either, so such a URI is not a workload's name at all.
fn uri_last_segment(uri: &str) -> Option<&str> {
    if uri.contains(['?', '#']) {
        return None;
    }
    let (_, rest) = uri.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    path.rsplit('/').next()
}

/// Does `segment` equal the identity's value for `placeholder`?
pub(crate) fn placeholder_matches(identity: &Identity, placeholder: Placeholder, segment: &str) -> bool {
    match placeholder {
        Placeholder::Cn => identity.common_name().is_some_and(|cn| usable_in_path(cn) && cn == segment),
        // The same name the dns_san principal compares: without its trailing dot.
        Placeholder::DnsSan => identity.dns_sans.iter().map(|d| dns_name(d)).any(|d| usable_in_path(d) && d == segment),
        // SPIFFE SVIDs carry exactly one URI SAN. With several, which one names
        // "its own" resource is ambiguous, so none does.
        Placeholder::UriSanLastSegment => match identity.uri_sans.as_slice() {
            [only] => uri_last_segment(only).is_some_and(|s| usable_in_path(s) && s == segment),
            _ => false,
        },
    }
}

/// Does the certificate satisfy every field of this principal? `deny` for
/// a deny rule's principal, which reads odd URI SANs the way that catches
/// them ([`crate::pattern::ValuePattern::matches_for_deny`]).
pub fn principal_matches(p: &Principal, id: &Identity, deny: bool) -> bool {
    if p.any {
        return true;
    }
    let single = |pat: &Option<crate::pattern::ValuePattern>, value: Option<&str>| match pat {
        None => true,
        Some(pat) => value.is_some_and(|v| pat.matches(v)),
    };
    let any_of = |pat: &Option<crate::pattern::ValuePattern>, values: &[String]| match pat {
        None => true,
        Some(pat) => values.iter().any(|v| pat.matches(v)),
    };
    single(&p.cn, id.common_name())
        && any_of(&p.o, &id.organizations)
        && any_of(&p.ou, &id.organizational_units)
        && single(&p.issuer_cn, id.issuer_common_name())
        && p.uri_san.as_ref().is_none_or(|pat| id.uri_sans.iter().any(|v| if deny { pat.matches_for_deny(v) } else { pat.matches(v) }))
        && any_of(&p.dns_san, &id.dns_sans)
        && any_of(&p.email_san, &id.email_sans)
        && p.ip_san.as_ref().is_none_or(|net| id.ip_sans.iter().any(|ip| net.contains(ip)))
        && p.serial.as_ref().is_none_or(|s| *s == id.serial)
        && p.sha256.as_ref().is_none_or(|s| *s == id.sha256)
}

/// Does the rule's method list admit `method`?
///
/// A deny rule naming GET also meets HEAD unless it says `head_with_get:
/// false`: backends commonly serve HEAD with the GET handler, so a GET-only
/// deny would leave that handler reachable. Allow rules get no such widening;
/// an allow is only ever what it lists.
pub(crate) fn method_matches(rule: &Rule, method: &str) -> bool {
    rule.methods.as_ref().is_none_or(|ms| {
        let listed = |name: &str| ms.iter().any(|m| m == name);
        listed(method) || (method == "HEAD" && rule.action == Action::Deny && rule.head_with_get && listed("GET"))
    })
}

/// The reference evaluator: every rule, every pattern, no index. Slow and
/// obviously correct; property tests and fuzzers hold the compiled index to it.
pub fn decide_naive<'p>(policy: &'p Policy, identity: Option<&Identity>, method: &str, path: &str) -> Decision<'p> {
    let (id, canonical) = match precheck(identity, method, path, policy.method_overrides) {
        Ok(x) => x,
        Err(reason) => return make_decision(policy.mode, Verdict::Deny, None, reason),
    };
    let segments: Vec<&str> = canonical.segments().collect();
    let placeholder = |p: Placeholder, seg: &str| placeholder_matches(id, p, seg);
    let mut best: [Option<&'p str>; 2] = [None, None]; // [deny, allow]
    for rule in &policy.rules {
        let hit = method_matches(rule, method)
            && rule.paths.iter().any(|p| p.matches(&segments, &placeholder))
            && rule.principals.iter().any(|p| principal_matches(p, id, rule.action == Action::Deny));
        if hit {
            let slot = &mut best[usize::from(rule.action == Action::Allow)];
            if slot.is_none_or(|name| rule.name.as_str() < name) {
                *slot = Some(rule.name.as_str());
            }
        }
    }
    match best {
        [Some(name), _] => make_decision(policy.mode, Verdict::Deny, Some(name), Reason::Rule(Action::Deny)),
        [None, Some(name)] => make_decision(policy.mode, Verdict::Allow, Some(name), Reason::Rule(Action::Allow)),
        [None, None] => {
            let verdict = match policy.default_action {
                Action::Allow => Verdict::Allow,
                Action::Deny => Verdict::Deny,
            };
            make_decision(policy.mode, verdict, None, Reason::Default(policy.default_action))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiffe(uri: &str) -> Identity {
        Identity { uri_sans: vec![uri.into()], ..Identity::default() }
    }

    #[test]
    fn uri_last_segment_is_the_last_segment_of_the_path() {
        assert_eq!(uri_last_segment("spiffe://shop.test/ns/prod/sa/order"), Some("order"));
        assert_eq!(uri_last_segment("spiffe://shop.test/order"), Some("order"));
        assert_eq!(uri_last_segment("spiffe://shop.test"), None, "no path, no segment");
        assert_eq!(uri_last_segment("urn:x:order"), None);
    }

    #[test]
    fn a_uri_with_a_query_or_fragment_has_no_last_segment() {
        for uri in [
            "spiffe://shop.test/ns/dev/sa/x?/order",
            "spiffe://shop.test/ns/dev/sa/x#/order",
            "spiffe://shop.test/ns/dev/sa/order?x=1",
            "spiffe://shop.test/ns/dev/sa/order#",
            "spiffe://shop.test?/order",
            "spiffe://shop.test#/order",
        ] {
            assert_eq!(uri_last_segment(uri), None, "{uri}");
        }
    }

    #[test]
    fn a_query_or_fragment_never_supplies_a_uri_placeholder_value() {
        for uri in ["spiffe://shop.test/ns/dev/sa/x?/order", "spiffe://shop.test/ns/dev/sa/x#/order", "spiffe://shop.test/ns/prod/sa/order#"] {
            let id = spiffe(uri);
            assert!(!placeholder_matches(&id, Placeholder::UriSanLastSegment, "order"), "{uri}");
            assert!(!placeholder_matches(&id, Placeholder::UriSanLastSegment, "x"), "{uri}");
        }
        assert!(placeholder_matches(&spiffe("spiffe://shop.test/ns/prod/sa/order"), Placeholder::UriSanLastSegment, "order"));
    }

    fn policy(rules: &str) -> Policy {
        Policy::from_json(&format!(r#"{{"version": 1, "default_action": "allow", "rules": [{rules}]}}"#)).unwrap()
    }

    fn anyone() -> Identity {
        Identity { common_names: vec!["x".into()], ..Identity::default() }
    }

    #[test]
    fn a_deny_rule_on_get_also_denies_head() {
        let p = policy(r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"]}"#);
        let d = decide_naive(&p, Some(&anyone()), "HEAD", "/export");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("no-export")));
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Deny);
        assert_eq!(decide_naive(&p, Some(&anyone()), "POST", "/export").verdict, Verdict::Allow, "only HEAD follows GET");
        assert_eq!(decide_naive(&p, Some(&anyone()), "OPTIONS", "/export").verdict, Verdict::Allow);
    }

    #[test]
    fn head_with_get_false_keeps_head_out_of_a_deny_rule() {
        let p = policy(r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"], "head_with_get": false}"#);
        assert_eq!(decide_naive(&p, Some(&anyone()), "HEAD", "/export").verdict, Verdict::Allow);
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Deny);
    }

    #[test]
    fn allowing_get_does_not_allow_head() {
        let mut p = policy(r#"{"name": "read", "action": "allow", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"]}"#);
        p.default_action = Action::Deny;
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Allow);
        let d = decide_naive(&p, Some(&anyone()), "HEAD", "/export");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    }

    #[test]
    fn head_follows_get_only_for_deny_rules_even_when_built_by_hand() {
        // The validator refuses head_with_get on allow rules; the matcher does not rely on that.
        let mut p = policy(r#"{"name": "read", "action": "allow", "principals": [{"any": true}], "paths": ["/"], "methods": ["GET"]}"#);
        p.default_action = Action::Deny;
        assert!(p.rules[0].head_with_get);
        assert!(!method_matches(&p.rules[0], "HEAD"));
        p.rules[0].action = Action::Deny;
        assert!(method_matches(&p.rules[0], "HEAD"));
        p.rules[0].head_with_get = false;
        assert!(!method_matches(&p.rules[0], "HEAD"));
    }

    #[test]
    fn dns_san_placeholder_is_the_name_without_its_trailing_dot() {
        let id = Identity { dns_sans: vec!["api.shop.test.".into()], ..Identity::default() };
        assert!(placeholder_matches(&id, Placeholder::DnsSan, "api.shop.test"));
        assert!(!placeholder_matches(&id, Placeholder::DnsSan, "api.shop.test."), "one spelling, the one a dns_san principal matches");
        let dot = Identity { dns_sans: vec![".".into(), "..".into()], ..Identity::default() };
        assert!(!placeholder_matches(&dot, Placeholder::DnsSan, "."), "a bare root name is no path segment");
        assert!(!placeholder_matches(&dot, Placeholder::DnsSan, ""));
    }

    #[test]
    fn reason_codes_and_phrases_are_unique_and_codes_are_dotted_snake_case() {
        // The e2e suites find a reason by its code and compare its phrase
        // with the 403 body's: two reasons sharing either could not be told
        // apart there, and a reason listed twice would share both.
        let all: Vec<Reason> = Reason::all().collect();
        assert_eq!(all.len(), 13 + PathRejection::ALL.len());
        let mut codes: Vec<&str> = all.iter().map(|r| r.code()).collect();
        let mut phrases: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
        for code in &codes {
            let well_formed = code.split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            assert!(well_formed, "{code:?} is not dotted snake_case");
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "two reasons share a code");
        phrases.sort_unstable();
        phrases.dedup();
        assert_eq!(phrases.len(), all.len(), "two reasons share a phrase");
    }
}
