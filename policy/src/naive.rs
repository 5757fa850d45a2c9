//! The reference evaluator, [`decide_naive`]: the compiled index must decide as it does.

use crate::canonical::segments_of;
use crate::decide::{conclude, make_decision, Decision, Verdict};
use crate::eval::{method_matches, placeholder_matches, precheck, principal_matches};
use crate::identity::Identity;
use crate::model::{Action, Policy, Rule};
use crate::pattern::Placeholder;
use crate::reading::Merge;

/// The reference evaluator: every rule, every pattern, no index. Slow and
/// obviously correct; property tests and fuzzers hold the compiled index to it.
pub fn decide_naive<'p>(policy: &'p Policy, identity: Option<&Identity>, method: &str, path: &str) -> Decision<'p> {
    let reading = &policy.path_reading;
    let (id, canonical) = match precheck(identity, method, path, policy.method_overrides, reading) {
        Ok(x) => x,
        Err(reason) => return make_decision(policy.mode, Verdict::Deny, None, reason),
    };
    let segments: Vec<&str> = canonical.segments().collect();
    let split = |paths: &[String]| -> Vec<Vec<String>> { paths.iter().map(|r| segments_of(r).map(str::to_owned).collect()).collect() };
    // Other names a declared backend may resolve must be allowed too; deny rules meet them and the deny-only readings.
    let alternatives = split(canonical.alternatives());
    let deny_only = split(canonical.deny_readings());
    let least = |p: Placeholder, seg: &str| placeholder_matches(id, p, seg, reading, Merge::Least);
    let most = |p: Placeholder, seg: &str| placeholder_matches(id, p, seg, reading, Merge::Most);
    let matches = |rule: &Rule, segs: &[String], placeholder: &dyn Fn(Placeholder, &str) -> bool| {
        rule.paths.iter().any(|p| p.matches(segs, placeholder))
    };
    let primary: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
    let applies =
        |rule: &Rule| method_matches(rule, method) && rule.principals.iter().any(|p| principal_matches(p, id, rule.action == Action::Deny));
    let mut best: [Option<&'p str>; 2] = [None, None]; // [deny, allow]
    let mut better = |slot: usize, name: &'p str| {
        if best[slot].is_none_or(|b| name < b) {
            best[slot] = Some(name);
        }
    };
    for rule in policy.rules.iter().filter(|r| applies(r)) {
        match rule.action {
            Action::Deny => {
                let hit = matches(rule, &primary, &least)
                    || alternatives.iter().any(|segs| matches(rule, segs, &least))
                    || deny_only.iter().any(|segs| matches(rule, segs, &most));
                if hit {
                    better(0, &rule.name);
                }
            }
            Action::Allow => {
                if matches(rule, &primary, &least) {
                    better(1, &rule.name);
                }
            }
        }
    }
    let every_alternative_allowed =
        alternatives.iter().all(|segs| policy.rules.iter().any(|r| r.action == Action::Allow && applies(r) && matches(r, segs, &least)));
    if !every_alternative_allowed && policy.default_action == Action::Deny {
        best[1] = None;
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
