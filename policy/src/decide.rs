//! Decisions: what the engine says about one request, and why ([`Verdict`],
//! [`Reason`], [`Decision`]).
//!
//! Precedence, independent of rule order: a matching `deny` rule wins; else a
//! matching `allow` rule; else `default_action`. When several rules of the
//! winning kind match, the one reported is the first by name, so the report is
//! as order-independent as the decision. Anything the engine cannot read with
//! certainty (no certificate, a non-canonical path or method) is denied.
//! Both evaluators apply it: [`crate::compile`] (the index) and
//! [`crate::naive`] (the reference), with the matchers in [`crate::eval`].

use std::fmt;

use crate::canonical::PathRejection;
use crate::model::{Action, Mode, Policy};

pub use crate::eval::principal_matches;
pub use crate::naive::decide_naive;

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

impl<'p> Decision<'p> {
    /// Let the request through?
    pub fn is_allowed(&self) -> bool {
        self.enforced == Verdict::Allow
    }

    /// A deny that dry-run mode let through.
    pub fn is_dry_run_deny(&self) -> bool {
        self.verdict == Verdict::Deny && self.enforced == Verdict::Allow
    }

    /// The rule name, or `"default"` — for headers, logs and metrics. Borrows
    /// the policy, not the decision, so an outcome can outlive the decision value.
    pub fn rule_label(&self) -> &'p str {
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

/// The decision once the rules have been looked at, given the reported deny
/// and allow rule that matched (each the first by name): a deny wins, then
/// an allow, else the policy's `default_action`. Both evaluators end here.
pub(crate) fn conclude<'p>(policy: &Policy, deny: Option<&'p str>, allow: Option<&'p str>) -> Decision<'p> {
    match (deny, allow) {
        (Some(name), _) => make_decision(policy.mode, Verdict::Deny, Some(name), Reason::Rule(Action::Deny)),
        (None, Some(name)) => make_decision(policy.mode, Verdict::Allow, Some(name), Reason::Rule(Action::Allow)),
        (None, None) => {
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
            let well_formed = code
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
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
