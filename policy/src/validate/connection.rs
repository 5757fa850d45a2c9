//! Validating `connection_rules` ([`crate::connection`]): a rule's name,
//! description, action and principals, read as a rule's are, and nothing
//! about requests. A `paths` or `methods` here is refused by name, since a
//! connection has neither and a rule that seemed to limit them would not.

use super::{child, Validator};
use crate::connection::ConnectionRule;
use crate::json::Node;

const CONNECTION_RULE_FIELDS: &[&str] = &["name", "description", "action", "principals"];

impl<'s> Validator<'s> {
    pub(super) fn connection_rules(&mut self, node: &Node<'s>) -> Option<Vec<ConnectionRule>> {
        self.named_list(node, "connection_rules", Self::connection_rule)
    }

    fn connection_rule(&mut self, node: &Node, path: &str) -> Option<ConnectionRule> {
        let members = self.object(node, path, CONNECTION_RULE_FIELDS, "a connection rule")?;
        let name = self.rule_name(members, node, path);
        let description = self.optional_text(members, "description", path);
        let action = self.required(members, node, path, "action").and_then(|n| self.action(n, &child(path, "action")));
        let principals = self.required(members, node, path, "principals").and_then(|n| self.principals(n, &child(path, "principals")));
        Some(ConnectionRule { name: name?, description: description?, action: action?, principals: principals? })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Policy;

    fn errors(src: &str) -> Vec<(String, String)> {
        Policy::from_json(src).err().map(|e| e.0.into_iter().map(|e| (e.path, e.message)).collect()).unwrap_or_default()
    }

    #[test]
    fn connection_rules_alone_make_a_policy() {
        let p = Policy::from_json(
            r#"{"version": 1, "default_action": "deny", "connection_rules": [{"name": "c", "action": "allow", "principals": [{"cn": "x"}]}]}"#,
        )
        .unwrap();
        assert_eq!((p.rules.len(), p.connection_rules.len()), (0, 1));
        let missing = errors(r#"{"version": 1, "default_action": "deny"}"#);
        assert!(missing.iter().any(|(_, m)| m.contains("rules")), "{missing:?}");
    }

    #[test]
    fn http_fields_in_a_connection_rule_are_refused_with_their_path() {
        let e = errors(
            r#"{"version": 1, "default_action": "deny", "connection_rules": [{"name": "c", "action": "allow", "principals": [{"cn": "x"}], "paths": ["/"]}]}"#,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "connection_rules[0].paths");
        assert!(e[0].1.contains("unknown field 'paths'"), "{e:?}");
    }

    #[test]
    fn connection_rules_are_checked_like_rules() {
        let dup = r#"{"name": "c", "action": "allow", "principals": [{"cn": "x"}]}"#;
        let e = errors(&format!(r#"{{"version": 1, "default_action": "deny", "connection_rules": [{dup}, {dup}]}}"#));
        assert!(e.iter().any(|(p, m)| p == "connection_rules[1].name" && m.contains("first used by connection_rules[0]")), "{e:?}");
        let e = errors(
            r#"{"version": 1, "default_action": "deny", "connection_rules": [{"name": "bad name", "action": "permit", "principals": []}]}"#,
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["connection_rules[0].name", "connection_rules[0].action", "connection_rules[0].principals"], "{e:?}");
    }
}
