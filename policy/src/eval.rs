//! What both evaluators share: the checks every request passes before any
//! rule, and whether a rule's methods, principals and path placeholders match.

use crate::canonical::{self, CanonicalPath};
use crate::decide::Reason;
use crate::identity::Identity;
use crate::model::{Action, Condition, MethodOverrides, Principal, Rule};
use crate::overrides;
use crate::pattern::{dns_name, Placeholder};
use crate::reading::{Merge, PathReading};

/// What every request must pass before any rule is looked at: a certificate,
/// a canonical method, a canonical path, and no `_method` in the query
/// unless the policy says its backends ignore it.
pub(crate) fn precheck<'i, 'r>(
    identity: Option<&'i Identity>,
    method: &str,
    path: &'r str,
    method_overrides: MethodOverrides,
    reading: &PathReading,
) -> Result<(&'i Identity, CanonicalPath<'r>), Reason> {
    let identity = identity.ok_or(Reason::NoPeerCertificate)?;
    if !canonical::is_canonical_method(method) {
        return Err(Reason::Method);
    }
    let canonical = canonical::canonicalize_with(path, reading).map_err(Reason::Path)?;
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
pub(crate) fn uri_last_segment(uri: &str) -> Option<&str> {
    if uri.contains(['?', '#']) {
        return None;
    }
    let (_, rest) = uri.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    path.rsplit('/').next()
}

/// Does `segment` (a name as the rules see it) equal the identity's value for
/// `placeholder`, read the way the backend reads names?
///
/// Only a value the backend would spell as it is can name the caller's own
/// resource: one that trimming, the platform's rules or normalisation would
/// turn into another name (`alice.` on Windows, ` alice` under trimming,
/// fullwidth `ａlice` under NFKC) would reach that other caller's resource,
/// so it matches nothing. Case is compared as `merge` says: allow rules on
/// what every case-insensitive backend equates.
pub(crate) fn placeholder_matches(
    identity: &Identity,
    placeholder: Placeholder,
    segment: &str,
    reading: &PathReading,
    merge: Merge,
) -> bool {
    let same = |value: &str| {
        usable_in_path(value)
            && if reading.rewrites_names() {
                reading.spelled(value).is_ok_and(|spelled| spelled == value) && reading.name(value, merge).is_ok_and(|name| name == segment)
            } else {
                value == segment
            }
    };
    match placeholder {
        Placeholder::Cn => identity.common_name().is_some_and(same),
        // The same name the dns_san principal compares: without its trailing dot.
        Placeholder::DnsSan => identity.dns_sans.iter().map(|d| dns_name(d)).any(same),
        // SPIFFE SVIDs carry exactly one URI SAN. With several, which one names
        // "its own" resource is ambiguous, so none does.
        Placeholder::UriSanLastSegment => match identity.uri_sans.as_slice() {
            [only] => uri_last_segment(only).is_some_and(same),
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
    let any_of = |pat: &crate::pattern::ValuePattern, values: &[String]| values.iter().any(|v| pat.matches(v));
    p.conditions().iter().all(|c| match c {
        Condition::Cn(pat) => id.common_name().is_some_and(|v| pat.matches(v)),
        Condition::O(pat) => any_of(pat, &id.organizations),
        Condition::Ou(pat) => any_of(pat, &id.organizational_units),
        Condition::IssuerCn(pat) => id.issuer_common_name().is_some_and(|v| pat.matches(v)),
        Condition::UriSan(pat) => id.uri_sans.iter().any(|v| if deny { pat.matches_for_deny(v) } else { pat.matches(v) }),
        Condition::DnsSan(pat) => any_of(pat, &id.dns_sans),
        Condition::EmailSan(pat) => any_of(pat, &id.email_sans),
        Condition::IpSan(net) => id.ip_sans.iter().any(|ip| net.contains(ip)),
        Condition::Serial(s) => **s == id.serial,
        Condition::Sha256(s) => **s == id.sha256,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Policy;

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
        for uri in
            ["spiffe://shop.test/ns/dev/sa/x?/order", "spiffe://shop.test/ns/dev/sa/x#/order", "spiffe://shop.test/ns/prod/sa/order#"]
        {
            let id = spiffe(uri);
            assert!(!placeholder_matches(&id, Placeholder::UriSanLastSegment, "order", &PathReading::default(), Merge::Least), "{uri}");
            assert!(!placeholder_matches(&id, Placeholder::UriSanLastSegment, "x", &PathReading::default(), Merge::Least), "{uri}");
        }
        assert!(placeholder_matches(
            &spiffe("spiffe://shop.test/ns/prod/sa/order"),
            Placeholder::UriSanLastSegment,
            "order",
            &PathReading::default(),
            Merge::Least
        ));
    }

    fn policy(rules: &str) -> Policy {
        Policy::from_json(&format!(r#"{{"version": 1, "default_action": "allow", "rules": [{rules}]}}"#)).unwrap()
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
        assert!(placeholder_matches(&id, Placeholder::DnsSan, "api.shop.test", &PathReading::default(), Merge::Least));
        assert!(
            !placeholder_matches(&id, Placeholder::DnsSan, "api.shop.test.", &PathReading::default(), Merge::Least),
            "one spelling, the one a dns_san principal matches"
        );
        let dot = Identity { dns_sans: vec![".".into(), "..".into()], ..Identity::default() };
        assert!(
            !placeholder_matches(&dot, Placeholder::DnsSan, ".", &PathReading::default(), Merge::Least),
            "a bare root name is no path segment"
        );
        assert!(!placeholder_matches(&dot, Placeholder::DnsSan, "", &PathReading::default(), Merge::Least));
    }
}
