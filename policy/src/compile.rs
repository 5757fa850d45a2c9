//! The compiled policy: a segment trie over every rule's path patterns.
//!
//! A request walks the trie once along its path segments. Each trie node is
//! reached by at most one route (it stands for one pattern prefix), so the walk
//! costs O(segments × branching), independent of the number of rules whose
//! paths do not share the request's prefix. Only rules whose path matched are
//! checked for method and principal. The walk does not allocate.

use std::collections::HashMap;

use crate::canonical::Segments;
use crate::decide::{make_decision, method_matches, placeholder_matches, precheck, principal_matches, Decision, Reason, Verdict};
use crate::error::PolicyErrors;
use crate::identity::Identity;
use crate::model::{Action, Mode, Policy};
use crate::pattern::{Placeholder, Segment};

/// A validated policy, indexed for evaluation. Build once (per Wasm VM), use for every request.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Rules sorted by name: the rule index is also its tie-break rank.
    policy: Policy,
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    literal: HashMap<Box<str>, u32>,
    any: Option<u32>,
    placeholders: Vec<(Placeholder, u32)>,
    /// Rules with a pattern ending exactly here.
    exact: Vec<u32>,
    /// Rules with a pattern ending here in `/**`.
    rest: Vec<u32>,
}

impl CompiledPolicy {
    /// Parse, validate and compile a policy document.
    pub fn from_json(src: &str) -> Result<CompiledPolicy, PolicyErrors> {
        Policy::from_json(src).map(CompiledPolicy::new)
    }

    /// Compile a validated policy.
    pub fn new(mut policy: Policy) -> CompiledPolicy {
        policy.rules.sort_by(|a, b| a.name.cmp(&b.name));
        let mut nodes = vec![TrieNode::default()];
        for (rule_index, rule) in policy.rules.iter().enumerate() {
            let id = rule_index as u32;
            for pattern in &rule.paths {
                let mut at = 0usize;
                for segment in &pattern.segments {
                    let next = nodes.len() as u32;
                    let node = &mut nodes[at];
                    let slot = match segment {
                        Segment::Literal(l) => *node.literal.entry(l.as_str().into()).or_insert(next),
                        Segment::Any => *node.any.get_or_insert(next),
                        Segment::Placeholder(p) => match node.placeholders.iter().find(|(q, _)| q == p) {
                            Some((_, n)) => *n,
                            None => {
                                node.placeholders.push((*p, next));
                                next
                            }
                        },
                    };
                    if slot == next {
                        nodes.push(TrieNode::default());
                    }
                    at = slot as usize;
                }
                let list = if pattern.rest { &mut nodes[at].rest } else { &mut nodes[at].exact };
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        for node in &mut nodes {
            node.literal.shrink_to_fit();
        }
        CompiledPolicy { policy, nodes }
    }

    /// The policy this was compiled from (rules sorted by name).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Enforce or dry run.
    pub fn mode(&self) -> Mode {
        self.policy.mode
    }

    /// The policy's revision string, if it has one.
    pub fn revision(&self) -> Option<&str> {
        self.policy.revision.as_deref()
    }

    /// Decide on one request. `identity` is `None` when the connection has no
    /// verified client certificate; `path` is the request target as received
    /// (`:path`, query included).
    pub fn decide(&self, identity: Option<&Identity>, method: &str, path: &str) -> Decision<'_> {
        let (id, canonical) = match precheck(identity, method, path) {
            Ok(x) => x,
            Err(reason) => return self.refuse(reason),
        };
        let mut walk = Walk { policy: self, identity: id, method, best_deny: None, best_allow: None };
        walk.visit(0, canonical.segments());
        let rules = &self.policy.rules;
        let name = |i: u32| rules.get(i as usize).map(|r| r.name.as_str());
        match (walk.best_deny, walk.best_allow) {
            (Some(i), _) => make_decision(self.policy.mode, Verdict::Deny, name(i), Reason::Rule(Action::Deny)),
            (None, Some(i)) => make_decision(self.policy.mode, Verdict::Allow, name(i), Reason::Rule(Action::Allow)),
            (None, None) => {
                let verdict = match self.policy.default_action {
                    Action::Allow => Verdict::Allow,
                    Action::Deny => Verdict::Deny,
                };
                make_decision(self.policy.mode, verdict, None, Reason::Default(self.policy.default_action))
            }
        }
    }

    /// A deny for a reason found outside the engine (no certificate, an
    /// unreadable one, an adapter failure), with dry-run applied like any other deny.
    pub fn refuse(&self, reason: Reason) -> Decision<'_> {
        make_decision(self.policy.mode, Verdict::Deny, None, reason)
    }
}

struct Walk<'a> {
    policy: &'a CompiledPolicy,
    identity: &'a Identity,
    method: &'a str,
    best_deny: Option<u32>,
    best_allow: Option<u32>,
}

impl Walk<'_> {
    fn visit(&mut self, node_index: u32, mut remaining: Segments<'_>) {
        let Some(node) = self.policy.nodes.get(node_index as usize) else { return };
        for &rule in &node.rest {
            self.consider(rule);
        }
        let Some(segment) = remaining.next() else {
            for &rule in &node.exact {
                self.consider(rule);
            }
            return;
        };
        if let Some(&next) = node.literal.get(segment) {
            self.visit(next, remaining.clone());
        }
        if let Some(next) = node.any {
            self.visit(next, remaining.clone());
        }
        for &(placeholder, next) in &node.placeholders {
            if placeholder_matches(self.identity, placeholder, segment) {
                self.visit(next, remaining.clone());
            }
        }
    }

    fn consider(&mut self, rule_index: u32) {
        let Some(rule) = self.policy.policy.rules.get(rule_index as usize) else { return };
        let slot = match rule.action {
            Action::Deny => &mut self.best_deny,
            Action::Allow => &mut self.best_allow,
        };
        // Rules are sorted by name, so a lower index is the earlier name; skip work that cannot change the report.
        if slot.is_some_and(|best| best <= rule_index) {
            return;
        }
        if method_matches(rule, self.method) && rule.principals.iter().any(|p| principal_matches(p, self.identity)) {
            *slot = Some(rule_index);
        }
    }
}
