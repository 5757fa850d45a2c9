//! Per-rule and per-identity counters: what they are called, and how an
//! arbitrary certificate value becomes a safe part of a stat name.
//!
//! Envoy stats have no labels of their own: a label is a part of the name
//! that a `stats_tags` regex in the bootstrap cuts out and turns into a tag,
//! which `/stats/prometheus` prints as a label. So the rule's or the
//! caller's name goes *into* the stat name, between fixed parts the regexes
//! ([`TAG_EXTRACTORS`]) anchor on:
//!
//! ```text
//! wasmcustom.mtls_authz.rule.globex-orders.requests_allowed
//!   -> mtls_authz_rule_requests_allowed{rule="globex-orders"}
//! wasmcustom.mtls_authz.identity.Globex Corporation.requests_allowed
//!   -> mtls_authz_identity_requests_allowed{identity="Globex Corporation"}
//! ```
//!
//! A certificate value is chosen by whoever asked the CA for it, so it is
//! written in a small alphabet first ([`tag_value`]): letters, digits, space
//! and `-_,@/+.` as they are, every other byte `%XX`. That keeps quotes,
//! newlines, `;`, `=`, non-ASCII and Envoy's own separators out of the name,
//! is injective (`%` itself is escaped), and a `.` never starts, ends or
//! doubles (Envoy splits names on dots). Values that are not names
//! ([`NO_RULE_DEFAULT`] and the others) start with `~`, which an escaped value
//! never does, so a certificate cannot pose as one.

use crate::decide::{Decision, Reason};
use crate::identity_field::IdentityField;

/// What one counter counts about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Count {
    Allowed,
    Denied,
    DryRunDenied,
    /// Refused with 429 by a rate limit (also counted as denied).
    RateLimited,
    /// Over a dry-run limit: let through (also counted as allowed).
    RateLimitedDryRun,
}

impl Count {
    pub const ALL: [Count; 5] = [Count::Allowed, Count::Denied, Count::DryRunDenied, Count::RateLimited, Count::RateLimitedDryRun];

    /// Position in [`Count::ALL`], for fixed-size tables of counter ids.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The last part of the stat name.
    pub fn suffix(self) -> &'static str {
        match self {
            Count::Allowed => "requests_allowed",
            Count::Denied => "requests_denied",
            Count::DryRunDenied => "requests_dry_run_denied",
            Count::RateLimited => "requests_rate_limited",
            Count::RateLimitedDryRun => "requests_rate_limited_dry_run",
        }
    }
}

/// The `rule` label of a decision no rule made: the policy's `default_action`.
pub const NO_RULE_DEFAULT: &str = "~default";
/// The `rule` label of a request refused before any rule was looked at
/// (no certificate, a non-canonical path, an override).
pub const NO_RULE_REFUSED: &str = "~refused";
/// The `identity` label of a caller whose certificate lacks the field.
pub const IDENTITY_NONE: &str = "~none";
/// The `identity` label of every caller past `max_identities`.
pub const IDENTITY_OTHER: &str = "~other";

/// The stat name prefix of per-rule counters (before Envoy's `wasmcustom.`).
pub const RULE_PREFIX: &str = "mtls_authz.rule.";
/// The stat name prefix of per-identity counters.
pub const IDENTITY_PREFIX: &str = "mtls_authz.identity.";

/// The bootstrap's `stats_config.stats_tags` that turn the names into labels:
/// (tag name, regex). The first group is cut from the name, the second is
/// the value. `(.+)` is greedy because a value may hold dots; the suffix is fixed.
pub const TAG_EXTRACTORS: [(&str, &str); 2] = [
    ("rule", r"^wasmcustom\.mtls_authz\.rule\.((.+)\.)requests_[a-z_]+$"),
    ("identity", r"^wasmcustom\.mtls_authz\.identity\.((.+)\.)requests_[a-z_]+$"),
];

/// Default and largest `max_identities`.
pub const DEFAULT_MAX_IDENTITIES: u32 = 100;
pub const MAX_MAX_IDENTITIES: u32 = 10_000;

/// The policy's `metrics` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Counters per rule (default on): their number is bounded by the rules.
    pub per_rule: bool,
    /// Counters per caller, opt-in: the field that names the caller and the cap.
    pub per_identity: Option<PerIdentity>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { per_rule: true, per_identity: None }
    }
}

/// Opt-in per-identity counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerIdentity {
    pub field: IdentityField,
    /// How many distinct callers get their own counters, per Envoy instance;
    /// the rest are counted under [`IDENTITY_OTHER`].
    pub max_identities: u32,
}

/// Longest tag value written whole; a longer one is cut and given a hash, so
/// two long names stay two counters.
pub const TAG_VALUE_MAX: usize = 128;

fn safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b',' | b'@' | b'/' | b'+' | b'.')
}

/// `text` in the stat-name alphabet (the module documentation says which).
pub fn tag_value(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if text.is_empty() {
        return "~empty".to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let edge_dot = b == b'.' && (i == 0 || i + 1 == bytes.len() || bytes.get(i + 1) == Some(&b'.'));
        if safe(b) && !edge_dot {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    if out.len() <= TAG_VALUE_MAX {
        return out;
    }
    // Cut (not inside a %XX), then the hash of the whole value.
    let mut cut = TAG_VALUE_MAX - 24;
    while out.as_bytes().get(cut.saturating_sub(2)..cut).is_some_and(|w| w.contains(&b'%')) {
        cut -= 1;
    }
    out.truncate(cut);
    out.push('~');
    out.push_str(crate::hex::sha256(bytes).get(..16).unwrap_or_default());
    out
}

/// The `rule` label of a decision: the rule's name, [`NO_RULE_DEFAULT`]
/// when the default action decided, [`NO_RULE_REFUSED`] when the request
/// was refused before any rule.
pub fn rule_label(decision: &Decision<'_>) -> String {
    match decision.rule {
        Some(name) => tag_value(name),
        None => rule_key(decision).to_owned(),
    }
}

/// What [`rule_label`] is made from, without making it: the deciding
/// rule's name, else [`NO_RULE_DEFAULT`] or [`NO_RULE_REFUSED`] (no rule
/// name starts with `~`). Equal keys give equal labels, so a proxy can keep a
/// counter's id by key and skip building the stat name on every request.
pub fn rule_key<'a>(decision: &Decision<'a>) -> &'a str {
    match decision.rule {
        Some(name) => name,
        None if matches!(decision.reason, Reason::Default(_)) => NO_RULE_DEFAULT,
        None => NO_RULE_REFUSED,
    }
}

/// The stat name of a per-rule counter, for a [`rule_label`].
pub fn rule_stat(label: &str, count: Count) -> String {
    format!("{RULE_PREFIX}{label}.{}", count.suffix())
}

/// The stat name of a per-identity counter; `label` is a [`tag_value`] or one of the `~` names.
pub fn identity_stat(label: &str, count: Count) -> String {
    format!("{IDENTITY_PREFIX}{label}.{}", count.suffix())
}

/// The `identity` label of a caller (before the cap): its value of the
/// policy's field, [`IDENTITY_NONE`] without one.
pub fn identity_label(per: PerIdentity, identity: Option<&crate::identity::Identity>) -> String {
    identity.and_then(|id| per.field.value(id)).map_or_else(|| IDENTITY_NONE.to_owned(), |v| tag_value(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_spelling_and_hostile_bytes_are_escaped() {
        assert_eq!(tag_value("Globex Corporation"), "Globex Corporation");
        assert_eq!(tag_value("api.globex.test"), "api.globex.test");
        assert_eq!(tag_value("evil\";.;rule=x\n"), "evil%22%3B.%3Brule%3Dx%0A");
        assert_eq!(tag_value(".a..b."), "%2Ea%2E.b%2E");
        assert_eq!(tag_value("Müller"), "M%C3%BCller");
        assert_eq!(tag_value("~default"), "%7Edefault", "a certificate cannot pose as a marker");
        assert_eq!(tag_value("100%"), "100%25");
        assert_eq!(tag_value(""), "~empty");
    }

    #[test]
    fn long_values_are_cut_and_stay_distinct() {
        let a = tag_value(&format!("{}a", "x".repeat(300)));
        let b = tag_value(&format!("{}b", "x".repeat(300)));
        assert!(a.len() <= TAG_VALUE_MAX && b.len() <= TAG_VALUE_MAX, "{a}");
        assert_ne!(a, b);
        let escaped = tag_value(&"\"".repeat(100));
        assert!(!escaped.contains("%~") && !escaped.contains("%2~"), "no %XX cut in half: {escaped}");
    }

    #[test]
    fn stat_names_match_the_tag_extractors() {
        use crate::{Action, Verdict};
        let decided = |rule, reason| Decision { verdict: Verdict::Deny, enforced: Verdict::Deny, rule, reason };
        let label = rule_label(&decided(Some("globex-orders"), Reason::Rule(Action::Allow)));
        assert_eq!(rule_stat(&label, Count::Allowed), "mtls_authz.rule.globex-orders.requests_allowed");
        assert_eq!(rule_label(&decided(None, Reason::Default(Action::Deny))), "~default");
        assert_eq!(rule_label(&decided(None, Reason::NoPeerCertificate)), "~refused");
        let per = PerIdentity { field: IdentityField::O, max_identities: 1 };
        assert_eq!(identity_stat(&identity_label(per, None), Count::RateLimited), "mtls_authz.identity.~none.requests_rate_limited");
        for count in Count::ALL {
            assert!(count.suffix().starts_with("requests_"));
        }
    }

    #[test]
    fn equal_rule_keys_give_equal_labels_and_counts_index_their_table() {
        use crate::{Action, Verdict};
        let decided = |rule, reason| Decision { verdict: Verdict::Deny, enforced: Verdict::Deny, rule, reason };
        let decisions = [
            decided(Some("globex-orders"), Reason::Rule(Action::Allow)),
            decided(Some("globex-orders"), Reason::Rule(Action::Deny)),
            decided(Some("other"), Reason::Rule(Action::Allow)),
            decided(None, Reason::Default(Action::Deny)),
            decided(None, Reason::Default(Action::Allow)),
            decided(None, Reason::NoPeerCertificate),
            decided(None, Reason::MissingRequestData),
        ];
        for a in &decisions {
            for b in &decisions {
                assert_eq!(rule_key(a) == rule_key(b), rule_label(a) == rule_label(b), "{a:?} {b:?}");
            }
        }
        assert_eq!(rule_key(&decisions[3]), NO_RULE_DEFAULT);
        assert_eq!(rule_key(&decisions[5]), NO_RULE_REFUSED);
        for (i, count) in Count::ALL.into_iter().enumerate() {
            assert_eq!(count.index(), i, "{count:?}");
        }
    }
}
