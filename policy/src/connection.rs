//! Connection rules: the policy for a listener that proxies plain TCP (L4
//! mode: MQTT, ZooKeeper, a database), where there is no request to look at,
//! only the verified client certificate of the connection.
//!
//! They are part of the one policy language, next to the HTTP `rules`:
//!
//! ```json
//! {"version": 1, "default_action": "deny",
//!  "connection_rules": [
//!    {"name": "fleet-devices", "action": "allow", "principals": [{"ou": "fleet", "issuer_cn": "Acme Device CA"}]},
//!    {"name": "stolen-device", "action": "deny", "principals": [{"serial": "0a:11:42"}]}]}
//! ```
//!
//! A connection rule is a rule without `paths` and `methods`: a name, an
//! action and principals, matched exactly as a rule's principals are
//! ([`crate::eval::principal_matches`]). The decision follows the same
//! precedence ([`crate::decide`]): a matching deny wins, then an allow, else
//! `default_action`; `mode: dry_run` and `revision` apply as they do to
//! requests. A policy for a plain TCP listener needs no HTTP field: with
//! `connection_rules`, `rules` may be left out. The filter decides once per
//! connection, when the TLS handshake is done.

use crate::compile::CompiledPolicy;
use crate::decide::{conclude, make_decision, Verdict};
use crate::eval::principal_matches;
use crate::model::{Action, Principal};
use crate::{Decision, Identity, Reason};

/// One connection rule: who, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRule {
    pub name: String,
    pub description: Option<String>,
    pub action: Action,
    /// OR of principals; each principal is an AND of its fields.
    pub principals: Vec<Principal>,
}

/// Why a policy cannot judge connections; `None` when it can.
pub fn unfit_for_connections(policy: &CompiledPolicy) -> Option<&'static str> {
    // Without connection rules, only default_action would decide: an HTTP
    // policy with "allow" there would let every certificate through.
    policy.policy().connection_rules.is_empty().then_some(
        "the policy has no connection_rules: an L4 (network filter) listener is judged by them alone; add them, or use this policy on an HTTP listener",
    )
}

impl CompiledPolicy {
    /// Decide on one connection. `identity` is `None` when it has no
    /// verified client certificate (refused, like a request without one).
    pub fn decide_connection(&self, identity: Option<&Identity>) -> Decision<'_> {
        let policy = self.policy();
        let Some(identity) = identity else {
            return make_decision(policy.mode, Verdict::Deny, None, Reason::NoPeerCertificate);
        };
        // The first matching rule of each kind by name, so that which rule is
        // reported does not depend on the order they are written in.
        let first = |action: Action| {
            policy
                .connection_rules
                .iter()
                .filter(|r| r.action == action && r.principals.iter().any(|p| principal_matches(p, identity, action == Action::Deny)))
                .map(|r| r.name.as_str())
                .min()
        };
        conclude(policy, first(Action::Deny), first(Action::Allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"version": 1, "default_action": "deny", "connection_rules": [
        {"name": "fleet", "action": "allow", "principals": [{"ou": "fleet", "issuer_cn": "Device CA"}]},
        {"name": "b-stolen", "action": "deny", "principals": [{"cn": "dev-13"}]},
        {"name": "a-stolen", "action": "deny", "principals": [{"cn": "dev-13"}]}]}"#;

    fn device(cn: &str, ou: &str) -> Identity {
        Identity {
            common_names: vec![cn.into()],
            organizational_units: vec![ou.into()],
            issuer_common_names: vec!["Device CA".into()],
            ..Identity::default()
        }
    }

    #[test]
    fn a_plain_tcp_policy_needs_no_http_fields_and_decides_by_certificate() {
        let p = CompiledPolicy::from_json(POLICY).unwrap();
        assert!(p.policy().rules.is_empty());
        assert_eq!(unfit_for_connections(&p), None);
        let d = p.decide_connection(Some(&device("dev-1", "fleet")));
        assert_eq!((d.verdict, d.rule, d.reason), (Verdict::Allow, Some("fleet"), Reason::Rule(Action::Allow)));
        let d = p.decide_connection(Some(&device("dev-13", "fleet")));
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("a-stolen")), "a deny wins; the first by name is named");
        let d = p.decide_connection(Some(&device("dev-2", "office")));
        assert_eq!((d.verdict, d.rule, d.reason), (Verdict::Deny, None, Reason::Default(Action::Deny)));
        let d = p.decide_connection(None);
        assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::NoPeerCertificate));
    }

    #[test]
    fn dry_run_reports_a_connection_deny_without_enforcing_it() {
        let p = CompiledPolicy::from_json(&POLICY.replacen(r#""version": 1,"#, r#""version": 1, "mode": "dry_run","#, 1)).unwrap();
        let d = p.decide_connection(Some(&device("dev-2", "office")));
        assert!(d.is_dry_run_deny() && d.is_allowed());
    }

    #[test]
    fn an_http_policy_is_not_fit_for_connections() {
        let p = CompiledPolicy::from_json(
            r#"{"version": 1, "default_action": "allow", "rules": [{"name": "r", "action": "deny", "principals": [{"any": true}], "paths": ["/x"]}]}"#,
        )
        .unwrap();
        assert!(unfit_for_connections(&p).is_some_and(|why| why.contains("connection_rules")));
    }
}
