//! The reference evaluator, [`decide_naive`]: the compiled index must decide as it does.

use crate::canonical::segments_of;
use crate::decide::{conclude, make_decision, Decision, Verdict};
use crate::eval::{method_matches, placeholder_matches, precheck, principal_matches};
use crate::identity::Identity;
use crate::model::{Action, Policy};
use crate::pattern::Placeholder;

/// The reference evaluator: every rule, every pattern, no index. Slow and
/// obviously correct; property tests and fuzzers hold the compiled index to it.
pub fn decide_naive<'p>(policy: &'p Policy, identity: Option<&Identity>, method: &str, path: &str) -> Decision<'p> {
    let reading = &policy.path_reading;
    let (id, canonical) = match precheck(identity, method, path, policy.method_overrides, reading) {
        Ok(x) => x,
        Err(reason) => return make_decision(policy.mode, Verdict::Deny, None, reason),
    };
    let segments: Vec<&str> = canonical.segments().collect();
    // A deny rule also meets the other readings a backend may resolve; an allow needs the path itself.
    let extra: Vec<Vec<&str>> = canonical.extra_readings().iter().map(|r| segments_of(r).collect()).collect();
    let placeholder = |p: Placeholder, seg: &str| placeholder_matches(id, p, seg, reading);
    let mut best: [Option<&'p str>; 2] = [None, None]; // [deny, allow]
    for rule in &policy.rules {
        let path_hit = |segs: &[&str]| rule.paths.iter().any(|p| p.matches(segs, &placeholder));
        let hit = method_matches(rule, method)
            && (path_hit(&segments) || rule.action == Action::Deny && extra.iter().any(|segs| path_hit(segs)))
            && rule.principals.iter().any(|p| principal_matches(p, id, rule.action == Action::Deny));
        if hit {
            let slot = &mut best[usize::from(rule.action == Action::Allow)];
            if slot.is_none_or(|name| rule.name.as_str() < name) {
                *slot = Some(rule.name.as_str());
            }
        }
    }
    conclude(policy, best[0], best[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> Policy {
        Policy::from_json(&format!(r#"{{"version": 1, "default_action": "allow", "rules": [{rules}]}}"#)).unwrap()
    }

    fn anyone() -> Identity {
        Identity { common_names: vec!["x".into()], ..Identity::default() }
    }

    #[test]
    fn a_deny_rule_on_get_also_denies_head() {
        let p =
            policy(r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"]}"#);
        let d = decide_naive(&p, Some(&anyone()), "HEAD", "/export");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("no-export")));
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Deny);
        assert_eq!(decide_naive(&p, Some(&anyone()), "POST", "/export").verdict, Verdict::Allow, "only HEAD follows GET");
        assert_eq!(decide_naive(&p, Some(&anyone()), "OPTIONS", "/export").verdict, Verdict::Allow);
    }

    #[test]
    fn head_with_get_false_keeps_head_out_of_a_deny_rule() {
        let p = policy(
            r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"], "head_with_get": false}"#,
        );
        assert_eq!(decide_naive(&p, Some(&anyone()), "HEAD", "/export").verdict, Verdict::Allow);
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Deny);
    }

    #[test]
    fn allowing_get_does_not_allow_head() {
        let mut p =
            policy(r#"{"name": "read", "action": "allow", "principals": [{"any": true}], "paths": ["/export"], "methods": ["GET"]}"#);
        p.default_action = Action::Deny;
        assert_eq!(decide_naive(&p, Some(&anyone()), "GET", "/export").verdict, Verdict::Allow);
        let d = decide_naive(&p, Some(&anyone()), "HEAD", "/export");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    }
}
