//! The compiled policy: a segment trie over every rule's path patterns.
//!
//! A request walks the trie once along its path segments. Each trie node is
//! reached by at most one route (it stands for one pattern prefix), so the walk
//! costs O(segments × branching), independent of the number of rules whose
//! paths do not share the request's prefix. Only rules whose path matched are
//! checked for method and principal. The walk does not allocate.

use crate::canonical::{segments_of, Segments};
use crate::decide::{conclude, make_decision, Decision, Reason, Verdict};
use crate::error::PolicyErrors;
use crate::eval::{method_matches, placeholder_matches, precheck, principal_matches};
use crate::identity::Identity;
use crate::model::{Action, MethodOverrides, Mode, Policy};
use crate::overrides::{self, BodyHeaders, BodyPlan};
use crate::reading::Merge;
use crate::trie::Trie;

/// A validated policy, indexed for evaluation. Build once (per Wasm VM), use for every request.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Rules sorted by name: the rule index is also its tie-break rank.
    policy: Policy,
    trie: Trie,
}

impl CompiledPolicy {
    /// Parse, validate and compile a policy document.
    pub fn from_json(src: &str) -> Result<CompiledPolicy, PolicyErrors> {
        Policy::from_json(src).map(CompiledPolicy::new)
    }

    /// Compile a validated policy.
    pub fn new(mut policy: Policy) -> CompiledPolicy {
        // Names are unique (validated), so an unstable sort is as good, and it
        // needs no scratch copy of the rules.
        policy.rules.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let trie = Trie::build(policy.rules.iter().map(|rule| &*rule.paths));
        CompiledPolicy { policy, trie }
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
        let reading = &self.policy.path_reading;
        let (id, canonical) = match precheck(identity, method, path, self.policy.method_overrides, reading) {
            Ok(x) => x,
            Err(reason) => return self.refuse(reason),
        };
        let mut walk =
            Walk { policy: self, identity: id, method, denies_only: false, merge: Merge::Least, best_deny: None, best_allow: None };
        walk.visit(0, canonical.segments());
        let allowed = walk.best_allow;
        // Other names a declared backend may resolve: each must be allowed too, and deny rules meet them.
        let mut every_reading_allowed = true;
        for other in canonical.alternatives() {
            walk.best_allow = None;
            walk.visit(0, segments_of(other));
            every_reading_allowed &= walk.best_allow.is_some();
        }
        // Names only some backend resolves: their deny rules deny it too.
        walk.denies_only = true;
        walk.merge = Merge::Most;
        for other in canonical.deny_readings() {
            walk.visit(0, segments_of(other));
        }
        walk.best_allow = if every_reading_allowed || self.policy.default_action == Action::Allow { allowed } else { None };
        let rules = &self.policy.rules;
        let name = |i: u32| rules.get(i as usize).map(|r| &*r.name);
        conclude(&self.policy, walk.best_deny.and_then(name), walk.best_allow.and_then(name))
    }

    /// [`CompiledPolicy::decide`] for a request that may carry override
    /// headers: one that counts under the policy
    /// ([`overrides::refuses_header`]) refuses the request the way `?_method=`
    /// does, after the checks on identity, method and path and before any
    /// rule. So a decision that got as far as the rules is replaced, and an
    /// earlier refusal stands.
    pub fn decide_head(&self, identity: Option<&Identity>, method: &str, path: &str, override_header: bool) -> Decision<'_> {
        let decision = self.decide(identity, method, path);
        if override_header && matches!(decision.reason, Reason::Rule(_) | Reason::Default(_)) {
            return self.refuse(Reason::Override);
        }
        decision
    }

    /// Whether the body of a request allowed on its head must be read, and
    /// how: never when the policy says its backends ignore method overrides.
    pub fn body_plan(&self, headers: &BodyHeaders, method: &str) -> BodyPlan {
        match self.policy.method_overrides {
            MethodOverrides::Ignore => BodyPlan::Skip,
            MethodOverrides::Refuse => headers.plan(method),
        }
    }

    /// The decision on a request's head, after its body was checked:
    /// `refusal` (from [`overrides::BodyFinding::refusal`], or a body too
    /// large) turns an allow into a refusal; a deny stands.
    pub fn with_body_check<'p>(&'p self, head: Decision<'p>, refusal: Option<Reason>) -> Decision<'p> {
        match refusal {
            Some(reason) if head.verdict == Verdict::Allow => self.refuse(reason),
            _ => head,
        }
    }

    /// Decide on a whole request at once, for tools that hold one
    /// (`mtls-authz explain`, `test`): the steps the filter takes as the
    /// request arrives, in the same order. `body` is `None` when no body
    /// follows the headers.
    pub fn decide_request(&self, identity: Option<&Identity>, request: &RequestParts<'_>) -> Decision<'_> {
        let mut body_headers = BodyHeaders::default();
        let mut override_header = false;
        for (name, value) in request.headers {
            override_header |= overrides::refuses_header(name, self.policy.method_overrides);
            body_headers.note(name, value);
        }
        let head = self.decide_head(identity, request.method, request.target, override_header);
        let Some(body) = request.body else { return head };
        if head.verdict != Verdict::Allow {
            return head;
        }
        let refusal = match self.body_plan(&body_headers, request.method) {
            BodyPlan::Skip => None,
            BodyPlan::Unreadable => Some(Reason::BodyUnreadable),
            BodyPlan::Read(_) if body.len() > self.policy.body_inspection_limit as usize => Some(Reason::BodyTooLarge),
            BodyPlan::Read(readings) => overrides::body_overrides_method(readings, body).refusal(),
        };
        self.with_body_check(head, refusal)
    }

    /// A deny for a reason found outside the engine (no certificate, an
    /// unreadable one, an adapter failure), with dry-run applied like any other deny.
    pub fn refuse(&self, reason: Reason) -> Decision<'_> {
        make_decision(self.policy.mode, Verdict::Deny, None, reason)
    }
}

/// A request as a whole, for [`CompiledPolicy::decide_request`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The `:path` as received, query included.
    pub target: &'a str,
    /// Every other request header, as (name, value).
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The body; `None` when the headers ended the request.
    pub body: Option<&'a [u8]>,
}

struct Walk<'a> {
    policy: &'a CompiledPolicy,
    identity: &'a Identity,
    method: &'a str,
    /// Walking another reading of the path: only deny rules count.
    denies_only: bool,
    /// How placeholders compare case on this reading.
    merge: Merge,
    best_deny: Option<u32>,
    best_allow: Option<u32>,
}

impl Walk<'_> {
    /// Consider every rule whose pattern matches `remaining` from the node at
    /// `node_index`. The order the branches are taken in does not matter
    /// ([`Walk::consider`] keeps the lowest index), so the literal branch,
    /// usually the only one, is followed in the loop instead of a call.
    fn visit(&mut self, mut node_index: u32, mut remaining: Segments<'_>) {
        loop {
            let Some(node) = self.policy.trie.node(node_index) else { return };
            for &rule in node.rest() {
                self.consider(rule);
            }
            let Some(segment) = remaining.next() else {
                for &rule in node.exact() {
                    self.consider(rule);
                }
                return;
            };
            // `*` is one non-empty name: never the empty last segment of a distinct trailing '/'.
            if let (Some(next), false) = (node.any(), segment.is_empty()) {
                self.visit(next, remaining.clone());
            }
            for &(placeholder, next) in node.placeholders() {
                if placeholder_matches(self.identity, placeholder, segment, &self.policy.policy.path_reading, self.merge) {
                    self.visit(next, remaining.clone());
                }
            }
            match node.literal(segment) {
                Some(next) => node_index = next,
                None => return,
            }
        }
    }

    fn consider(&mut self, rule_index: u32) {
        let Some(rule) = self.policy.policy.rules.get(rule_index as usize) else { return };
        let slot = match rule.action {
            Action::Deny => &mut self.best_deny,
            Action::Allow if self.denies_only => return,
            Action::Allow => &mut self.best_allow,
        };
        // Rules are sorted by name, so a lower index is the earlier name; skip work that cannot change the report.
        if slot.is_some_and(|best| best <= rule_index) {
            return;
        }
        if method_matches(rule, self.method)
            && rule.principals.iter().any(|p| principal_matches(p, self.identity, rule.action == Action::Deny))
        {
            *slot = Some(rule_index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::PathRejection;

    use crate::validate::tests::EXAMPLE;

    fn cn(name: &str) -> Identity {
        Identity { common_names: vec![name.into()], subject: format!("CN={name}"), ..Identity::default() }
    }

    fn report() -> Identity {
        Identity { organizational_units: vec!["reporting".into()], ..cn("report-service") }
    }

    fn compiled(src: &str) -> CompiledPolicy {
        CompiledPolicy::from_json(src).unwrap()
    }

    fn policy_with(default: &str, rules: &str) -> CompiledPolicy {
        compiled(&format!(r#"{{"version": 1, "default_action": "{default}", "rules": [{rules}]}}"#))
    }

    #[test]
    fn the_example_allows_what_it_names_and_nothing_else() {
        let p = compiled(EXAMPLE);
        let d = p.decide(Some(&cn("order-service")), "POST", "/api/payment/create");
        assert_eq!((d.verdict, d.rule, d.reason), (Verdict::Allow, Some("orders-create-payment"), Reason::Rule(Action::Allow)));
        assert!(p.decide(Some(&report()), "GET", "/api/payment/query").is_allowed());
        assert!(p.decide(Some(&report()), "HEAD", "/api/payment/query/42").is_allowed());
        let d = p.decide(Some(&report()), "POST", "/api/payment/create");
        assert_eq!((d.verdict, d.rule, d.reason), (Verdict::Deny, None, Reason::Default(Action::Deny)));
        assert!(!p.decide(Some(&cn("report-service")), "GET", "/api/payment/query").is_allowed(), "OU is required too");
        assert!(!p.decide(Some(&cn("unknown")), "GET", "/api/payment/query").is_allowed());
        assert!(!p.decide(Some(&cn("order-service")), "GET", "/api/payment/create").is_allowed(), "method matters");
    }

    #[test]
    fn spiffe_id_alone_is_enough_for_the_order_rule() {
        let p = compiled(EXAMPLE);
        let spiffe = Identity { uri_sans: vec!["spiffe://shop.test/ns/prod/sa/order".into()], ..Identity::default() };
        assert!(p.decide(Some(&spiffe), "POST", "/api/payment/create").is_allowed());
    }

    #[test]
    fn deny_beats_allow_whatever_the_order() {
        let allow_all = r#"{"name": "all", "action": "allow", "principals": [{"any": true}], "paths": ["/**"]}"#;
        let deny_admin = r#"{"name": "admin", "action": "deny", "principals": [{"any": true}], "paths": ["/admin/**"]}"#;
        for rules in [format!("{allow_all},{deny_admin}"), format!("{deny_admin},{allow_all}")] {
            let p = policy_with("allow", &rules);
            let d = p.decide(Some(&cn("x")), "GET", "/admin");
            assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("admin")));
            assert_eq!(p.decide(Some(&cn("x")), "GET", "/public").rule, Some("all"));
        }
    }

    #[test]
    fn the_reported_rule_is_the_first_by_name_not_by_position() {
        let r = |name: &str| format!(r#"{{"name": "{name}", "action": "allow", "principals": [{{"any": true}}], "paths": ["/a"]}}"#);
        let p1 = policy_with("deny", &format!("{},{}", r("zeta"), r("alpha")));
        let p2 = policy_with("deny", &format!("{},{}", r("alpha"), r("zeta")));
        assert_eq!(p1.decide(Some(&cn("x")), "GET", "/a").rule, Some("alpha"));
        assert_eq!(p2.decide(Some(&cn("x")), "GET", "/a").rule, Some("alpha"));
    }

    #[test]
    fn default_allow_applies_only_when_nothing_matches() {
        let p = policy_with("allow", r#"{"name": "d", "action": "deny", "principals": [{"cn": "bad"}], "paths": ["/**"]}"#);
        let d = p.decide(Some(&cn("good")), "GET", "/x");
        assert_eq!((d.verdict, d.rule, d.reason), (Verdict::Allow, None, Reason::Default(Action::Allow)));
        assert_eq!(p.decide(Some(&cn("bad")), "GET", "/x").verdict, Verdict::Deny);
    }

    #[test]
    fn no_certificate_is_denied_even_under_default_allow() {
        let p = policy_with("allow", "");
        let d = p.decide(None, "GET", "/");
        assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::NoPeerCertificate));
    }

    #[test]
    fn non_canonical_paths_and_methods_are_denied_with_reasons() {
        let p = policy_with("allow", "");
        let d = p.decide(Some(&cn("x")), "GET", "/a/../b");
        assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::Path(PathRejection::DotSegment)));
        assert_eq!(p.decide(Some(&cn("x")), "get", "/").reason, Reason::Method);
        assert_eq!(p.decide(Some(&cn("x")), "GET", "").reason, Reason::Path(PathRejection::Empty));
    }

    #[test]
    fn encoded_characters_cannot_slip_past_a_deny_rule() {
        let p = compiled(EXAMPLE);
        let d = p.decide(Some(&cn("order-service")), "POST", "/api/payment/%61dmin/x");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("nobody-on-admin")));
        assert_eq!(
            p.decide(Some(&cn("order-service")), "POST", "/api/payment/admin").rule,
            Some("nobody-on-admin"),
            "** matches zero segments"
        );
    }

    #[test]
    fn method_override_in_the_query_is_refused() {
        let p = compiled(EXAMPLE);
        let d = p.decide(Some(&cn("order-service")), "POST", "/api/payment/create?_method=DELETE");
        assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::Override));
    }

    #[test]
    fn mangled_query_override_names_are_refused_unless_the_backends_ignore_overrides() {
        let p = compiled(EXAMPLE);
        for target in
            ["/api/payment/create?.method=DELETE", "/api/payment/create?%20_method=DELETE", "/api/payment/create?_method%00=DELETE"]
        {
            let d = p.decide(Some(&cn("order-service")), "POST", target);
            assert_eq!((d.verdict, d.reason), (Verdict::Deny, Reason::Override), "{target}");
        }
        let ignoring = compiled(&EXAMPLE.replacen(r#""version": 1,"#, r#""version": 1, "method_overrides": "ignore","#, 1));
        assert_eq!(ignoring.policy().method_overrides, crate::MethodOverrides::Ignore);
        let d = ignoring.decide(Some(&cn("order-service")), "POST", "/api/payment/create?_method=DELETE");
        assert_eq!((d.verdict, d.rule), (Verdict::Allow, Some("orders-create-payment")));
    }

    #[test]
    fn whole_requests_are_decided_as_the_filter_decides_them_as_they_arrive() {
        let p = compiled(EXAMPLE);
        let order = cn("order-service");
        let form: &[(&[u8], &[u8])] = &[(b"content-type", b"application/x-www-form-urlencoded")];
        let request = |headers, body| RequestParts { method: "POST", target: "/api/payment/create", headers, body };
        let d = p.decide_request(Some(&order), &request(form, Some(b"a=1")));
        assert_eq!((d.verdict, d.rule), (Verdict::Allow, Some("orders-create-payment")));
        assert_eq!(p.decide_request(Some(&order), &request(form, Some(b"a=1&_method=DELETE"))).reason, Reason::BodyOverride);
        assert_eq!(p.decide_request(Some(&order), &request(form, None)).verdict, Verdict::Allow, "no body follows");
        let big = vec![b'x'; crate::model::DEFAULT_BODY_INSPECTION_LIMIT as usize + 1];
        assert_eq!(p.decide_request(Some(&order), &request(form, Some(&big))).reason, Reason::BodyTooLarge);
        let gzip: &[(&[u8], &[u8])] = &[(b"content-type", b"application/x-www-form-urlencoded"), (b"content-encoding", b"gzip")];
        assert_eq!(p.decide_request(Some(&order), &request(gzip, Some(b"x"))).reason, Reason::BodyUnreadable);
        // Override headers, after the path checks and before the rules.
        let header: &[(&[u8], &[u8])] = &[(b"X-HTTP-Method-Override", b"DELETE")];
        assert_eq!(p.decide_request(Some(&order), &request(header, None)).reason, Reason::Override);
        let refused_path = RequestParts { target: "/api/../x", ..request(header, None) };
        assert_eq!(p.decide_request(Some(&order), &refused_path).reason, Reason::Path(PathRejection::DotSegment));
        // A deny stands whatever the body says; its body is not read.
        assert_eq!(p.decide_request(Some(&report()), &request(form, Some(b"_method=GET"))).reason, Reason::Default(Action::Deny));
        // Backends that ignore method overrides: neither the header nor the body counts; a path override does.
        let ignoring = compiled(&EXAMPLE.replacen(r#""version": 1,"#, r#""version": 1, "method_overrides": "ignore","#, 1));
        assert!(ignoring.decide_request(Some(&order), &request(header, Some(b"_method=DELETE"))).is_allowed());
        let path_override: &[(&[u8], &[u8])] = &[(b"x-original-url", b"/api/payment/admin/x")];
        assert_eq!(ignoring.decide_request(Some(&order), &request(path_override, None)).reason, Reason::Override);
    }

    #[test]
    fn a_uri_san_with_a_fragment_meets_no_allow_wildcard_and_every_deny_wildcard() {
        let odd = Identity { uri_sans: vec!["spiffe://shop.test/ns/dev#/sa/order".into()], ..Identity::default() };
        let allow = policy_with(
            "deny",
            r#"{"name": "orders", "action": "allow", "principals": [{"uri_san": "spiffe://shop.test/ns/*/sa/order"}], "paths": ["/**"]}"#,
        );
        assert!(!allow.decide(Some(&odd), "GET", "/x").is_allowed());
        let deny = policy_with(
            "allow",
            r#"{"name": "no-orders", "action": "deny", "principals": [{"uri_san": "spiffe://shop.test/ns/*/sa/order"}], "paths": ["/**"]}"#,
        );
        let d = deny.decide(Some(&odd), "GET", "/x");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("no-orders")), "fails closed under default allow");
        assert_eq!(crate::decide_naive(deny.policy(), Some(&odd), "GET", "/x").rule, Some("no-orders"));
    }

    /// `allow GET /docs/**` with the carve-out `deny /docs/internal/**`, under a `path_reading`.
    fn docs_policy(reading: &str) -> CompiledPolicy {
        compiled(&format!(
            r#"{{"version": 1, "default_action": "deny", "path_reading": {reading}, "rules": [
                {{"name": "docs", "action": "allow", "principals": [{{"any": true}}], "paths": ["/docs/**"], "methods": ["GET"]}},
                {{"name": "internal", "action": "deny", "principals": [{{"any": true}}], "paths": ["/docs/internal/**"]}}]}}"#
        ))
    }

    /// The rule that decided, or the refusal, for `target`, by both evaluators (which must agree).
    fn carve_out(p: &CompiledPolicy, target: &str) -> Result<&'static str, Reason> {
        let id = cn("reader");
        let d = p.decide(Some(&id), "GET", target);
        let naive = crate::decide_naive(p.policy(), Some(&id), "GET", target);
        assert_eq!((d.verdict, d.rule, d.reason), (naive.verdict, naive.rule, naive.reason), "{target}: index and reference disagree");
        match (d.rule, d.reason) {
            (Some("docs"), _) => Ok("docs"),
            (Some("internal"), _) => Ok("internal"),
            (_, reason) => Err(reason),
        }
    }

    #[test]
    fn deny_carve_outs_meet_the_name_each_declared_backend_resolves() {
        let path = |r| Err(Reason::Path(r));
        let strict = docs_policy("{}");
        assert_eq!(carve_out(&strict, "/docs/guide"), Ok("docs"));
        assert_eq!(carve_out(&strict, "/docs/internal/secret"), Ok("internal"));
        let windows = docs_policy(r#"{"platform": "windows"}"#);
        assert_eq!(carve_out(&windows, "/docs/internal::$INDEX_ALLOCATION/secret"), Ok("internal"));
        assert_eq!(carve_out(&windows, "/docs/INTERNAL./secret"), Ok("internal"));
        assert_eq!(carve_out(&windows, "/docs/intern~1/secret"), path(PathRejection::ShortName));
        assert_eq!(
            carve_out(&windows, "/docs/%EF%BD%89nternal/secret"),
            Ok("internal"),
            "fullwidth i is no look-alike of a delimiter; its best fit is i"
        );
        let windows_as_sent = docs_policy(r#"{"platform": "windows", "unicode": "as_sent"}"#);
        assert_eq!(carve_out(&windows_as_sent, "/docs/%EF%BD%89nternal/secret"), Ok("internal"), "its best-fit reading");
        assert_eq!(carve_out(&windows_as_sent, "/docs/%EF%BD%89ntro"), Ok("docs"));
        let trim = docs_policy(r#"{"trim_whitespace": true}"#);
        assert_eq!(carve_out(&trim, "/docs/%20internal/secret"), Ok("internal"));
        let mac = docs_policy(r#"{"platform": "macos"}"#);
        assert_eq!(carve_out(&mac, "/docs/inter%E2%80%8Cnal/secret"), Ok("internal"));
        assert_eq!(carve_out(&mac, "/docs/%EF%BB%BFinternal/secret"), Ok("internal"));
        let suffix = docs_policy(r#"{"suffix_patterns": true}"#);
        assert_eq!(carve_out(&suffix, "/docs/internal.json"), Ok("internal"));
        assert_eq!(carve_out(&suffix, "/docs/guide.json"), Ok("docs"));
        assert_eq!(carve_out(&strict, "/docs/internal.json"), Ok("docs"), "without suffix matching it is another name");
        let nfc = docs_policy(r#"{"unicode": "nfc"}"#);
        let nfc_deny = compiled(
            r#"{"version": 1, "default_action": "allow", "path_reading": {"unicode": "nfc"}, "rules": [
                {"name": "cafe", "action": "deny", "principals": [{"any": true}], "paths": ["/docs/caf\u00e9/**"]}]}"#,
        );
        assert_eq!(nfc_deny.decide(Some(&cn("x")), "GET", "/docs/cafe%CC%81/menu").rule, Some("cafe"), "the NFD spelling");
        assert_eq!(carve_out(&nfc, "/docs/cafe%CC%81"), Ok("docs"));
        let ci = docs_policy(r#"{"case": "insensitive"}"#);
        assert_eq!(carve_out(&ci, "/Docs/Internal/secret"), Ok("internal"));
        assert_eq!(carve_out(&ci, "/docs/%C4%B0nternal/secret"), Ok("internal"), "capital I with dot");
        assert_eq!(carve_out(&strict, "/Docs/Internal/secret"), Err(Reason::Default(Action::Deny)), "case-sensitive: another path");
    }

    /// Allow `/home/{cn}/**` (and `/accounts/{cn}`) under a reading: the rule that decided, or the reason.
    fn own_home(reading: &str, caller: &str, target: &str) -> Result<&'static str, Reason> {
        let p = compiled(&format!(
            r#"{{"version": 1, "default_action": "deny", "path_reading": {reading}, "rules": [
                {{"name": "home", "action": "allow", "principals": [{{"any": true}}], "paths": ["/home/{{cn}}/**", "/accounts/{{cn}}"]}}]}}"#
        ));
        let id = cn(caller);
        let d = p.decide(Some(&id), "GET", target);
        let naive = crate::decide_naive(p.policy(), Some(&id), "GET", target);
        assert_eq!((d.verdict, d.rule, d.reason), (naive.verdict, naive.rule, naive.reason), "{target}: index and reference disagree");
        match d.rule {
            Some(_) => Ok("home"),
            None => Err(d.reason),
        }
    }

    #[test]
    fn a_placeholder_never_names_another_callers_resource_through_the_backends_rewriting() {
        let no = Err(Reason::Default(Action::Deny));
        assert_eq!(own_home(r#"{"platform": "windows"}"#, "alice", "/home/ALICE/secret"), Ok("home"));
        for (reading, attacker, target) in [
            (r#"{"platform": "windows"}"#, "alice.", "/home/alice/secret"),
            (r#"{"platform": "windows"}"#, "alice::$DATA", "/home/alice/secret"),
            (r#"{"platform": "windows"}"#, "\u{FB01}ona", "/home/fiona/secret"),
            (r#"{"platform": "windows"}"#, "\u{130}lker", "/home/ilker/secret"),
            (r#"{"platform": "windows"}"#, "strau\u{DF}", "/home/strauss/secret"),
            (r#"{"platform": "windows"}"#, "\u{212A}ate", "/home/kate/secret"),
            (r#"{"case": "insensitive"}"#, "\u{FB01}ona", "/home/fiona/secret"),
            (r#"{"trim_whitespace": true, "platform": "posix"}"#, " alice", "/home/alice/secret"),
            (r#"{"unicode": "nfkc"}"#, "\u{FF41}lice", "/home/alice/secret"),
            (r#"{"platform": "macos"}"#, "al\u{200C}ice", "/home/alice/secret"),
            // Spring's suffix matching cuts a path variable at its last dot: payments.dev would be payments.
            (r#"{"suffix_patterns": true}"#, "payments.dev", "/accounts/payments.dev"),
            // Best fit turns the fullwidth a into a.
            (r#"{"platform": "windows"}"#, "\u{FF41}lice", "/home/%EF%BD%81lice/secret"),
        ] {
            assert_eq!(own_home(reading, attacker, target), no, "{attacker:?} reaches {target} under {reading}");
        }
        assert_eq!(own_home(r#"{"suffix_patterns": true}"#, "payments", "/accounts/payments"), Ok("home"));
    }

    #[test]
    fn deny_carve_outs_meet_what_any_backend_merges_and_allows_only_what_every_backend_does() {
        let ci = |deny: &str| {
            compiled(&format!(
                r#"{{"version": 1, "default_action": "deny", "path_reading": {{"case": "insensitive"}}, "rules": [
                    {{"name": "docs", "action": "allow", "principals": [{{"any": true}}], "paths": ["/docs/**"]}},
                    {{"name": "carve", "action": "deny", "principals": [{{"any": true}}], "paths": ["{deny}"]}}]}}"#
            ))
        };
        let rule = |p: &CompiledPolicy, target: &str| p.decide(Some(&cn("x")), "GET", target).rule.map(str::to_owned);
        let sharp = ci("/docs/stra\\u00dfe/**");
        for target in ["/docs/stra%C3%9Fe/x", "/docs/STRASSE/x", "/docs/STRA%E1%BA%9EE/x"] {
            assert_eq!(rule(&sharp, target), Some("carve".to_owned()), "{target}");
        }
        let kelvin = ci("/docs/key/**");
        assert_eq!(rule(&kelvin, "/docs/%E2%84%AAEY/x"), Some("carve".to_owned()), "Java meets the Kelvin sign with k");
        let only = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"case": "insensitive"}, "rules": [
                {"name": "strasse", "action": "allow", "principals": [{"any": true}], "paths": ["/docs/strasse"]}]}"#,
        );
        assert_eq!(rule(&only, "/docs/STRASSE"), Some("strasse".to_owned()));
        assert_eq!(rule(&only, "/docs/stra%C3%9Fe"), None, "straße is another name to Java and NTFS");
    }

    #[test]
    fn deny_carve_outs_meet_the_other_spellings_of_an_unknown_backend_and_a_split_slash() {
        let strict = docs_policy("{}");
        for target in ["/docs/%EF%BD%89nternal/x", "/docs/%E2%85%B0nternal/x", "/docs/inter%E2%80%8Cnal/x", "/docs/%EF%BB%BFinternal/x"] {
            assert_eq!(carve_out(&strict, target), Ok("internal"), "{target}");
        }
        assert_eq!(carve_out(&strict, "/docs/caf%C3%A9"), Ok("docs"), "other names stay allowed");
        let keep = docs_policy(r#"{"encoded_slash": "in_segment"}"#);
        assert_eq!(carve_out(&keep, "/docs/internal%2Fsecret.txt"), Ok("internal"));
        assert_eq!(carve_out(&keep, "/docs/group%2Fproject"), Ok("docs"));
        let windows_suffix = docs_policy(r#"{"platform": "windows", "unicode": "as_sent", "suffix_patterns": true}"#);
        assert_eq!(carve_out(&windows_suffix, "/docs/%EF%BD%89nternal.json"), Ok("internal"), "suffix of the best-fit reading");
    }

    #[test]
    fn patterns_are_read_like_paths() {
        let ci = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"case": "insensitive"}, "rules": [
                {"name": "admin", "action": "allow", "principals": [{"cn": "Ops"}], "paths": ["/Admin/{cn}"]}]}"#,
        );
        assert!(ci.decide(Some(&cn("Ops")), "GET", "/ADMIN/ops").is_allowed(), "literal and placeholder both folded");
        let distinct = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"trailing_slash": "distinct"}, "rules": [
                {"name": "login", "action": "allow", "principals": [{"any": true}], "paths": ["/admin/login/"]}]}"#,
        );
        assert!(distinct.decide(Some(&cn("x")), "POST", "/admin/login/").is_allowed());
        assert!(!distinct.decide(Some(&cn("x")), "POST", "/admin/login").is_allowed(), "another route");
        let same = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"trailing_slash": "same_as_without"}, "rules": [
                {"name": "login", "action": "allow", "principals": [{"any": true}], "paths": ["/admin/login"]}]}"#,
        );
        assert!(same.decide(Some(&cn("x")), "POST", "/admin/login/").is_allowed());
        let wiki = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"encoded_delimiters": "decode_once"}, "rules": [
                {"name": "c", "action": "allow", "principals": [{"any": true}], "paths": ["/wiki/C#_(programming_language)", "/wiki/100%_(album)"]}]}"#,
        );
        assert!(wiki.decide(Some(&cn("x")), "GET", "/wiki/C%23_(programming_language)").is_allowed());
        assert!(wiki.decide(Some(&cn("x")), "GET", "/wiki/100%25_(album)").is_allowed());
        let gitlab = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"encoded_slash": "in_segment"}, "rules": [
                {"name": "issues", "action": "allow", "principals": [{"any": true}], "paths": ["/api/v4/projects/*/issues"]}]}"#,
        );
        assert!(gitlab.decide(Some(&cn("x")), "GET", "/api/v4/projects/group%2Fproject/issues").is_allowed());
        assert!(!gitlab.decide(Some(&cn("x")), "GET", "/api/v4/projects/group/project/issues").is_allowed());
        let servlet = compiled(
            r#"{"version": 1, "default_action": "deny", "path_reading": {"path_parameters": "strip"}, "rules": [
                {"name": "cart", "action": "allow", "principals": [{"any": true}], "paths": ["/shop/cart"]}]}"#,
        );
        assert!(servlet.decide(Some(&cn("x")), "GET", "/shop;jsessionid=0A1B/cart").is_allowed());
    }

    #[test]
    fn query_strings_do_not_change_the_resource() {
        let p = compiled(EXAMPLE);
        assert!(p.decide(Some(&cn("order-service")), "POST", "/api/payment/create?/query").is_allowed());
        assert!(!p.decide(Some(&report()), "POST", "/api/payment/create?/query").is_allowed());
        assert!(!p.decide(Some(&report()), "GET", "/api/payment/create?x=/api/payment/query").is_allowed());
    }

    #[test]
    fn dry_run_allows_but_reports_the_deny() {
        let p = compiled(r#"{"version": 1, "default_action": "deny", "mode": "dry_run", "rules": []}"#);
        let d = p.decide(Some(&cn("x")), "GET", "/");
        assert!(d.is_allowed());
        assert!(d.is_dry_run_deny());
        assert_eq!(d.verdict, Verdict::Deny);
        assert!(p.refuse(Reason::Internal).is_allowed());
        let enforce = policy_with("deny", "");
        assert!(!enforce.refuse(Reason::Internal).is_allowed());
    }

    #[test]
    fn cn_placeholder_ties_a_device_to_its_own_path() {
        let p = policy_with(
            "deny",
            r#"{"name": "own", "action": "allow", "principals": [{"ou": "fleet"}], "paths": ["/devices/{cn}/telemetry"], "methods": ["POST"]}"#,
        );
        let dev = |name: &str| Identity { organizational_units: vec!["fleet".into()], ..cn(name) };
        assert!(p.decide(Some(&dev("dev-1")), "POST", "/devices/dev-1/telemetry").is_allowed());
        assert!(!p.decide(Some(&dev("dev-1")), "POST", "/devices/dev-2/telemetry").is_allowed());
        assert!(!p.decide(Some(&dev("dev-1")), "POST", "/devices/dev-1/telemetry/x").is_allowed());
        // A CN that would change the path's shape never matches.
        for bad in ["a/b", "a%2Fb", "", "..", "."] {
            let id = dev(bad);
            let path = format!("/devices/{bad}/telemetry");
            assert!(!p.decide(Some(&id), "POST", &path).is_allowed(), "{bad:?}");
        }
        // Two CNs are ambiguous: no placeholder value.
        let two = Identity {
            common_names: vec!["dev-1".into(), "dev-2".into()],
            organizational_units: vec!["fleet".into()],
            ..Identity::default()
        };
        assert!(!p.decide(Some(&two), "POST", "/devices/dev-1/telemetry").is_allowed());
    }

    #[test]
    fn spiffe_last_segment_placeholder() {
        let p = policy_with(
            "deny",
            r#"{"name": "own", "action": "allow", "principals": [{"uri_san": "spiffe://shop.test/ns/*/sa/*"}], "paths": ["/accounts/{uri_san_last_segment}/**"]}"#,
        );
        let id = Identity { uri_sans: vec!["spiffe://shop.test/ns/prod/sa/billing".into()], ..Identity::default() };
        assert!(p.decide(Some(&id), "GET", "/accounts/billing/invoices").is_allowed());
        assert!(!p.decide(Some(&id), "GET", "/accounts/orders/invoices").is_allowed());
        let no_path = Identity { uri_sans: vec!["spiffe://billing".into()], ..Identity::default() };
        assert!(!p.decide(Some(&no_path), "GET", "/accounts/billing").is_allowed());
        let two = Identity {
            uri_sans: vec!["spiffe://shop.test/ns/prod/sa/billing".into(), "spiffe://shop.test/ns/prod/sa/orders".into()],
            ..Identity::default()
        };
        assert!(!p.decide(Some(&two), "GET", "/accounts/orders/x").is_allowed(), "several URI SANs are ambiguous");
    }

    #[test]
    fn a_query_or_fragment_in_the_uri_san_does_not_name_another_workloads_path() {
        let p = policy_with(
            "deny",
            r#"{"name": "own", "action": "allow", "principals": [{"any": true}], "paths": ["/config/{uri_san_last_segment}/**"]}"#,
        );
        for uri in ["spiffe://shop.test/ns/dev/sa/x?/order", "spiffe://shop.test/ns/dev/sa/x#/order"] {
            let dev = Identity { uri_sans: vec![uri.into()], ..Identity::default() };
            assert!(!p.decide(Some(&dev), "GET", "/config/order/db").is_allowed(), "{uri}");
            assert!(!p.decide(Some(&dev), "GET", "/config/x/db").is_allowed(), "{uri}");
        }
    }

    #[test]
    fn a_uri_san_with_a_fragment_or_query_does_not_pass_for_another_namespace() {
        let p = policy_with(
            "deny",
            r#"{"name": "orders", "action": "allow", "principals": [{"uri_san": "spiffe://shop.test/ns/*/sa/order"}], "paths": ["/pay"]}"#,
        );
        let id = |uri: &str| Identity { uri_sans: vec![uri.into()], ..Identity::default() };
        assert!(p.decide(Some(&id("spiffe://shop.test/ns/prod/sa/order")), "GET", "/pay").is_allowed());
        for uri in ["spiffe://shop.test/ns/dev#/sa/order", "spiffe://shop.test/ns/dev?/sa/order", "spiffe://shop.test/ns/prod/sa/order#"] {
            assert!(!p.decide(Some(&id(uri)), "GET", "/pay").is_allowed(), "{uri}");
        }
    }

    #[test]
    fn head_is_denied_where_get_is_unless_the_rule_says_otherwise() {
        let allow_all =
            r#"{"name": "all", "action": "allow", "principals": [{"any": true}], "paths": ["/**"], "methods": ["GET", "HEAD"]}"#;
        let deny_get =
            r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export/**"], "methods": ["GET"]}"#;
        let deny_get_only = r#"{"name": "no-export", "action": "deny", "principals": [{"any": true}], "paths": ["/export/**"], "methods": ["GET"], "head_with_get": false}"#;
        let p = policy_with("deny", &format!("{allow_all},{deny_get}"));
        let d = p.decide(Some(&cn("x")), "HEAD", "/export/all");
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, Some("no-export")));
        assert!(p.decide(Some(&cn("x")), "HEAD", "/public").is_allowed());
        let p = policy_with("deny", &format!("{allow_all},{deny_get_only}"));
        assert_eq!(p.decide(Some(&cn("x")), "HEAD", "/export/all").rule, Some("all"));
        assert_eq!(p.decide(Some(&cn("x")), "GET", "/export/all").rule, Some("no-export"));
        let p = policy_with(
            "deny",
            r#"{"name": "read", "action": "allow", "principals": [{"any": true}], "paths": ["/**"], "methods": ["GET"]}"#,
        );
        assert!(!p.decide(Some(&cn("x")), "HEAD", "/a").is_allowed(), "allowing GET does not allow HEAD");
    }

    #[test]
    fn cn_rules_need_exactly_one_cn() {
        let p = policy_with("deny", r#"{"name": "r", "action": "allow", "principals": [{"cn": "order-service"}], "paths": ["/"]}"#);
        let two = Identity { common_names: vec!["order-service".into(), "evil".into()], ..Identity::default() };
        assert!(!p.decide(Some(&two), "GET", "/").is_allowed());
    }

    #[test]
    fn san_fields_match_any_san_of_their_type() {
        let p = policy_with(
            "deny",
            r#"{"name": "r", "action": "allow", "principals": [{"dns_san": "*.shop.test", "ip_san": "10.0.0.0/8"}], "paths": ["/"]}"#,
        );
        let id = Identity {
            dns_sans: vec!["a.b.shop.test".into(), "api.shop.test".into()],
            ip_sans: vec!["192.168.1.1".parse().unwrap(), "10.1.1.1".parse().unwrap()],
            ..Identity::default()
        };
        assert!(p.decide(Some(&id), "GET", "/").is_allowed());
        let only_nested = Identity { dns_sans: vec!["a.b.shop.test".into()], ..id.clone() };
        assert!(!p.decide(Some(&only_nested), "GET", "/").is_allowed(), "wildcard must not cross a label");
    }

    #[test]
    fn a_fully_qualified_dns_san_matches_the_name_without_the_dot() {
        for pattern in ["api.shop.test", "*.shop.test", "api.shop.test."] {
            let p = policy_with(
                "deny",
                &format!(r#"{{"name": "r", "action": "allow", "principals": [{{"dns_san": "{pattern}"}}], "paths": ["/h/{{dns_san}}"]}}"#),
            );
            let fqdn = Identity { dns_sans: vec!["api.shop.test.".into()], ..Identity::default() };
            assert!(p.decide(Some(&fqdn), "GET", "/h/api.shop.test").is_allowed(), "{pattern}");
            let plain = Identity { dns_sans: vec!["api.shop.test".into()], ..Identity::default() };
            assert!(p.decide(Some(&plain), "GET", "/h/api.shop.test").is_allowed(), "{pattern}");
        }
    }

    #[test]
    fn email_san_domains_match_in_any_case_local_parts_exactly() {
        let p = policy_with(
            "deny",
            r#"{"name": "ops", "action": "allow", "principals": [{"email_san": "ops@shop.test"}, {"email_san": "*@ops.shop.test"}], "paths": ["/"]}"#,
        );
        let mail = |m: &str| Identity { email_sans: vec![m.into()], ..Identity::default() };
        assert_eq!(p.decide(Some(&mail("ops@Shop.Test")), "GET", "/").rule, Some("ops"));
        assert!(p.decide(Some(&mail("anyone@OPS.shop.test")), "GET", "/").is_allowed());
        assert!(!p.decide(Some(&mail("Ops@shop.test")), "GET", "/").is_allowed());
    }

    #[test]
    fn an_ipv4_mapped_ip_san_meets_ipv4_rules() {
        let p = policy_with(
            "allow",
            r#"{"name": "outside", "action": "deny", "principals": [{"ip_san": "192.168.0.0/16"}], "paths": ["/**"]}"#,
        );
        let mapped = Identity { ip_sans: vec!["::ffff:192.168.1.7".parse().unwrap()], ..cn("x") };
        assert_eq!(p.decide(Some(&mapped), "GET", "/").rule, Some("outside"), "the mapped form must not dodge a deny rule");
        let p = policy_with("deny", r#"{"name": "lan", "action": "allow", "principals": [{"ip_san": "10.0.0.0/8"}], "paths": ["/"]}"#);
        assert!(p.decide(Some(&Identity { ip_sans: vec!["::ffff:10.0.0.1".parse().unwrap()], ..cn("x") }), "GET", "/").is_allowed());
    }

    #[test]
    fn serial_and_fingerprint_rules_match_canonical_forms() {
        let sha = "ab".repeat(32);
        let p = policy_with(
            "allow",
            &format!(
                r#"{{"name": "revoked", "action": "deny", "principals": [{{"serial": "00:0F:A1"}}, {{"sha256": "{}"}}], "paths": ["/**"]}}"#,
                "AB:".repeat(31) + "AB"
            ),
        );
        let by_serial = Identity { serial: "fa1".into(), ..cn("x") };
        let by_sha = Identity { sha256: sha, ..cn("y") };
        assert_eq!(p.decide(Some(&by_serial), "GET", "/").rule, Some("revoked"));
        assert_eq!(p.decide(Some(&by_sha), "GET", "/").rule, Some("revoked"));
        assert!(p.decide(Some(&cn("z")), "GET", "/").is_allowed());
    }

    #[test]
    fn star_segments_and_root() {
        let p = policy_with("deny", r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/", "/v1/*/items"]}"#);
        assert!(p.decide(Some(&cn("x")), "GET", "/").is_allowed());
        assert!(p.decide(Some(&cn("x")), "GET", "/v1/abc/items").is_allowed());
        assert!(!p.decide(Some(&cn("x")), "GET", "/v1/a/b/items").is_allowed());
        assert!(!p.decide(Some(&cn("x")), "GET", "/v1/items").is_allowed());
    }
}
