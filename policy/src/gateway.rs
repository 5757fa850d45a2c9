//! What a partner gateway needs besides the decision, as the policy says it:
//! `metrics` ([`crate::metrics`]), `limits` ([`crate::limits`]),
//! `audit_log` ([`crate::audit`]) and `filter_state` (what the filter
//! publishes for Envoy's own rate limit filters and access logs), with
//! their validation. All four are optional and off (or, per-rule counters,
//! on) by default; a policy without them behaves as before.

use crate::audit::{AuditEvents, AuditLog};
use crate::identity_field::IdentityField;
use crate::json::{Kind, Member, Node};
use crate::limits::{KeyPart, Limit, Per, DEFAULT_MAX_KEYS, MAX_MAX_KEYS, MAX_REQUESTS};
use crate::metrics::{MetricsConfig, PerIdentity, DEFAULT_MAX_IDENTITIES, MAX_MAX_IDENTITIES};
use crate::model::{Action, Condition, Rule};
use crate::validate::{child, index, Validator};

/// A value the filter publishes as filter state `wasm.mtls_authz.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Field(IdentityField),
    /// The rule that allowed the request.
    Rule,
}

impl Published {
    /// The filter state key, before Envoy's `wasm.` prefix.
    pub fn key(self) -> String {
        match self {
            Published::Rule => "mtls_authz.rule".to_owned(),
            Published::Field(f) => format!("mtls_authz.{}", f.as_str()),
        }
    }
}

/// The gateway sections of a policy, as validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gateway {
    pub metrics: MetricsConfig,
    pub limits: Vec<Limit>,
    pub audit_log: Option<AuditLog>,
    pub filter_state: Vec<Published>,
    /// The identity fields an audit record carries: the principal, the CN and
    /// the fingerprint, and every field a rule, a limit key or the metrics read.
    pub audit_fields: Vec<IdentityField>,
}

impl Gateway {
    /// The limits that count requests `rule` allowed.
    pub fn limits_for<'g>(&'g self, rule: Option<&'g str>) -> impl Iterator<Item = &'g Limit> {
        self.limits.iter().filter(move |l| l.applies_to(rule))
    }
}

const METRICS_FIELDS: &[&str] = &["per_rule", "per_identity"];
const PER_IDENTITY_FIELDS: &[&str] = &["field", "max_identities"];
const LIMIT_FIELDS: &[&str] = &["name", "description", "rules", "key", "rate", "burst", "dry_run", "max_keys"];
const RATE_FIELDS: &[&str] = &["requests", "per"];

fn fields_read(rules: &[Rule], gateway: &Gateway) -> Vec<IdentityField> {
    let mut fields = vec![IdentityField::Principal, IdentityField::Cn, IdentityField::Sha256];
    let mut add = |f: IdentityField| {
        if !fields.contains(&f) {
            fields.push(f);
        }
    };
    for p in rules.iter().flat_map(|r| &r.principals) {
        for c in p.conditions() {
            match c {
                Condition::Cn(_) => add(IdentityField::Cn),
                Condition::O(_) => add(IdentityField::O),
                Condition::Ou(_) => add(IdentityField::Ou),
                Condition::UriSan(_) => add(IdentityField::UriSan),
                Condition::DnsSan(_) => add(IdentityField::DnsSan),
                Condition::EmailSan(_) => add(IdentityField::EmailSan),
                Condition::IssuerCn(_) => add(IdentityField::IssuerCn),
                Condition::IpSan(_) | Condition::Serial(_) | Condition::Sha256(_) => {}
            }
        }
    }
    for part in gateway.limits.iter().flat_map(|l| &l.key) {
        if let KeyPart::Field(f) = part {
            add(*f);
        }
    }
    if let Some(p) = gateway.metrics.per_identity {
        add(p.field);
    }
    for published in &gateway.filter_state {
        if let Published::Field(f) = published {
            add(*f);
        }
    }
    fields
}

impl Validator<'_> {
    /// The four sections; `rules` is `None` when the rules had errors (then
    /// the rule names a limit lists are not checked).
    pub(crate) fn gateway(&mut self, members: &[Member], rules: Option<&[Rule]>) -> Option<Gateway> {
        let metrics = match Self::field(members, "metrics") {
            None => Some(MetricsConfig::default()),
            Some(n) => self.metrics(n),
        };
        let limits = match Self::field(members, "limits") {
            None => Some(Vec::new()),
            Some(n) => self.limits(n, rules),
        };
        let audit_log = match Self::field(members, "audit_log") {
            None => Some(None),
            Some(n) => self.audit_log(n).map(Some),
        };
        let filter_state = match Self::field(members, "filter_state") {
            None => Some(Vec::new()),
            Some(n) => self.filter_state(n),
        };
        let mut gateway =
            Gateway { metrics: metrics?, limits: limits?, audit_log: audit_log?, filter_state: filter_state?, audit_fields: vec![] };
        gateway.audit_fields = fields_read(rules.unwrap_or_default(), &gateway);
        Some(gateway)
    }

    /// A whole number in `min..=max` at `path`.
    fn whole(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        match &node.kind {
            Kind::Number(n) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.error_at(node.offset, path, format!("expected a whole number from {min} to {max}, found {n}"));
                    None
                }
            },
            other => {
                self.error_at(node.offset, path, format!("expected a number, found {}", other.type_name()));
                None
            }
        }
    }

    fn identity_field(&mut self, node: &Node, path: &str) -> Option<IdentityField> {
        let name = self.string(node, path)?;
        let field = IdentityField::parse(name);
        if field.is_none() {
            self.error_at(node.offset, path, format!("unknown identity field '{name}'; expected one of: {}", IdentityField::names()));
        }
        field
    }

    fn metrics(&mut self, node: &Node) -> Option<MetricsConfig> {
        let members = self.object(node, "metrics", METRICS_FIELDS, "a metrics section")?;
        let per_rule = self.optional_bool(members, "metrics", "per_rule", true);
        let per_identity = match Self::field(members, "per_identity") {
            None => Some(None),
            Some(n) => self.per_identity(n).map(Some),
        };
        Some(MetricsConfig { per_rule: per_rule?, per_identity: per_identity? })
    }

    fn per_identity(&mut self, node: &Node) -> Option<PerIdentity> {
        let path = "metrics.per_identity";
        let members = self.object(node, path, PER_IDENTITY_FIELDS, "a per_identity section")?;
        let field = self.required(members, node, path, "field").and_then(|n| self.identity_field(n, &child(path, "field")));
        let max = match Self::field(members, "max_identities") {
            None => Some(u64::from(DEFAULT_MAX_IDENTITIES)),
            Some(n) => self.whole(n, &child(path, "max_identities"), 1, u64::from(MAX_MAX_IDENTITIES)),
        };
        Some(PerIdentity { field: field?, max_identities: u32::try_from(max?).ok()? })
    }

    fn audit_log(&mut self, node: &Node) -> Option<AuditLog> {
        let members = self.object(node, "audit_log", &["events"], "an audit_log section")?;
        let events = match Self::field(members, "events") {
            None => Some(AuditEvents::Deny),
            Some(n) => match self.string(n, "audit_log.events") {
                Some("all") => Some(AuditEvents::All),
                Some("deny") => Some(AuditEvents::Deny),
                Some(other) => {
                    self.error_at(n.offset, "audit_log.events", format!("expected \"all\" or \"deny\", found \"{other}\""));
                    None
                }
                None => None,
            },
        };
        Some(AuditLog { events: events? })
    }

    fn filter_state(&mut self, node: &Node) -> Option<Vec<Published>> {
        let items = self.array(node, "filter_state", true)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("filter_state", i);
            let published = match self.string(item, &path) {
                Some("rule") => Some(Published::Rule),
                Some(_) => self.identity_field(item, &path).map(Published::Field),
                None => None,
            };
            match published {
                Some(p) if out.contains(&p) => {
                    self.error_at(item.offset, &path, "listed twice");
                    ok = false;
                }
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn limits(&mut self, node: &Node, rules: Option<&[Rule]>) -> Option<Vec<Limit>> {
        let items = self.array(node, "limits", true)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("limits", i);
            match self.limit(item, &path, rules) {
                Some(limit) if out.iter().any(|l: &Limit| l.name == limit.name) => {
                    self.error_at(item.offset, &child(&path, "name"), format!("duplicate limit name '{}'", limit.name));
                    ok = false;
                }
                Some(limit) => out.push(limit),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn limit(&mut self, node: &Node, path: &str, rules: Option<&[Rule]>) -> Option<Limit> {
        let members = self.object(node, path, LIMIT_FIELDS, "a limit")?;
        let name = self.required(members, node, path, "name").and_then(|n| {
            let p = child(path, "name");
            let s = self.non_empty_string(n, &p)?;
            if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
                self.error_at(
                    n.offset,
                    &p,
                    "a limit name is 1 to 64 characters from A-Z a-z 0-9 - _ (it goes into shared data keys and logs)",
                );
                return None;
            }
            Some(s.to_owned())
        });
        let description = match Self::field(members, "description") {
            None => Some(None),
            Some(n) => self.string(n, &child(path, "description")).map(|s| Some(s.to_owned())),
        };
        let limit_rules = self.required(members, node, path, "rules").and_then(|n| self.limit_rules(n, &child(path, "rules"), rules));
        let key = self.required(members, node, path, "key").and_then(|n| self.limit_key(n, &child(path, "key")));
        let rate = self.required(members, node, path, "rate").and_then(|n| self.rate(n, &child(path, "rate")));
        let burst = self.required(members, node, path, "burst").and_then(|n| self.whole(n, &child(path, "burst"), 1, MAX_REQUESTS));
        let dry_run = self.optional_bool(members, path, "dry_run", false);
        let max_keys = match Self::field(members, "max_keys") {
            None => Some(u64::from(DEFAULT_MAX_KEYS)),
            Some(n) => self.whole(n, &child(path, "max_keys"), 1, u64::from(MAX_MAX_KEYS)),
        };
        let (requests, per) = rate?;
        Some(Limit {
            name: name?,
            description: description?,
            rules: limit_rules?,
            key: key?,
            requests,
            per,
            burst: burst?,
            dry_run: dry_run?,
            max_keys: u32::try_from(max_keys?).ok()?,
        })
    }

    fn limit_rules(&mut self, node: &Node, path: &str, rules: Option<&[Rule]>) -> Option<Vec<String>> {
        let items = self.array(node, path, false)?;
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            let Some(name) = self.string(item, &p) else {
                ok = false;
                continue;
            };
            let problem = match rules.map(|rs| rs.iter().find(|r| *r.name == *name)) {
                _ if out.iter().any(|n| n == name) => Some("listed twice".to_owned()),
                Some(None) => Some(format!("no rule is named '{name}'")),
                Some(Some(rule)) if rule.action != Action::Allow => {
                    Some(format!("rule '{name}' is a deny rule; a limit counts the requests an allow rule lets through"))
                }
                _ => None,
            };
            match problem {
                Some(message) => {
                    self.error_at(item.offset, &p, message);
                    ok = false;
                }
                None => out.push(name.to_owned()),
            }
        }
        ok.then_some(out)
    }

    fn limit_key(&mut self, node: &Node, path: &str) -> Option<Vec<KeyPart>> {
        let items = self.array(node, path, false)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            let part = match self.string(item, &p) {
                Some("rule") => Some(KeyPart::Rule),
                Some(_) => self.identity_field(item, &p).map(KeyPart::Field),
                None => None,
            };
            let problem = match part {
                Some(part) if out.contains(&part) => Some("listed twice"),
                Some(KeyPart::Field(_)) if out.iter().any(|k| matches!(k, KeyPart::Field(_))) => {
                    Some("a key has at most one identity field (and \"rule\")")
                }
                _ => None,
            };
            match (part, problem) {
                (_, Some(message)) => {
                    self.error_at(item.offset, &p, message);
                    ok = false;
                }
                (Some(part), None) => out.push(part),
                (None, None) => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn rate(&mut self, node: &Node, path: &str) -> Option<(u64, Per)> {
        let members = self.object(node, path, RATE_FIELDS, "a rate")?;
        let requests =
            self.required(members, node, path, "requests").and_then(|n| self.whole(n, &child(path, "requests"), 1, MAX_REQUESTS));
        let per = self.required(members, node, path, "per").and_then(|n| {
            let p = child(path, "per");
            let text = self.string(n, &p)?;
            let per = Per::ALL.iter().find(|(name, _)| *name == text).map(|(_, per)| *per);
            if per.is_none() {
                self.error_at(n.offset, &p, format!("expected \"second\", \"minute\" or \"hour\", found \"{text}\""));
            }
            per
        });
        Some((requests?, per?))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Policy;

    fn policy(extra: &str) -> Result<Policy, crate::PolicyErrors> {
        Policy::from_json(&format!(
            r#"{{"version": 1, "default_action": "deny", {extra}
 "rules": [{{"name": "orders", "action": "allow", "principals": [{{"o": "Globex"}}], "paths": ["/orders"]}},
           {{"name": "no-admin", "action": "deny", "principals": [{{"any": true}}], "paths": ["/admin/**"]}}]}}"#
        ))
    }

    fn messages(extra: &str) -> Vec<String> {
        policy(extra).unwrap_err().0.iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }

    #[test]
    fn a_policy_without_the_sections_counts_per_rule_and_nothing_else() {
        let p = policy("").unwrap();
        assert!(p.gateway.metrics.per_rule);
        assert!(p.gateway.limits.is_empty() && p.gateway.audit_log.is_none() && p.gateway.filter_state.is_empty());
        use crate::identity_field::IdentityField as F;
        assert_eq!(p.gateway.audit_fields, [F::Principal, F::Cn, F::Sha256, F::O]);
    }

    #[test]
    fn every_section_is_read() {
        let p = policy(
            r#""metrics": {"per_rule": false, "per_identity": {"field": "o", "max_identities": 5}},
 "limits": [{"name": "globex-quota", "rules": ["orders"], "key": ["o", "rule"], "rate": {"requests": 5, "per": "minute"}, "burst": 10, "dry_run": true, "max_keys": 64}],
 "audit_log": {"events": "all"}, "filter_state": ["principal", "rule", "o"],"#,
        )
        .unwrap();
        let g = &p.gateway;
        assert!(!g.metrics.per_rule);
        assert_eq!(g.metrics.per_identity.map(|p| p.max_identities), Some(5));
        let l = &g.limits[0];
        assert_eq!((l.requests, l.per, l.burst, l.dry_run, l.max_keys), (5, crate::limits::Per::Minute, 10, true, 64));
        assert_eq!(g.limits_for(Some("orders")).count(), 1);
        assert_eq!(g.limits_for(Some("no-admin")).count(), 0);
        assert_eq!(g.filter_state.iter().map(|p| p.key()).collect::<Vec<_>>(), ["mtls_authz.principal", "mtls_authz.rule", "mtls_authz.o"]);
    }

    #[test]
    fn mistakes_are_placed() {
        let m = messages(
            r#""limits": [{"name": "q", "rules": ["nope", "no-admin"], "key": ["o", "cn"], "rate": {"requests": 0, "per": "day"}, "burst": 1}],"#,
        );
        assert_eq!(
            m,
            [
                "limits[0].rules[0]: no rule is named 'nope'",
                "limits[0].rules[1]: rule 'no-admin' is a deny rule; a limit counts the requests an allow rule lets through",
                "limits[0].key[1]: a key has at most one identity field (and \"rule\")",
                "limits[0].rate.requests: expected a whole number from 1 to 1000000, found 0",
                "limits[0].rate.per: expected \"second\", \"minute\" or \"hour\", found \"day\"",
            ]
        );
        let m = messages(r#""limits": [{"name": "q", "rules": ["orders"], "key": ["serial"], "rate": {"requests": 1, "per": "second"}}],"#);
        assert!(m.iter().any(|e| e.starts_with("limits[0].key[0]: unknown identity field 'serial'")), "{m:?}");
        assert!(m.iter().any(|e| e.contains("missing required field 'burst'")), "{m:?}");
        let m = messages(
            r#""metrics": {"per_identity": {"max_identities": 0}}, "audit_log": {"events": "some"}, "filter_state": ["rule", "rule"],"#,
        );
        assert_eq!(m.len(), 4, "{m:?}");
        let m = messages(
            r#""limits": [{"name": "q", "rules": ["orders"], "key": ["o"], "rate": {"requests": 1, "per": "second"}, "burst": 1},
                          {"name": "q", "rules": ["orders"], "key": ["o"], "rate": {"requests": 1, "per": "second"}, "burst": 1}],"#,
        );
        assert_eq!(m, ["limits[1].name: duplicate limit name 'q'"]);
    }
}
