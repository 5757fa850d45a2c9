//! The gateway sections against a mock host: limits through shared data,
//! per-rule and per-identity counters, filter state and the audit record.

use std::cell::RefCell;

use mtls_authz_policy::{CompiledPolicy, Identity};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::cache::IdentityCache;
use crate::host::Metric;
use crate::http::{on_request_headers, Flow};
use crate::mock::MockHost;

fn partner(o: &str, cn: &str) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, o);
    params.distinguished_name = dn;
    let pem = params.self_signed(&KeyPair::generate().unwrap()).unwrap().pem();
    let digest = Identity::from_pem(pem.as_bytes()).unwrap().sha256;
    (pem, digest)
}

fn policy(gateway: &str) -> CompiledPolicy {
    CompiledPolicy::from_json(&format!(
        r#"{{"version": 1, "default_action": "deny", "revision": "r7", {gateway}
  "rules": [
    {{"name": "partner-orders", "action": "allow", "principals": [{{"o": "*"}}], "paths": ["/orders/**"]}},
    {{"name": "no-admin", "action": "deny", "principals": [{{"any": true}}], "paths": ["/orders/admin/**"]}}]}}"#
    ))
    .unwrap()
}

const QUOTA: &str = r#""limits": [{"name": "partner-quota", "rules": ["partner-orders"], "key": ["o"],
    "rate": {"requests": 1, "per": "second"}, "burst": 2}],"#;

const S: u64 = 1_000_000_000;

/// One request from `cert` on a host that shares `like`'s shared data and counters.
fn send(like: &MockHost, cert: &(String, String), path: &str, p: &CompiledPolicy, cache: &RefCell<IdentityCache>) -> MockHost {
    let host = like.next("GET", path).with_certificate(&cert.0, &cert.1);
    let flow = on_request_headers(&host, Some(p), cache, true);
    assert_eq!(flow == Flow::Continue, host.status().is_none(), "continue exactly when no local reply");
    host
}

fn header(host: &MockHost, name: &str) -> Option<String> {
    let response = host.response.borrow();
    response.as_ref()?.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[test]
fn a_partner_over_its_quota_gets_429_another_is_unaffected_and_time_restores_it() {
    let p = policy(QUOTA);
    let cache = RefCell::default();
    let (globex, initech) = (partner("Globex", "globex-app"), partner("Initech", "initech-app"));
    let mut base = MockHost::request("GET", "/");
    base.now = 100 * S;
    for _ in 0..2 {
        assert_eq!(send(&base, &globex, "/orders/1", &p, &cache).status(), None);
    }
    let refused = send(&base, &globex, "/orders/1", &p, &cache);
    assert_eq!(refused.status(), Some(429));
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("1"));
    let body: serde_json::Value = serde_json::from_slice(&refused.response.borrow().as_ref().unwrap().2).unwrap();
    assert_eq!(body["limit"], "partner-quota");
    assert_eq!(body["rule"], "partner-orders");
    assert_eq!(refused.metric(Metric::RequestsRateLimited), 1);
    assert_eq!(refused.metric(Metric::RequestsDenied), 1);
    assert_eq!(refused.logs_containing("mtls-authz: rate limited principal=\"cn=globex-app\"").len(), 1);
    // Initech has its own bucket.
    assert_eq!(send(&base, &initech, "/orders/1", &p, &cache).status(), None);
    // A second later Globex has one token again.
    base.now += S;
    assert_eq!(send(&base, &globex, "/orders/1", &p, &cache).status(), None);
    assert_eq!(send(&base, &globex, "/orders/1", &p, &cache).status(), Some(429));
    // Limits count only what their rules allow: a deny is a 403, not a token.
    assert_eq!(send(&base, &globex, "/orders/admin/x", &p, &cache).status(), Some(403));
    assert_eq!(base.counter_value("mtls_authz.rule.partner-orders.requests_allowed"), 4);
    assert_eq!(base.counter_value("mtls_authz.rule.partner-orders.requests_rate_limited"), 2);
    assert_eq!(base.counter_value("mtls_authz.rule.no-admin.requests_denied"), 1);
    assert!(base.shared.borrow().len() <= 2, "one bucket per partner");
}

#[test]
fn details_off_hides_the_limit_but_keeps_retry_after() {
    let p = policy(&format!(r#""deny_response": {{"details": false}}, {QUOTA}"#));
    let cache = RefCell::default();
    let globex = partner("Globex", "g");
    let base = MockHost::request("GET", "/");
    let last = (0..3).map(|_| send(&base, &globex, "/orders/1", &p, &cache)).last().unwrap();
    assert_eq!(last.response.borrow().as_ref().unwrap().2, mtls_authz_policy::limits::MINIMAL_BODY);
    assert_eq!(header(&last, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&last, crate::http::REVISION_HEADER), None);
}

#[test]
fn a_dry_run_limit_counts_and_logs_but_lets_through() {
    let p = policy(&QUOTA.replace(r#""burst": 2"#, r#""burst": 2, "dry_run": true"#));
    let cache = RefCell::default();
    let globex = partner("Globex", "g");
    let base = MockHost::request("GET", "/");
    let hosts: Vec<MockHost> = (0..4).map(|_| send(&base, &globex, "/orders/1", &p, &cache)).collect();
    assert!(hosts.iter().all(|h| h.status().is_none()));
    let over: u64 = hosts.iter().map(|h| h.metric(Metric::RequestsRateLimitedDryRun)).sum();
    assert_eq!(over, 2);
    assert_eq!(hosts.iter().map(|h| h.metric(Metric::RequestsAllowed)).sum::<u64>(), 4);
    assert_eq!(hosts[3].logs_containing("mtls-authz: dry-run rate limited ").len(), 1);
    assert_eq!(base.counter_value("mtls_authz.rule.partner-orders.requests_rate_limited_dry_run"), 2);
}

#[test]
fn a_full_table_refuses_new_keys_and_a_refilled_bucket_is_taken_over() {
    let p = policy(&QUOTA.replace(r#""burst": 2"#, r#""burst": 2, "max_keys": 1"#));
    let cache = RefCell::default();
    let (globex, initech) = (partner("Globex", "g"), partner("Initech", "i"));
    let mut base = MockHost::request("GET", "/");
    assert_eq!(send(&base, &globex, "/orders/1", &p, &cache).status(), None);
    let refused = send(&base, &initech, "/orders/1", &p, &cache);
    assert_eq!(refused.status(), Some(429));
    assert_eq!(refused.metric(Metric::RateLimitTableFull), 1);
    assert!(refused.logs_containing("reason=\"rate limit table full\"").len() == 1);
    base.now += S; // Globex's bucket is full again: as good as empty.
    assert_eq!(send(&base, &initech, "/orders/1", &p, &cache).status(), None);
    assert_eq!(base.shared.borrow().len(), 1, "never more than max_keys buckets");
}

#[test]
fn a_limit_that_cannot_be_checked_fails_closed() {
    let p = policy(QUOTA);
    let cache = RefCell::default();
    let globex = partner("Globex", "g");
    let mut host = MockHost::request("GET", "/orders/1").with_certificate(&globex.0, &globex.1);
    host.failing.insert("shared_get");
    assert_eq!(on_request_headers(&host, Some(&p), &cache, true), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn identity_counters_stop_at_the_cap_and_the_rest_count_as_other() {
    let p = policy(r#""metrics": {"per_identity": {"field": "o", "max_identities": 2}},"#);
    let cache = RefCell::default();
    let base = MockHost::request("GET", "/");
    let partners: Vec<_> = ["Globex Corporation", "Initech", "Umbrella", "Hooli"].iter().map(|o| partner(o, "app")).collect();
    let mut overflow = 0;
    for cert in &partners {
        for _ in 0..2 {
            overflow += send(&base, cert, "/orders/1", &p, &cache).metric(Metric::IdentityMetricsOverflow);
        }
    }
    assert_eq!(base.counter_value("mtls_authz.identity.Globex Corporation.requests_allowed"), 2);
    assert_eq!(base.counter_value("mtls_authz.identity.Initech.requests_allowed"), 2);
    assert_eq!(base.counter_value("mtls_authz.identity.~other.requests_allowed"), 4);
    assert_eq!(overflow, 4);
    let identity_counters = base.counters.borrow().iter().filter(|(n, _)| n.starts_with("mtls_authz.identity.")).count();
    assert_eq!(identity_counters, 3, "two partners and ~other");
}

#[test]
fn allowed_requests_publish_the_filter_state_the_policy_lists() {
    let p = policy(r#""filter_state": ["principal", "rule", "o"],"#);
    let cache = RefCell::default();
    let base = MockHost::request("GET", "/");
    let host = send(&base, &partner("Globex Corporation", "globex-app"), "/orders/1", &p, &cache);
    assert_eq!(host.filter_state_value("mtls_authz.principal").as_deref(), Some("cn=globex-app"));
    assert_eq!(host.filter_state_value("mtls_authz.rule").as_deref(), Some("partner-orders"));
    assert_eq!(host.filter_state_value("mtls_authz.o").as_deref(), Some("Globex Corporation"));
    let denied = send(&base, &partner("Globex", "g"), "/orders/admin/1", &p, &cache);
    assert!(denied.filter_state.borrow().is_empty(), "a refused request publishes nothing");
}

#[test]
fn the_audit_record_is_json_and_deny_only_skips_plain_allows() {
    let p = policy(r#""audit_log": {"events": "deny"},"#);
    let cache = RefCell::default();
    let base = MockHost::request("GET", "/");
    let hostile = partner("Globex", "x\"}\n{\"verdict\":\"allow\"");
    let allowed = send(&base, &hostile, "/orders/1", &p, &cache);
    assert_eq!(allowed.filter_state_value("mtls_authz.audit"), None);
    let denied = send(&base, &hostile, "/orders/admin/1", &p, &cache);
    let line = denied.filter_state_value("mtls_authz.audit").unwrap();
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["rule"], "no-admin");
    assert_eq!(v["identity"]["o"], "Globex");
    assert_eq!(v["path"], "/orders/admin/1");
    assert_eq!(v["revision"], "r7");
    let all = policy(r#""audit_log": {"events": "all"},"#);
    let allowed = send(&base, &hostile, "/orders/1", &all, &cache);
    let v: serde_json::Value = serde_json::from_str(&allowed.filter_state_value("mtls_authz.audit").unwrap()).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["reason"], "matched an allow rule");
}

#[test]
fn per_rule_counters_name_the_default_and_refusals_apart() {
    let p = policy("");
    let cache = RefCell::default();
    let base = MockHost::request("GET", "/");
    send(&base, &partner("Globex", "g"), "/elsewhere", &p, &cache);
    let no_cert = base.next("GET", "/orders/1");
    let mut no_cert = no_cert;
    no_cert.properties.clear();
    on_request_headers(&no_cert, Some(&p), &cache, true);
    assert_eq!(base.counter_value("mtls_authz.rule.~default.requests_denied"), 1);
    assert_eq!(base.counter_value("mtls_authz.rule.~refused.requests_denied"), 1);
    let off = policy(r#""metrics": {"per_rule": false},"#);
    send(&base, &partner("Globex", "g"), "/orders/1", &off, &cache);
    assert_eq!(base.counter_value("mtls_authz.rule.partner-orders.requests_allowed"), 0);
}

#[test]
fn a_bucket_changed_by_another_worker_is_read_again_and_a_lasting_race_fails_closed() {
    let p = policy(QUOTA);
    let cache = RefCell::default();
    let globex = partner("Globex", "g");
    let base = MockHost::request("GET", "/");
    assert_eq!(send(&base, &globex, "/orders/1", &p, &cache).status(), None, "creates the bucket");
    let host = base.next("GET", "/orders/1").with_certificate(&globex.0, &globex.1);
    host.cas_races.set(2);
    assert_eq!(on_request_headers(&host, Some(&p), &cache, true), Flow::Continue);
    assert_eq!(host.calls().iter().filter(|c| **c == "shared_set").count(), 3, "two lost races, then stored");
    let host = base.next("GET", "/orders/1").with_certificate(&globex.0, &globex.1);
    host.cas_races.set(100);
    assert_eq!(on_request_headers(&host, Some(&p), &cache, true), Flow::Stop);
    assert_eq!(host.status(), Some(403), "a bucket that cannot be updated is an internal error");
}

#[test]
fn a_grpc_call_over_its_quota_gets_resource_exhausted_not_a_429() {
    let p = policy(QUOTA);
    let cache = RefCell::default();
    let globex = partner("Globex", "globex-app");
    let base = MockHost::request("GET", "/");
    let call = || {
        let host = base.next("POST", "/orders/shop.Orders/Create").with_certificate(&globex.0, &globex.1);
        host.add_header("content-type", b"application/grpc");
        on_request_headers(&host, Some(&p), &cache, true);
        host
    };
    for _ in 0..2 {
        assert_eq!(*call().grpc_status.borrow(), None);
    }
    let refused = call();
    assert_eq!(*refused.grpc_status.borrow(), Some(8), "RESOURCE_EXHAUSTED");
    assert_eq!(
        header(&refused, "grpc-message").as_deref(),
        Some("too many requests: rate limit exceeded (rule partner-orders, limit partner-quota)")
    );
    assert_eq!(refused.metric(Metric::RequestsRateLimited), 1);
}
