//! Policy documents: arbitrary bytes into `Policy::from_json`.
//!
//! The parser and validator must never panic, whatever the operator (or an
//! attacker with write access to the plugin configuration) hands them. Every
//! error must point somewhere real: line and column 1-based and inside the
//! document, with a message. A document that validates must compile, and the
//! compiled index must decide a fixed set of requests like the naive evaluator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_authz_policy::{decide_naive, CompiledPolicy, Identity, Policy, Reason, Verdict};

fn identities() -> [Identity; 4] {
    [
        Identity {
            subject: "CN=order-service,OU=payments,O=Shop".into(),
            common_names: vec!["order-service".into()],
            organizations: vec!["Shop".into()],
            organizational_units: vec!["payments".into()],
            issuer_common_names: vec!["Shop CA".into()],
            serial: "1a2b".into(),
            uri_sans: vec!["spiffe://shop.test/ns/prod/sa/order".into()],
            dns_sans: vec!["order.shop.test".into()],
            email_sans: vec!["ops@shop.test".into()],
            ip_sans: vec!["10.1.2.3".parse().unwrap_or(std::net::IpAddr::from([10, 1, 2, 3]))],
            sha256: "ab".repeat(32),
            ..Identity::default()
        },
        Identity { common_names: vec!["dev-1".into()], organizational_units: vec!["fleet".into()], ..Identity::default() },
        Identity { common_names: vec!["a".into(), "b".into()], ..Identity::default() },
        Identity::default(),
    ]
}

const REQUESTS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("POST", "/api/payment/create"),
    ("GET", "/api/payment/query/42?x=1"),
    ("DELETE", "/api/payment/admin/x"),
    ("POST", "/devices/dev-1/telemetry"),
    ("GET", "/accounts/order/invoices"),
    ("GET", "/a/b/c/d"),
    ("GET", "/api/payment/%61dmin"),
    ("GET", "/a/../b"),
    ("get", "/"),
];

fn line_count(src: &str) -> usize {
    src.bytes().filter(|&b| b == b'\n').count() + 1
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match Policy::from_json(src) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused policy must say why");
            let lines = line_count(src);
            let mut previous = (0, 0);
            for e in errors.iter() {
                assert!(e.line >= 1 && e.column >= 1, "error position must be 1-based: {e:?}");
                assert!(e.line <= lines, "error line past the end of the document ({lines} lines): {e:?}");
                assert!(!e.message.is_empty(), "error without a message: {e:?}");
                assert!((e.line, e.column) >= previous, "errors must be in source order: {errors:?}");
                previous = (e.line, e.column);
                let _ = e.to_string();
            }
            let _ = errors.render("policy.json");
        }
        Ok(policy) => {
            assert_eq!(policy.version, 1);
            let compiled = CompiledPolicy::new(policy.clone());
            assert_eq!(compiled.policy().rules.len(), policy.rules.len());
            for id in identities() {
                for (method, path) in REQUESTS {
                    let fast = compiled.decide(Some(&id), method, path);
                    let slow = decide_naive(&policy, Some(&id), method, path);
                    assert_eq!(fast, slow, "compiled and naive disagree on {method} {path} for {id:?}");
                    assert_eq!(fast.rule.is_some(), matches!(fast.reason, Reason::Rule(_)), "{fast:?}");
                }
            }
            let none = compiled.decide(None, "GET", "/");
            assert_eq!((none.verdict, none.reason), (Verdict::Deny, Reason::NoPeerCertificate));
        }
    }
});
