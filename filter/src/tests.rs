//! Filter behaviour against a mock host: the request flow and the policy
//! loading, end to end except for Envoy itself.

use std::cell::RefCell;
use std::rc::Rc;

use mtls_authz_policy::{BodyReadings, CompiledPolicy, Identity, Reason};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

use crate::cache::{Entry, IdentityCache};
use crate::headers::HeaderMap;
use crate::host::{Level, Metric};
use crate::http::{
    on_forwarded_request_trailers, on_request_body, on_request_headers, on_request_trailers, Flow, Held, DRY_RUN_HEADER, OWN_HEADERS,
    PRINCIPAL_HEADER, REVISION_HEADER, RULE_HEADER,
};
use crate::mock::MockHost;
use crate::root::{PolicyHolder, REJECTED_PREFIX};

// ---------------------------------------------------------------------------
// Mock host (crate::mock), with what only these tests ask of it

impl MockHost {
    pub(crate) fn with_cert(self, cert: &TestCert) -> MockHost {
        self.with_certificate(&cert.pem, &cert.digest)
    }

    /// The local response's headers named `name`; there must be a local response.
    fn response_header(&self, name: &str) -> Vec<String> {
        let response = self.response.borrow();
        let (_, headers, _) = response.as_ref().expect("a local response");
        headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    /// Every copy of a request header, by any case of its name, as (name, value).
    fn copies_any_case(&self, name: &str) -> Vec<(String, Vec<u8>)> {
        self.headers.borrow().iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).cloned().collect()
    }

    fn body_json(&self) -> serde_json::Value {
        let response = self.response.borrow();
        let (_, headers, body) = response.as_ref().expect("a local response");
        assert_eq!(headers.first(), Some(&("content-type".to_string(), "application/json".to_string())));
        assert!(headers.iter().skip(1).all(|(n, _)| n == REVISION_HEADER), "{headers:?}");
        serde_json::from_slice(body).expect("JSON body")
    }
}

// ---------------------------------------------------------------------------
// Certificates and policies

pub(crate) struct TestCert {
    pem: String,
    digest: String,
}

pub(crate) fn cert(cn: &str, ou: Option<&str>, uri: Option<&str>) -> TestCert {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    params.distinguished_name = dn;
    if let Some(uri) = uri {
        params.subject_alt_names.push(SanType::URI(uri.try_into().unwrap()));
    }
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    let digest = Identity::from_pem(pem.as_bytes()).expect("rcgen certificate parses").sha256;
    TestCert { pem, digest }
}

const POLICY: &str = r#"{
  "version": 1,
  "default_action": "deny",
  "revision": "r1",
  "rules": [
    {"name": "orders-create-payment", "action": "allow",
     "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/order"}, {"cn": "order-service"}],
     "paths": ["/api/payment/create"], "methods": ["POST"]},
    {"name": "reports-read-payment", "action": "allow",
     "principals": [{"cn": "report-service", "ou": "reporting"}],
     "paths": ["/api/payment/query", "/api/payment/query/**"], "methods": ["GET", "HEAD"]},
    {"name": "anyone-health", "action": "allow", "principals": [{"any": true}], "paths": ["/health"]},
    {"name": "nobody-on-admin", "action": "deny", "principals": [{"any": true}], "paths": ["/api/payment/admin/**"]}
  ]
}"#;

fn policy(src: &str) -> Rc<CompiledPolicy> {
    Rc::new(CompiledPolicy::from_json(src).unwrap())
}

fn with_mode(mode_and_more: &str) -> String {
    POLICY.replacen("\"version\": 1,", &format!("\"version\": 1, {mode_and_more},"), 1)
}

/// A request without a body.
fn run(host: &MockHost, policy: &CompiledPolicy, cache: &RefCell<IdentityCache>) -> Flow {
    on_request_headers(host, Some(policy), cache, true)
}

fn order_service() -> TestCert {
    cert("order-service", None, None)
}

// ---------------------------------------------------------------------------
// Requests

#[test]
fn allow_sets_principal_and_rule() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create?id=7").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.status(), None);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"]);
    assert_eq!(host.header_values(RULE_HEADER), ["orders-create-payment"]);
    assert_eq!(host.header_values(REVISION_HEADER), ["r1"]);
    assert!(host.header_values(DRY_RUN_HEADER).is_empty());
    assert_eq!(host.metric(Metric::RequestsAllowed), 1);
    assert_eq!(host.metric(Metric::RequestsDenied), 0);
    assert_eq!(host.metric(Metric::CertificatesParsed), 1);
    assert!(host.logs.borrow().is_empty(), "allowed requests are not logged: {:?}", host.logs.borrow());
}

#[test]
fn principal_prefers_the_uri_san() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let c = cert("whatever", None, Some("spiffe://shop.test/ns/prod/sa/order"));
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["uri=spiffe://shop.test/ns/prod/sa/order"]);
}

#[test]
fn a_cn_spelling_a_spiffe_id_is_not_forwarded_as_that_uri_san() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let real = cert("whatever", None, Some("spiffe://shop.test/ns/prod/sa/order"));
    let impostor = cert("spiffe://shop.test/ns/prod/sa/order", None, None);
    let mut seen = Vec::new();
    for c in [&real, &impostor] {
        let host = MockHost::request("GET", "/health").with_cert(c);
        assert_eq!(run(&host, &p, &cache), Flow::Continue);
        seen.push(host.header_values(PRINCIPAL_HEADER));
    }
    assert_eq!(seen, [["uri=spiffe://shop.test/ns/prod/sa/order"], ["cn=spiffe://shop.test/ns/prod/sa/order"]]);
}

#[test]
fn a_certificate_with_only_a_dns_san_is_named_by_it() {
    let mut params = CertificateParams::new(vec!["API.Shop.Test".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    let pem = params.self_signed(&KeyPair::generate().unwrap()).unwrap().pem();
    let c = TestCert { digest: Identity::from_pem(pem.as_bytes()).unwrap().sha256, pem };
    let p = policy(POLICY);
    let host = MockHost::request("GET", "/health").with_cert(&c);
    assert_eq!(run(&host, &p, &RefCell::default()), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["dns=api.shop.test"]);
}

#[test]
fn legacy_principal_format_forwards_the_bare_name_but_logs_the_typed_one() {
    let p =
        policy(&POLICY.replace("\"revision\": \"r1\",", "\"revision\": \"r1\", \"upstream_headers\": {\"principal_format\": \"legacy\"},"));
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/health").with_cert(&cert("zoë", None, Some("spiffe://shop.test/ns/prod/sa/order")));
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["spiffe://shop.test/ns/prod/sa/order"]);
    let host = MockHost::request("GET", "/health").with_cert(&cert("zoë", None, None));
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["zo%C3%AB"]);
    let host = MockHost::request("GET", "/nope").with_cert(&cert("zoë", None, None));
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    let lines = host.logs_containing("mtls-authz: deny ");
    assert!(lines[0].contains("principal=\"cn=zo%C3%AB\" "), "{}", lines[0]);
}

#[test]
fn default_deny_is_a_403_with_reason() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/create").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(
        host.body_json(),
        serde_json::json!({"error": "forbidden", "rule": null, "reason": "no rule matched; default_action is deny"})
    );
    assert_eq!(host.response_header(REVISION_HEADER), ["r1"], "the 403 says which policy version decided");
    assert_eq!(host.metric(Metric::RequestsDenied), 1);
    assert_eq!(host.metric(Metric::RequestsAllowed), 0);
    let lines = host.logs_containing("mtls-authz: deny ");
    assert_eq!(lines.len(), 1, "{:?}", host.logs.borrow());
    let line = &lines[0];
    assert!(line.contains("principal=\"cn=order-service\""), "{line}");
    assert!(line.contains(&format!("sha256={}", &order_service_digest_prefix(&host))), "{line}");
    assert!(line.contains("method=\"GET\" path=\"/api/payment/create\" rule=default"), "{line}");
    assert!(line.contains("revision=r1"), "{line}");
}

fn order_service_digest_prefix(host: &MockHost) -> String {
    let digest = host.properties.get("connection.sha256_peer_certificate_digest").unwrap();
    String::from_utf8(digest[..16].to_vec()).unwrap()
}

#[test]
fn deny_rule_is_named_in_body_and_log() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/admin/users").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json(), serde_json::json!({"error": "forbidden", "rule": "nobody-on-admin", "reason": "matched a deny rule"}));
    assert_eq!(host.logs_containing("rule=nobody-on-admin reason=\"matched a deny rule\"").len(), 1);
}

#[test]
fn details_off_gives_a_minimal_body() {
    let p = policy(&with_mode(r#""deny_response": {"details": false}"#));
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/admin/users").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.response.borrow().as_ref().unwrap().2, br#"{"error":"forbidden"}"#);
    assert!(host.response_header(REVISION_HEADER).is_empty(), "the revision is a detail too");
    // The log still says everything.
    assert_eq!(host.logs_containing("rule=nobody-on-admin").len(), 1);
}

#[test]
fn dry_run_lets_a_deny_through_and_marks_it() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/admin/users").with_cert(&order_service());
    host.add_header(DRY_RUN_HEADER, b"allow");
    host.add_header(DRY_RUN_HEADER, b"allow");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.status(), None);
    assert_eq!(host.header_values(DRY_RUN_HEADER), ["deny"]);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"]);
    assert_eq!(host.header_values(RULE_HEADER), ["nobody-on-admin"]);
    assert_eq!(host.header_values(REVISION_HEADER), ["r1"]);
    assert_eq!(host.metric(Metric::RequestsDryRunDenied), 1);
    assert_eq!(host.metric(Metric::RequestsAllowed), 0);
    assert_eq!(host.metric(Metric::RequestsDenied), 0);
    let lines = host.logs_containing("mtls-authz: dry-run deny ");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("rule=nobody-on-admin"), "{}", lines[0]);
}

#[test]
fn dry_run_allow_removes_a_forged_dry_run_header() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header(DRY_RUN_HEADER, b"deny");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert!(host.header_values(DRY_RUN_HEADER).is_empty());
    assert_eq!(host.metric(Metric::RequestsAllowed), 1);
}

#[test]
fn no_certificate_is_refused_without_reading_a_pem() {
    let p = policy(POLICY);
    for digest in [None, Some(&b""[..])] {
        let cache = RefCell::default();
        let mut host = MockHost::request("GET", "/health");
        if let Some(d) = digest {
            host.properties.insert("connection.sha256_peer_certificate_digest".into(), d.to_vec());
        }
        // Even a client-sent identity header changes nothing.
        host.add_header(PRINCIPAL_HEADER, b"order-service");
        host.add_header("x-forwarded-client-cert", b"By=spiffe://x;Hash=abc;Subject=\"CN=order-service\"");
        assert_eq!(run(&host, &p, &cache), Flow::Stop);
        assert_eq!(host.body_json()["reason"], "no verified client certificate on the connection");
        assert_eq!(host.reads_of("connection.peer_certificate"), 0);
        assert!(host.header_values(PRINCIPAL_HEADER).is_empty());
        assert_eq!(host.logs_containing("principal=\"-\" sha256=- method=\"GET\" path=\"/health\" rule=-").len(), 1);
    }
}

#[test]
fn dry_run_without_certificate_forwards_without_a_principal() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/health");
    host.add_header(PRINCIPAL_HEADER, b"admin");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert!(host.header_values(PRINCIPAL_HEADER).is_empty());
    assert_eq!(host.header_values(DRY_RUN_HEADER), ["deny"]);
    assert_eq!(host.header_values(RULE_HEADER), ["default"]);
}

#[test]
fn unparsable_certificate_is_refused_counted_and_remembered() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut bad = order_service();
    bad.pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n".into();
    for round in 1..=2u64 {
        let host = MockHost::request("GET", "/health").with_cert(&bad);
        assert_eq!(run(&host, &p, &cache), Flow::Stop);
        assert_eq!(host.body_json()["reason"], "the client certificate could not be parsed");
        assert_eq!(host.metric(Metric::Errors), 1);
        assert_eq!(host.metric(Metric::CertificatesParsed), 0);
        // Parsed (and its failure logged) once; the second request is answered from the cache.
        assert_eq!(host.reads_of("connection.peer_certificate"), usize::from(round == 1));
        assert_eq!(host.logs_containing("cannot read the client certificate").len(), usize::from(round == 1));
    }
}

#[test]
fn certificate_not_matching_the_digest_is_refused() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut c = order_service();
    c.digest = "00".repeat(32);
    let host = MockHost::request("GET", "/health").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "the client certificate could not be parsed");
    assert_eq!(host.metric(Metric::Errors), 1);
    assert_eq!(host.logs_containing("does not match the connection's digest").len(), 1);
}

#[test]
fn digest_compares_case_insensitively() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut c = order_service();
    c.digest = c.digest.to_ascii_uppercase();
    let host = MockHost::request("GET", "/health").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
}

#[test]
fn digest_without_a_certificate_is_refused() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut host = MockHost::request("GET", "/health").with_cert(&order_service());
    host.properties.remove("connection.peer_certificate");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "the client certificate could not be parsed");
    assert_eq!(host.metric(Metric::Errors), 1);
    // Not cached: it says nothing about the certificate.
    assert!(cache.borrow().is_empty());
}

#[test]
fn cache_hit_parses_once() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let c = order_service();
    let mut pem_reads = 0;
    let mut parsed = 0;
    for _ in 0..5 {
        let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
        assert_eq!(run(&host, &p, &cache), Flow::Continue);
        assert_eq!(host.reads_of("connection.sha256_peer_certificate_digest"), 1);
        pem_reads += host.reads_of("connection.peer_certificate");
        parsed += host.metric(Metric::CertificatesParsed);
    }
    assert_eq!((pem_reads, parsed), (1, 1));
    // A different certificate is a different entry.
    let other = cert("report-service", Some("reporting"), None);
    let host = MockHost::request("GET", "/api/payment/query/7").with_cert(&other);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.metric(Metric::CertificatesParsed), 1);
    assert_eq!(host.header_values(RULE_HEADER), ["reports-read-payment"]);
    assert_eq!(cache.borrow().len(), 2);
}

#[test]
fn forged_headers_are_replaced_even_when_duplicated() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    for name in [PRINCIPAL_HEADER, RULE_HEADER, DRY_RUN_HEADER, REVISION_HEADER] {
        host.add_header(name, b"admin");
        host.add_header(name, b"admin, root");
    }
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"]);
    assert_eq!(host.header_values(RULE_HEADER), ["orders-create-payment"]);
    assert!(host.header_values(DRY_RUN_HEADER).is_empty());
    assert_eq!(host.header_values(REVISION_HEADER), ["r1"]);
}

#[test]
fn without_a_revision_a_forged_revision_header_is_removed() {
    let p = policy(&POLICY.replace("\"revision\": \"r1\",", ""));
    assert_eq!(p.revision(), None);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header(REVISION_HEADER, b"r999");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert!(host.header_values(REVISION_HEADER).is_empty());
    let denied = MockHost::request("GET", "/nope").with_cert(&order_service());
    assert_eq!(run(&denied, &p, &cache), Flow::Stop);
    assert!(denied.response_header(REVISION_HEADER).is_empty());
}

#[test]
fn forged_headers_are_removed_on_deny() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/nope").with_cert(&order_service());
    for name in [PRINCIPAL_HEADER, RULE_HEADER, DRY_RUN_HEADER, REVISION_HEADER] {
        host.add_header(name, b"admin");
        host.add_header(name, b"admin");
    }
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    for name in [PRINCIPAL_HEADER, RULE_HEADER, DRY_RUN_HEADER, REVISION_HEADER] {
        assert!(host.header_values(name).is_empty(), "{name} survived");
    }
}

/// Pre-load the cache with an identity whose CN is hostile; the cert itself does not matter.
fn hostile_identity_run(display: &str, path: &str) -> MockHost {
    let p = policy(POLICY);
    let digest = "ab".repeat(32);
    let identity = Identity { common_names: vec![display.into()], sha256: digest.clone(), ..Identity::default() };
    let cache = RefCell::new(IdentityCache::default());
    cache.borrow_mut().insert(&digest, Entry::Parsed(Rc::new(identity)));
    let mut host = MockHost::request("GET", path);
    host.properties.insert("connection.sha256_peer_certificate_digest".into(), digest.into_bytes());
    run(&host, &p, &cache);
    assert_eq!(host.reads_of("connection.peer_certificate"), 0);
    host
}

#[test]
fn principal_header_is_sanitised() {
    let host = hostile_identity_run("café\r\nx-mtls-authz-rule: admin\0", "/health");
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=caf%C3%A9%0D%0Ax-mtls-authz-rule:%20admin%00"]);
    assert_eq!(host.header_values(RULE_HEADER), ["anyone-health"]);
}

#[test]
fn deny_log_line_cannot_be_forged() {
    let host = hostile_identity_run("x\" rule=anyone-health reason=\"ok\nmtls-authz: allow", "/nope?\"\u{7f}");
    let lines = host.logs_containing("mtls-authz: deny ");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("principal=\"cn=x%22%20rule=anyone-health%20reason=%22ok%0Amtls-authz:%20allow\" "), "{}", lines[0]);
    assert!(lines[0].contains("path=\"/nope?\\\"\\x7F\""), "{}", lines[0]);
}

#[test]
fn certificate_with_non_ascii_cn_round_trips_through_the_filter() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/health").with_cert(&cert("zoë", None, None));
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=zo%C3%AB"]);
}

#[test]
fn missing_path_or_method_is_refused() {
    let p = policy(POLICY);
    for missing in [":path", ":method"] {
        let cache = RefCell::default();
        let host = MockHost::request("GET", "/health").with_cert(&order_service());
        host.headers.borrow_mut().retain(|(n, _)| n != missing);
        assert_eq!(run(&host, &p, &cache), Flow::Stop);
        assert_eq!(host.body_json()["reason"], "the request has no path or method");
    }
}

#[test]
fn non_utf8_path_is_refused_not_mangled() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::default().with_cert(&order_service());
    host.add_header(":method", b"GET");
    host.add_header(":path", b"/health\xff");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "path has a character that is not allowed in a path");
    assert_eq!(host.logs_containing("path=\"/health\\xFF\"").len(), 1);
}

#[test]
fn path_tricks_are_refused_by_the_engine() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/x/../payment/create").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "path has a '.' or '..' segment");
}

#[test]
fn host_failures_fail_closed_even_in_dry_run() {
    for mode in [r#""mode": "enforce""#, r#""mode": "dry_run""#] {
        let p = policy(&with_mode(mode));
        // "replace" fails on the request that carries a forged principal (which is replaced), "add" on the clean one.
        for call in ["property", "headers", "add", "replace"] {
            let cache = RefCell::default();
            let mut host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
            if call == "replace" {
                host.add_header(PRINCIPAL_HEADER, b"cn=forged");
            }
            host.failing.insert(call);
            assert_eq!(run(&host, &p, &cache), Flow::Stop, "{mode} {call}");
            assert_eq!(host.status(), Some(403), "{mode} {call}");
            assert_eq!(host.body_json()["reason"], "internal error in the authorization filter", "{mode} {call}");
            assert_eq!(host.metric(Metric::Errors), 1, "{mode} {call}");
            assert_eq!(host.metric(Metric::RequestsDenied), 1, "{mode} {call}");
            assert_eq!(host.metric(Metric::RequestsAllowed) + host.metric(Metric::RequestsDryRunDenied), 0);
        }
    }
}

#[test]
fn failed_local_response_still_stops_the_request() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut host = MockHost::request("GET", "/nope").with_cert(&order_service());
    host.failing.insert("send");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn no_policy_refuses_everything() {
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/health").with_cert(&order_service());
    assert_eq!(on_request_headers(&host, None, &cache, true), Flow::Stop);
    assert_eq!(host.response.borrow().as_ref().unwrap().2, br#"{"error":"forbidden"}"#);
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn busy_cache_fails_closed() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let _held = cache.borrow_mut();
    let host = MockHost::request("GET", "/health").with_cert(&order_service());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "internal error in the authorization filter");
}

// ---------------------------------------------------------------------------
// Method and path overrides (bypass finding F1)

const OVERRIDE_REASON: &str = "request asks the backend to override its method or path";

#[test]
fn override_headers_are_refused_in_any_case() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    for name in mtls_authz_policy::overrides::OVERRIDE_HEADERS {
        for spelt in [name.to_string(), name.to_ascii_uppercase()] {
            let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
            host.add_header(&spelt, b"DELETE");
            assert_eq!(run(&host, &p, &cache), Flow::Stop, "{spelt}");
            assert_eq!(host.status(), Some(403));
            assert_eq!(host.body_json(), serde_json::json!({"error": "forbidden", "rule": null, "reason": OVERRIDE_REASON}));
            assert_eq!(host.metric(Metric::RequestsDenied), 1);
            assert_eq!(host.metric(Metric::Errors), 0, "a refusal, not a failure");
            assert!(host.header_values(PRINCIPAL_HEADER).is_empty(), "nothing forwarded, nobody named");
            let lines = host.logs_containing("mtls-authz: deny ");
            assert_eq!(lines.len(), 1);
            assert!(lines[0].contains("principal=\"cn=order-service\""), "{}", lines[0]);
            assert!(lines[0].ends_with(&format!("revision=r1 header=\"{spelt}\"")), "{}", lines[0]);
        }
    }
}

#[test]
fn override_headers_spelt_with_underscores_are_refused() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    for name in ["x_http_method_override", "X_Original_URL", "x-http_method"] {
        let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
        host.add_header(name, b"DELETE");
        assert_eq!(run(&host, &p, &cache), Flow::Stop, "{name}");
        assert_eq!(host.body_json()["reason"], OVERRIDE_REASON, "{name}");
    }
}

#[test]
fn look_alike_header_names_are_not_overrides() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    let long = "x_".repeat(40);
    for name in ["x-http-method-overrides", "x-original-url-x", "x-forwarded-method", "x-envoy-original-url", "method", &long] {
        host.add_header(name, b"DELETE");
    }
    // A pseudo-header is not an override either, whatever its name.
    host.add_header(":x-http-method-override", b"DELETE");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values("x-http-method-overrides"), ["DELETE"], "other headers are left alone");
}

#[test]
fn override_on_a_denied_request_is_refused_for_the_override() {
    // Like `?_method=` in the engine: after identity, method and path, before rules.
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/admin/users").with_cert(&order_service());
    host.add_header("x-original-url", b"/health");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], OVERRIDE_REASON);
}

#[test]
fn earlier_refusals_win_over_an_override() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/x/../payment/create").with_cert(&order_service());
    host.add_header("x-http-method-override", b"DELETE");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "path has a '.' or '..' segment");
    assert!(host.logs_containing("header=").is_empty(), "the override did not decide");

    let host = MockHost::request("GET", "/health");
    host.add_header("x-http-method-override", b"DELETE");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "no verified client certificate on the connection");
}

#[test]
fn method_override_in_the_query_is_refused_by_the_engine() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    for target in ["/api/payment/create?_method=DELETE", "/api/payment/create?%5Fmethod=DELETE"] {
        let host = MockHost::request("POST", target).with_cert(&order_service());
        assert_eq!(run(&host, &p, &cache), Flow::Stop, "{target}");
        assert_eq!(host.body_json()["reason"], OVERRIDE_REASON, "{target}");
    }
}

#[test]
fn dry_run_lets_an_override_through_marked() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header("x-http-method-override", b"DELETE");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(DRY_RUN_HEADER), ["deny"]);
    assert_eq!(host.header_values(RULE_HEADER), ["default"], "no rule decided");
    assert_eq!(host.metric(Metric::RequestsDryRunDenied), 1);
    let lines = host.logs_containing("mtls-authz: dry-run deny ");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(OVERRIDE_REASON) && lines[0].ends_with("header=\"x-http-method-override\""), "{}", lines[0]);
}

// ---------------------------------------------------------------------------
// Host calls

#[test]
fn an_allowed_request_reads_the_headers_once_and_writes_only_what_it_must() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let c = order_service();
    // First request: the certificate is parsed.
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    // The client sent none of the filter's headers, so each is added (no search for copies).
    assert_eq!(host.calls(), ["headers", "property", "property", "add", "add", "add"]);
    // Cached: header map, digest, principal, rule, revision.
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property", "add", "add", "add"]);
    // Without a revision there is one write fewer.
    let bare = policy(&POLICY.replace("\"revision\": \"r1\",", ""));
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &bare, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property", "add", "add"]);
    // A forged dry-run marker and revision cost one removal each.
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    host.add_header(DRY_RUN_HEADER, b"deny");
    host.add_header(REVISION_HEADER, b"r0");
    assert_eq!(run(&host, &bare, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property", "add", "add", "remove", "remove"]);
    assert!(host.header_values(DRY_RUN_HEADER).is_empty() && host.header_values(REVISION_HEADER).is_empty());
}

#[test]
fn a_header_of_ours_the_client_sent_is_replaced_with_every_copy_and_the_others_added() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    // Two forged principals, one in another case: both are the same header to Envoy.
    host.add_header(PRINCIPAL_HEADER, b"cn=admin");
    host.add_header(&PRINCIPAL_HEADER.to_ascii_uppercase(), b"cn=root");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property", "property", "replace", "add", "add"]);
    let principals = host.copies_any_case(PRINCIPAL_HEADER);
    assert_eq!(principals, [(PRINCIPAL_HEADER.to_owned(), b"cn=order-service".to_vec())], "one copy in any case, ours");
    assert_eq!(host.header_values(RULE_HEADER), ["orders-create-payment"]);
    assert_eq!(host.header_values(REVISION_HEADER), ["r1"]);
}

#[test]
fn with_upstream_headers_off_an_allowed_request_makes_no_write() {
    let p = policy(&POLICY.replace(
        "\"revision\": \"r1\",",
        "\"revision\": \"r1\", \"upstream_headers\": {\"principal\": false, \"rule\": false, \"revision\": false},",
    ));
    assert!(!p.policy().upstream_headers.principal, "the test policy turns the headers off");
    let cache = RefCell::default();
    let c = order_service();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property"]);
    assert_eq!(host.metric(Metric::RequestsAllowed), 1);
    for name in OWN_HEADERS {
        assert!(host.header_values(name).is_empty(), "{name} must not reach the upstream");
    }
}

#[test]
fn with_upstream_headers_off_forged_copies_are_still_removed() {
    let p = policy(
        &POLICY.replace("\"revision\": \"r1\",", "\"revision\": \"r1\", \"upstream_headers\": {\"rule\": false, \"revision\": false},"),
    );
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    for name in OWN_HEADERS {
        host.add_header(name, b"admin");
        host.add_header(name, b"root");
    }
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"], "the principal is still on");
    for name in [RULE_HEADER, REVISION_HEADER, DRY_RUN_HEADER] {
        assert!(host.header_values(name).is_empty(), "the client's {name} must not reach the upstream");
    }
}

#[test]
fn with_upstream_headers_off_a_dry_run_deny_is_still_marked() {
    let p = policy(&with_mode(r#""mode": "dry_run", "upstream_headers": {"principal": false, "rule": false}"#));
    assert!(!p.policy().upstream_headers.rule, "the test policy turns the headers off");
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/nope").with_cert(&order_service());
    host.add_header(PRINCIPAL_HEADER, b"admin");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(DRY_RUN_HEADER), ["deny"], "the marker is the point of dry-run mode");
    assert!(host.header_values(PRINCIPAL_HEADER).is_empty() && host.header_values(RULE_HEADER).is_empty());
    assert_eq!(host.metric(Metric::RequestsDryRunDenied), 1);
}

#[test]
fn a_copy_the_client_sent_only_in_capitals_is_still_replaced() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header(&PRINCIPAL_HEADER.to_ascii_uppercase(), b"cn=root");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.calls(), ["headers", "property", "property", "replace", "add", "add"], "an add would keep the forged copy");
    let principals = host.copies_any_case(PRINCIPAL_HEADER);
    assert_eq!(principals, [(PRINCIPAL_HEADER.to_owned(), b"cn=order-service".to_vec())]);
}

#[test]
fn forwarding_that_fails_half_way_leaves_none_of_the_filters_headers() {
    // The principal and rule are added, then replacing the forged revision
    // fails: the request is refused, and what was added must go too (access
    // logs and taps still see a refused request's headers).
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header(REVISION_HEADER, b"r0");
    host.failing.insert("replace");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.calls()[3..5], ["add", "add"], "principal and rule went on before the failure");
    for name in OWN_HEADERS {
        assert!(host.header_values(name).is_empty(), "{name} is left on the refused request");
    }
}

#[test]
fn a_denied_request_removes_only_the_headers_the_client_sent() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let c = order_service();
    let host = MockHost::request("GET", "/nope").with_cert(&c);
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.calls(), ["headers", "property", "property", "send"]);
    let host = MockHost::request("GET", "/nope").with_cert(&c);
    host.add_header("X-MTLS-AUTHZ-PRINCIPAL", b"admin");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.calls(), ["headers", "property", "remove", "send"]);
    assert!(host.header_values("X-MTLS-AUTHZ-PRINCIPAL").is_empty());
}

#[test]
fn malformed_header_maps_fail_closed_and_remove_every_own_header() {
    for mode in [r#""mode": "enforce""#, r#""mode": "dry_run""#] {
        let p = policy(&with_mode(mode));
        let good = HeaderMap::serialize([(&b":method"[..], &b"GET"[..]), (b":path", b"/health")]).unwrap();
        let mut truncated = good.as_bytes().to_vec();
        truncated.pop();
        let mut lying_count = good.as_bytes().to_vec();
        lying_count[0] = 9;
        for raw in [truncated, lying_count, vec![1, 2, 3]] {
            let cache = RefCell::default();
            let mut host = MockHost::request("GET", "/health").with_cert(&order_service());
            host.raw_header_map = Some(raw.clone());
            assert_eq!(run(&host, &p, &cache), Flow::Stop, "{mode} {raw:?}");
            assert_eq!(host.body_json()["reason"], "internal error in the authorization filter");
            assert_eq!(host.metric(Metric::Errors), 1);
            assert_eq!(host.logs_containing("get_header_map_pairs (malformed map)").len(), 1);
            // Which of our headers the client sent is unknown: all are removed.
            assert_eq!(host.calls().iter().filter(|c| **c == "remove").count(), 4);
        }
    }
}

#[test]
fn the_first_path_and_method_are_the_ones_judged() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/health").with_cert(&order_service());
    host.add_header(":path", b"/api/payment/admin/users");
    host.add_header(":method", b"DELETE");
    assert_eq!(run(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.header_values(RULE_HEADER), ["anyone-health"]);
}

#[test]
fn an_empty_header_map_is_missing_data() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut host = MockHost::default().with_cert(&order_service());
    host.raw_header_map = Some(Vec::new());
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.body_json()["reason"], "the request has no path or method");
}

// ---------------------------------------------------------------------------
// Policy loading

#[test]
fn the_load_line_says_dash_for_what_the_host_cannot_tell() {
    let mut host = MockHost::default();
    host.failing.insert("now");
    assert!(PolicyHolder::new().configure(&host, Some(POLICY.as_bytes().to_vec())));
    assert_eq!(host.logs_containing("revision=r1, load_time=-, vm_memory=-").len(), 1, "{:?}", host.logs.borrow());
}

#[test]
fn policy_loads_and_logs_a_summary() {
    let host = MockHost { vm_memory: Some(3 << 20), ..MockHost::default() };
    let mut holder = PolicyHolder::new();
    assert!(holder.snapshot().is_none());
    assert!(holder.configure(&host, Some(POLICY.as_bytes().to_vec())));
    // The mock's clock stands still: the load took no time by it.
    let line = "mtls-authz: policy loaded: 4 rules, mode=enforce, revision=r1, load_time=0.0 ms, vm_memory=3.0 MiB";
    assert_eq!(host.logs_containing(line).len(), 1, "{:?}", host.logs.borrow());
    assert!(holder.snapshot().is_some());
    // Idempotent: the same configuration again is accepted without recompiling or re-logging.
    assert!(holder.configure(&host, Some(POLICY.as_bytes().to_vec())));
    assert_eq!(host.logs.borrow().len(), 1);
}

#[test]
fn invalid_policy_is_rejected_and_the_old_one_kept() {
    let host = MockHost::default();
    let mut holder = PolicyHolder::new();
    assert!(holder.configure(&host, Some(POLICY.as_bytes().to_vec())));
    let before = holder.snapshot().unwrap();

    let broken = r#"{"version": 1, "default_action": "maybe",
  "rules": [{"name": "x", "action": "allow", "principals": [{}], "paths": ["/a"]}]}"#;
    assert!(!holder.configure(&host, Some(broken.as_bytes().to_vec())));
    let errors = host.logs_containing(REJECTED_PREFIX);
    assert!(errors.len() >= 3, "{errors:?}");
    assert!(errors.iter().any(|l| l.starts_with("mtls-authz: policy rejected: plugin configuration:1:")), "{errors:?}");
    assert!(errors.iter().any(|l| l.contains("default_action")), "{errors:?}");
    assert!(errors.iter().any(|l| l.contains("keeping the previously loaded policy")));
    assert!(host.logs.borrow().iter().filter(|(_, l)| l.starts_with(REJECTED_PREFIX)).all(|(lvl, _)| *lvl == Level::Error));
    assert_eq!(host.metric(Metric::PolicyRejected), 1);
    assert!(Rc::ptr_eq(&before, &holder.snapshot().unwrap()), "a broken policy replaced a good one");
}

#[test]
fn empty_or_missing_configuration_is_rejected() {
    for config in [None, Some(&b""[..]), Some(&b"  \n"[..]), Some(&b"\xff{}"[..])] {
        let host = MockHost::default();
        let mut holder = PolicyHolder::new();
        assert!(!holder.configure(&host, config.map(<[u8]>::to_vec)), "{config:?}");
        assert!(holder.snapshot().is_none());
        let errors = host.logs_containing(REJECTED_PREFIX);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("mtls-authz: policy rejected: plugin configuration: the configuration is"), "{errors:?}");
        assert_eq!(host.metric(Metric::PolicyRejected), 1);
    }
}

#[test]
fn a_request_keeps_the_policy_it_started_with() {
    let host = MockHost::default();
    let mut holder = PolicyHolder::new();
    assert!(holder.configure(&host, Some(POLICY.as_bytes().to_vec())));
    let in_flight = holder.snapshot().unwrap();
    let stricter = POLICY.replace("\"revision\": \"r1\"", "\"revision\": \"r2\"").replace("\"POST\"]", "\"PUT\"]");
    assert!(holder.configure(&host, Some(stricter.as_bytes().to_vec())));
    assert_eq!(in_flight.revision(), Some("r1"));
    assert_eq!(holder.snapshot().unwrap().revision(), Some("r2"));
    let cache = RefCell::default();
    let req = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    assert_eq!(run(&req, &in_flight, &cache), Flow::Continue);
    assert_eq!(req.header_values(REVISION_HEADER), ["r1"], "the header names the version that decided");
    let req = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    assert_eq!(run(&req, &holder.snapshot().unwrap(), &cache), Flow::Stop);
    assert_eq!(req.response_header(REVISION_HEADER), ["r2"]);
}

// ---------------------------------------------------------------------------
// Method overrides in POST bodies

const FORM: BodyReadings = BodyReadings { form: true, multipart: false, json: false };

/// order-service's allowed POST, with a body of this content type.
fn post_with_body(content_type: &str, body: &str) -> MockHost {
    let mut host = MockHost::request("POST", "/api/payment/create").with_cert(&order_service());
    host.add_header("content-type", content_type.as_bytes());
    host.body = body.as_bytes().to_vec();
    host
}

/// The held request, or a panic.
fn held(flow: Flow) -> Box<Held> {
    match flow {
        Flow::ReadBody(held) => held,
        other => panic!("expected the body to be held, got {other:?}"),
    }
}

/// Headers, then the body in two parts, as Envoy calls the filter.
fn run_with_body(host: &MockHost, policy: &CompiledPolicy, cache: &RefCell<IdentityCache>) -> Flow {
    let held = held(on_request_headers(host, Some(policy), cache, false));
    let half = host.body.len() / 2;
    match on_request_body(host, Some(policy), &held, half, false) {
        Flow::Buffer => {}
        other => return other,
    }
    on_request_body(host, Some(policy), &held, host.body.len(), true)
}

#[test]
fn an_allowed_form_post_has_its_body_held_and_nothing_counted_until_it_is_judged() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "amount=10&_method=DELETE");
    assert_eq!(held(on_request_headers(&host, Some(&p), &cache, false)).readings(), FORM);
    assert_eq!(host.status(), None);
    // The headers go on now (the host shows no body to a filter holding them), with the filter's own.
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"]);
    assert_eq!(host.metric(Metric::RequestsAllowed) + host.metric(Metric::RequestsDenied), 0);
    assert!(host.logs.borrow().is_empty());
    assert!(!host.calls().contains(&"body"), "nothing is read before the body is complete");
}

#[test]
fn a_body_override_is_refused_once_the_body_is_complete() {
    let p = policy(POLICY);
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "amount=10&_method=DELETE"),
        ("application/x-www-form-urlencoded", "amount=10&.method=DELETE"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n"),
        ("application/json", r#"{"amount": 10, "_method": "DELETE"}"#),
    ] {
        let cache = RefCell::default();
        let host = post_with_body(content_type, body);
        assert_eq!(run_with_body(&host, &p, &cache), Flow::Stop, "{content_type}");
        assert_eq!(host.status(), Some(403));
        assert_eq!(host.body_json()["reason"], Reason::BodyOverride.as_str(), "{content_type}");
        assert_eq!((host.metric(Metric::RequestsDenied), host.metric(Metric::RequestsAllowed)), (1, 0), "counted once");
        assert_eq!(host.logs_containing("mtls-authz: deny ").len(), 1);
    }
}

#[test]
fn a_clean_body_goes_on_with_the_identity_headers() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = post_with_body("application/json", r#"{"amount": 10, "note": "_method"}"#);
    assert_eq!(run_with_body(&host, &p, &cache), Flow::Continue);
    assert_eq!(host.status(), None);
    assert_eq!(host.header_values(PRINCIPAL_HEADER), ["cn=order-service"]);
    assert_eq!(host.header_values(RULE_HEADER), ["orders-create-payment"]);
    assert_eq!(host.calls().iter().filter(|c| **c == "add").count(), 3, "the headers are set once, when they go on");
    assert!(!host.calls().contains(&"replace"), "the client sent none of them");
    assert_eq!(host.calls().iter().filter(|c| **c == "headers").count(), 1, "the header map is read once");
    assert_eq!((host.metric(Metric::RequestsAllowed), host.metric(Metric::RequestsDenied)), (1, 0));
}

#[test]
fn requests_no_framework_reads_an_override_from_are_not_held() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    for content_type in ["application/octet-stream", "application/grpc", "text/plain"] {
        let host = post_with_body(content_type, "_method=DELETE");
        assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Continue, "{content_type}");
    }
    // Only POST is overridden by frameworks.
    let report = cert("report-service", Some("reporting"), None);
    let mut host = MockHost::request("GET", "/api/payment/query").with_cert(&report);
    host.add_header("content-type", b"application/x-www-form-urlencoded");
    host.body = b"_method=DELETE".to_vec();
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Continue);
    // No body follows the headers.
    let host = post_with_body("application/x-www-form-urlencoded", "");
    assert_eq!(on_request_headers(&host, Some(&p), &cache, true), Flow::Continue);
}

#[test]
fn a_denied_request_is_refused_on_its_headers_without_reading_the_body() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let mut host = MockHost::request("POST", "/api/payment/create").with_cert(&cert("report-service", Some("reporting"), None));
    host.add_header("content-type", b"application/x-www-form-urlencoded");
    host.body = b"a=1".to_vec();
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert!(!host.calls().contains(&"body"));
}

#[test]
fn an_empty_body_goes_on_without_a_read() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "");
    let held = held(on_request_headers(&host, Some(&p), &cache, false));
    assert_eq!(on_request_body(&host, Some(&p), &held, 0, true), Flow::Continue);
    assert!(!host.calls().contains(&"body"));
    assert_eq!(host.metric(Metric::RequestsAllowed), 1);
}

#[test]
fn a_body_past_the_limit_is_refused_with_413_without_waiting_for_the_rest() {
    let p = policy(&with_mode(r#""body_inspection_limit": 16"#));
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "amount=10&currency=EUR");
    let held = held(on_request_headers(&host, Some(&p), &cache, false));
    assert_eq!(on_request_body(&host, Some(&p), &held, 16, false), Flow::Buffer, "at the limit");
    assert_eq!(on_request_body(&host, Some(&p), &held, 17, false), Flow::Stop);
    assert_eq!(host.status(), Some(413));
    assert_eq!(host.body_json()["reason"], Reason::BodyTooLarge.as_str());
    assert!(!host.calls().contains(&"body"));
}

#[test]
fn trailers_before_the_end_of_a_held_body_are_refused() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "amount=10");
    let held = held(on_request_headers(&host, Some(&p), &cache, false));
    assert_eq!(on_request_body(&host, Some(&p), &held, 9, false), Flow::Buffer);
    assert_eq!(on_request_trailers(&host, Some(&p), &held), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.body_json()["reason"], Reason::BodyUnreadable.as_str());
}

#[test]
fn forged_copies_in_the_trailers_of_a_forwarded_request_are_removed() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = MockHost::request("GET", "/api/payment/query").with_cert(&cert("report-service", Some("reporting"), None));
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Continue);
    host.add_trailer("x-checksum", b"abc");
    host.add_trailer(PRINCIPAL_HEADER, b"cn=order-service");
    host.add_trailer(&PRINCIPAL_HEADER.to_uppercase(), b"cn=order-service");
    host.add_trailer("X-Mtls-Authz-Rule", b"orders-create-payment");
    host.add_trailer(DRY_RUN_HEADER, b"deny");
    host.add_trailer(REVISION_HEADER, b"r0");
    let before = host.calls().len();
    assert_eq!(on_forwarded_request_trailers(&host, Some(&p)), Flow::Continue);
    assert_eq!(host.trailer_names(), ["x-checksum"], "only the client's own trailer is left");
    let calls = host.calls();
    assert_eq!(calls[before..], ["trailers", "remove_trailer", "remove_trailer", "remove_trailer", "remove_trailer"]);
    assert_eq!(host.status(), None);
}

#[test]
fn a_dry_run_lets_a_held_request_with_trailers_go_on_without_forged_trailers() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "amount=10");
    let held = held(on_request_headers(&host, Some(&p), &cache, false));
    assert_eq!(on_request_body(&host, Some(&p), &held, 9, false), Flow::Buffer);
    host.add_trailer(PRINCIPAL_HEADER, b"cn=admin");
    host.add_trailer("x-checksum", b"abc");
    assert_eq!(on_request_trailers(&host, Some(&p), &held), Flow::Continue, "a dry run refuses nothing");
    assert_eq!(host.metric(Metric::RequestsDryRunDenied), 1);
    assert_eq!(host.trailer_names(), ["x-checksum"]);
}

#[test]
fn trailers_without_the_filters_names_cost_one_read() {
    let p = policy(POLICY);
    let host = MockHost::request("GET", "/api/payment/query");
    host.add_trailer("x-checksum", b"abc");
    assert_eq!(on_forwarded_request_trailers(&host, Some(&p)), Flow::Continue);
    assert_eq!(host.calls(), ["trailers"]);
    assert_eq!(host.trailer_names(), ["x-checksum"]);
}

#[test]
fn unreadable_trailers_lose_every_name_of_the_filters() {
    let p = policy(POLICY);
    let mut host = MockHost::request("GET", "/api/payment/query");
    host.failing.insert("trailers");
    host.add_trailer(RULE_HEADER, b"orders-create-payment");
    assert_eq!(on_forwarded_request_trailers(&host, Some(&p)), Flow::Continue);
    assert_eq!(host.calls().iter().filter(|c| **c == "remove_trailer").count(), OWN_HEADERS.len());
    assert!(host.trailer_names().is_empty());
}

#[test]
fn a_trailer_that_cannot_be_removed_refuses_the_request() {
    let p = policy(POLICY);
    let mut host = MockHost::request("GET", "/api/payment/query");
    host.failing.insert("remove_trailer");
    host.add_trailer(PRINCIPAL_HEADER, b"cn=order-service");
    assert_eq!(on_forwarded_request_trailers(&host, Some(&p)), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.body_json()["reason"], Reason::Internal.as_str());
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn a_compressed_form_is_refused_on_its_headers() {
    let p = policy(POLICY);
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "x");
    host.add_header("content-encoding", b"gzip");
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Stop);
    assert_eq!(host.body_json()["reason"], Reason::BodyUnreadable.as_str());
}

#[test]
fn dry_run_lets_a_body_override_through_logged_and_counted() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "_method=DELETE");
    assert_eq!(run_with_body(&host, &p, &cache), Flow::Continue);
    assert!(host.header_values(DRY_RUN_HEADER).is_empty(), "the headers went on before the body was read");
    assert_eq!(host.metric(Metric::RequestsAllowed), 0);
    assert_eq!(host.metric(Metric::RequestsDryRunDenied), 1);
    assert_eq!(host.logs_containing("dry-run deny").len(), 1);
}

#[test]
fn a_failed_body_read_is_an_internal_error_even_in_dry_run() {
    let p = policy(&with_mode(r#""mode": "dry_run""#));
    let cache = RefCell::default();
    let mut host = post_with_body("application/x-www-form-urlencoded", "a=1");
    host.failing.insert("body");
    assert_eq!(run_with_body(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.status(), Some(403));
    assert_eq!(host.metric(Metric::Errors), 1);
}

#[test]
fn backends_that_ignore_overrides_get_no_body_work_and_no_method_override_refusal() {
    let p = policy(&with_mode(r#""method_overrides": "ignore""#));
    let cache = RefCell::default();
    let host = post_with_body("application/x-www-form-urlencoded", "_method=DELETE");
    host.add_header("x-http-method-override", b"DELETE");
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Continue);
    assert_eq!(host.header_values(RULE_HEADER), ["orders-create-payment"]);
    assert!(!host.calls().contains(&"body"));
    // A path override is refused whatever the backends do with methods.
    let host = post_with_body("application/json", "{}");
    host.add_header("X-Original-URL", b"/api/payment/admin/x");
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Stop);
    assert_eq!(host.body_json()["reason"], Reason::Override.as_str());
}

// ---------------------------------------------------------------------------
// gRPC

const ETCD_POLICY: &str = r#"{"version": 1, "default_action": "deny", "revision": "e1", "rules": [
  {"name": "reports-read", "action": "allow", "principals": [{"cn": "report-service"}],
   "paths": ["/etcdserverpb.KV/Range", "/etcdserverpb.Watch/Watch"], "methods": ["POST"]},
  {"name": "nobody-maintenance", "action": "deny", "principals": [{"any": true}], "paths": ["/etcdserverpb.Maintenance/*"]}]}"#;

fn grpc_call(path: &str, content_type: &str, who: &TestCert) -> MockHost {
    let host = MockHost::request("POST", path).with_cert(who);
    host.add_header("content-type", content_type.as_bytes());
    host
}

#[test]
fn a_refused_grpc_call_is_answered_with_status_7_and_a_readable_message() {
    let p = policy(ETCD_POLICY);
    let cache = RefCell::default();
    let reports = cert("report-service", None, None);
    let host = grpc_call("/etcdserverpb.KV/Put", "application/grpc", &reports);
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Stop);
    assert_eq!(*host.grpc_status.borrow(), Some(7));
    assert_eq!(host.status(), Some(200), "gRPC carries the refusal in grpc-status, not in :status");
    assert_eq!(host.response_header("grpc-message"), ["forbidden: no rule matched; default_action is deny"]);
    assert_eq!(host.response_header(REVISION_HEADER), ["e1"]);
    assert_eq!(host.metric(Metric::RequestsDenied), 1);
    assert_eq!(host.logs_containing("mtls-authz: deny ").len(), 1);

    let host = grpc_call("/etcdserverpb.Maintenance/Defragment", "application/grpc+proto", &reports);
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Stop);
    assert_eq!(host.response_header("grpc-message"), ["forbidden: matched a deny rule (rule nobody-maintenance)"]);

    let host = grpc_call("/etcdserverpb.KV/Range", "application/grpc", &reports);
    assert_eq!(on_request_headers(&host, Some(&p), &cache, false), Flow::Continue, "an allowed call streams on, body untouched");
    assert_eq!(host.status(), None);
}

#[test]
fn grpc_honours_deny_details_and_other_requests_keep_the_403() {
    let hidden = policy(&ETCD_POLICY.replacen(r#""revision": "e1","#, r#""deny_response": {"details": false},"#, 1));
    let cache = RefCell::default();
    let reports = cert("report-service", None, None);
    let host = grpc_call("/etcdserverpb.KV/Put", "application/grpc", &reports);
    assert_eq!(run(&host, &hidden, &cache), Flow::Stop);
    assert_eq!(host.response_header("grpc-message"), ["forbidden"]);
    assert!(host.response_header(REVISION_HEADER).is_empty());

    let p = policy(ETCD_POLICY);
    for content_type in ["application/grpc-web", "application/json"] {
        let host = grpc_call("/etcdserverpb.KV/Put", content_type, &reports);
        assert_eq!(run(&host, &p, &cache), Flow::Stop);
        assert_eq!((host.status(), *host.grpc_status.borrow()), (Some(403), None), "{content_type}");
    }
    // Envoy reads the first content-type; so does the filter.
    let host = grpc_call("/etcdserverpb.KV/Put", "application/json", &reports);
    host.add_header("content-type", b"application/grpc");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.status(), Some(403));
}

#[test]
fn a_failed_grpc_reply_still_stops_the_call() {
    let p = policy(ETCD_POLICY);
    let cache = RefCell::default();
    let mut host = grpc_call("/etcdserverpb.KV/Put", "application/grpc", &cert("report-service", None, None));
    host.failing.insert("send");
    assert_eq!(run(&host, &p, &cache), Flow::Stop);
    assert_eq!(host.metric(Metric::Errors), 1);
}
