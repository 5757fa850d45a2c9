//! `mtls-authz explain` with real certificates minted by rcgen: the decision,
//! rule and reason for allow, deny-by-rule and default deny, in text and
//! JSON; every identity field read back; and exit 2 (never a panic) for
//! inputs that are not certificates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{mtls_authz, noise, scratch_dir, write, CertSpec, Run, TestCa, CA_CN, PAYMENT_POLICY};
use serde_json::json;

fn order_service() -> CertSpec {
    CertSpec {
        cn: Some("order-service"),
        o: Some("shop"),
        ou: Some("payments"),
        uri_san: vec!["spiffe://shop.test/ns/prod/sa/order"],
        dns_san: vec!["order.shop.test"],
        serial: vec![0x01, 0xa2, 0xff],
    }
}

fn report_service() -> CertSpec {
    CertSpec { cn: Some("report-service"), ou: Some("reporting"), serial: vec![0x42], ..CertSpec::default() }
}

struct Setup {
    dir: PathBuf,
    policy: PathBuf,
    order: PathBuf,
    report: PathBuf,
}

fn setup(label: &str) -> Setup {
    let dir = scratch_dir(label);
    let ca = TestCa::new();
    Setup {
        policy: write(&dir, "policy.json", PAYMENT_POLICY),
        order: write(&dir, "order.pem", ca.leaf_pem(&order_service())),
        report: write(&dir, "report.pem", ca.leaf_pem(&report_service())),
        dir,
    }
}

fn explain(policy: &Path, caller: &[&str], method: &str, path: &str, format: &str) -> Run {
    let mut args = vec!["explain".to_owned(), "--policy".into(), policy.display().to_string()];
    args.extend(caller.iter().map(|s| s.to_string()));
    args.extend(["--method".into(), method.into(), "--path".into(), path.into(), "--format".into(), format.into()]);
    mtls_authz(args)
}

fn cert_arg(p: &Path) -> [String; 2] {
    ["--cert".into(), p.display().to_string()]
}

fn with_cert(args: &[String; 2]) -> [&str; 2] {
    [&args[0], &args[1]]
}

/// The value printed after `label:` in text output.
fn field<'r>(run: &'r Run, label: &str) -> &'r str {
    let prefix = format!("{label}:");
    run.stdout
        .lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no '{label}:' line in {run:#?}"))
}

#[test]
fn allow_in_text_shows_decision_rule_reason_and_every_identity_field() {
    let s = setup("explain-allow-text");
    let cert = cert_arg(&s.order);
    let run = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create?id=7", "text");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stderr, "");
    assert_eq!(field(&run, "decision"), "allow");
    assert_eq!(field(&run, "enforced"), "allow");
    assert_eq!(field(&run, "rule"), "orders-create-payment");
    assert_eq!(field(&run, "reason"), "matched an allow rule");
    assert_eq!(field(&run, "x-mtls-authz-principal"), "uri=spiffe://shop.test/ns/prod/sa/order");
    assert_eq!(field(&run, "cn"), "order-service");
    assert_eq!(field(&run, "o"), "shop");
    assert_eq!(field(&run, "ou"), "payments");
    assert_eq!(field(&run, "issuer_cn"), CA_CN);
    assert_eq!(field(&run, "issuer"), format!("CN={CA_CN}"));
    assert_eq!(field(&run, "serial"), "1a2ff", "lower-case hex without leading zeros");
    assert_eq!(field(&run, "uri_san"), "spiffe://shop.test/ns/prod/sa/order");
    assert_eq!(field(&run, "dns_san"), "order.shop.test");
    assert_eq!(field(&run, "email_san"), "-");
    assert_eq!(field(&run, "ip_san"), "-");
    assert_eq!(field(&run, "not_before"), "2024-01-01T00:00:00Z");
    assert_eq!(field(&run, "not_after"), "2034-01-01T00:00:00Z");
    let sha = field(&run, "sha256");
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{sha}");
    assert!(field(&run, "subject").contains("CN=order-service"), "{run:#?}");
}

#[test]
fn allow_in_json_is_one_object_with_the_identity() {
    let s = setup("explain-allow-json");
    let cert = cert_arg(&s.order);
    let run = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create", "json");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().count(), 1, "exactly one JSON line");
    let v = run.json();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["enforced"], "allow");
    assert_eq!(v["rule"], "orders-create-payment");
    assert_eq!(v["reason"], "matched an allow rule");
    assert_eq!(v["decided_by"], "rule");
    assert_eq!(v["policy"]["revision"], "test-1");
    assert_eq!(v["policy"]["principal_format"], "typed");
    assert_eq!(v["upstream_principal"], "uri=spiffe://shop.test/ns/prod/sa/order");
    let id = &v["identity"];
    assert_eq!(id["cn"], json!(["order-service"]));
    assert_eq!(id["o"], json!(["shop"]));
    assert_eq!(id["ou"], json!(["payments"]));
    assert_eq!(id["issuer_cn"], json!([CA_CN]));
    assert_eq!(id["serial"], "1a2ff");
    assert_eq!(id["uri_san"], json!(["spiffe://shop.test/ns/prod/sa/order"]));
    assert_eq!(id["dns_san"], json!(["order.shop.test"]));
    assert_eq!(id["email_san"], json!([]));
    assert_eq!(id["ip_san"], json!([]));
    assert_eq!(id["not_before"], "2024-01-01T00:00:00Z");
    assert_eq!(id["not_after"], "2034-01-01T00:00:00Z");
    assert_eq!(id["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(v["identity_source"]["kind"], "certificate");
}

/// `explain` on one certificate with `policy`, in text and JSON: the header
/// value from the text line and from the JSON field.
fn principal_shown(s: &Setup, policy: &Path, spec: &CertSpec) -> (String, serde_json::Value) {
    let pem = write(&s.dir, "caller.pem", TestCa::new().leaf_pem(spec));
    let cert = cert_arg(&pem);
    let text = explain(policy, &with_cert(&cert), "GET", "/api/payment/query", "text");
    assert_eq!(text.code, 0, "{text:#?}");
    let json = explain(policy, &with_cert(&cert), "GET", "/api/payment/query", "json").json();
    (field(&text, "x-mtls-authz-principal").to_owned(), json["upstream_principal"].clone())
}

#[test]
fn the_principal_is_printed_as_the_filter_forwards_it() {
    let s = setup("explain-principal");
    let cases = [
        (CertSpec { cn: Some("spiffe://shop.test/ns/prod/sa/order"), ..CertSpec::default() }, "cn=spiffe://shop.test/ns/prod/sa/order"),
        (CertSpec { cn: Some("order-service, admin"), ..CertSpec::default() }, "cn=order-service%2C%20admin"),
        (CertSpec { cn: Some("Zoë \"Ops\""), ..CertSpec::default() }, "cn=Zo%C3%AB%20%22Ops%22"),
        (CertSpec { dns_san: vec!["api.shop.test"], ..CertSpec::default() }, "dns=api.shop.test"),
        (CertSpec { o: Some("shop"), ou: Some("payments"), ..CertSpec::default() }, "subject=OU=payments%2CO=shop"),
    ];
    for (spec, expected) in &cases {
        let (text, json) = principal_shown(&s, &s.policy, spec);
        assert_eq!(text, *expected, "{spec:?}");
        assert_eq!(json, *expected, "{spec:?}");
    }
    let (text, json) = principal_shown(&s, &s.policy, &CertSpec::default());
    assert!(text.starts_with("sha256=") && text.len() == 7 + 64, "a certificate without names is named by its fingerprint: {text}");
    assert_eq!(json, text.as_str());
}

#[test]
fn a_legacy_policy_prints_the_legacy_value_and_says_so() {
    let s = setup("explain-principal-legacy");
    let policy = write(
        &s.dir,
        "legacy.json",
        PAYMENT_POLICY
            .replace("\"revision\": \"test-1\"", "\"revision\": \"test-1\", \"upstream_headers\": {\"principal_format\": \"legacy\"}"),
    );
    let spec = CertSpec { cn: Some("Zoë, Ops"), ..CertSpec::default() };
    let (text, json) = principal_shown(&s, &policy, &spec);
    assert_eq!(text, "Zo%C3%AB, Ops");
    assert_eq!(json, "Zo%C3%AB, Ops");
    let cert = cert_arg(&s.order);
    let run = explain(&policy, &with_cert(&cert), "GET", "/", "text");
    assert!(field(&run, "policy").ends_with("principal_format legacy)"), "{run:#?}");
    assert_eq!(explain(&policy, &with_cert(&cert), "GET", "/", "json").json()["policy"]["principal_format"], "legacy");
}

#[test]
fn with_the_principal_header_off_no_value_is_claimed() {
    let s = setup("explain-principal-off");
    let policy = write(
        &s.dir,
        "off.json",
        PAYMENT_POLICY.replace("\"revision\": \"test-1\"", "\"revision\": \"test-1\", \"upstream_headers\": {\"principal\": false}"),
    );
    let cert = cert_arg(&s.order);
    let run = explain(&policy, &with_cert(&cert), "POST", "/api/payment/create", "text");
    assert_eq!(field(&run, "x-mtls-authz-principal"), "- (not sent: upstream_headers.principal is false)");
    let v = explain(&policy, &with_cert(&cert), "POST", "/api/payment/create", "json").json();
    assert_eq!(v["upstream_principal"], serde_json::Value::Null);
    assert_eq!(v["policy"]["principal_header"], false);
}

#[test]
fn deny_by_rule_names_the_deny_rule_in_text_and_json() {
    let s = setup("explain-deny-rule");
    let cert = cert_arg(&s.order);
    let text = explain(&s.policy, &with_cert(&cert), "GET", "/api/payment/admin/users", "text");
    assert_eq!(text.code, 0, "a deny is an answer, not an error: {text:#?}");
    assert_eq!(field(&text, "decision"), "deny");
    assert_eq!(field(&text, "rule"), "nobody-on-admin");
    assert_eq!(field(&text, "reason"), "matched a deny rule");

    let json = explain(&s.policy, &with_cert(&cert), "GET", "/api/payment/admin/users", "json").json();
    assert_eq!(json["decision"], "deny");
    assert_eq!(json["enforced"], "deny");
    assert_eq!(json["rule"], "nobody-on-admin");
    assert_eq!(json["reason"], "matched a deny rule");
}

#[test]
fn default_deny_has_no_rule() {
    let s = setup("explain-default");
    let cert = cert_arg(&s.report);
    let text = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create", "text");
    assert_eq!(text.code, 0, "{text:#?}");
    assert_eq!(field(&text, "decision"), "deny");
    assert_eq!(field(&text, "rule"), "default");
    assert_eq!(field(&text, "reason"), "no rule matched; default_action is deny");
    assert_eq!(field(&text, "ou"), "reporting");

    let json = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create", "json").json();
    assert_eq!(json["decision"], "deny");
    assert_eq!(json["rule"], serde_json::Value::Null);
    assert_eq!(json["decided_by"], "default");
    assert_eq!(json["identity"]["serial"], "42");
}

#[test]
fn a_der_certificate_reads_the_same_as_pem() {
    let s = setup("explain-der");
    let der = write(&s.dir, "order.der", TestCa::new().leaf_der(&order_service()));
    let cert = cert_arg(&der);
    let v = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create", "json").json();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["identity"]["cn"], json!(["order-service"]));
}

#[test]
fn non_canonical_paths_are_refused_and_the_decoded_path_is_shown() {
    let s = setup("explain-paths");
    let cert = cert_arg(&s.order);
    for path in ["/api/payment/create/../admin", "/api/payment%2Fcreate", "/api/payment/create;x"] {
        let v = explain(&s.policy, &with_cert(&cert), "POST", path, "json").json();
        assert_eq!(v["decision"], "deny", "{path}");
        assert_eq!(v["rule"], serde_json::Value::Null, "{path}");
        assert_eq!(v["decided_by"], "refused", "{path}");
        assert!(v["reason"].as_str().unwrap().starts_with("path has"), "{path}: {v}");
        assert_eq!(v["request"]["canonical_path"], serde_json::Value::Null);
    }
    // An escaped letter is decoded, so the deny rule on /admin still sees it.
    let v = explain(&s.policy, &with_cert(&cert), "GET", "/api/payment/%61dmin/x", "json").json();
    assert_eq!(v["rule"], "nobody-on-admin");
    assert_eq!(v["request"]["canonical_path"], "/api/payment/admin/x");
    let text = explain(&s.policy, &with_cert(&cert), "GET", "/api/payment/%61dmin/x", "text");
    assert!(field(&text, "request").contains("(matched as /api/payment/admin/x)"), "{text:#?}");
}

#[test]
fn no_cert_shows_the_refusal_without_an_identity() {
    let s = setup("explain-nocert");
    let v = explain(&s.policy, &["--no-cert"], "POST", "/api/payment/create", "json").json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], serde_json::Value::Null);
    assert_eq!(v["reason"], "no verified client certificate on the connection");
    assert_eq!(v["identity"], serde_json::Value::Null);
    assert_eq!(v["identity_source"]["kind"], "none");
    let text = explain(&s.policy, &["--no-cert"], "POST", "/api/payment/create", "text");
    assert_eq!(field(&text, "caller"), "no client certificate");
    assert!(!text.stdout.contains("cn:"), "{text:#?}");
}

#[test]
fn the_json_identity_of_a_certificate_reads_back_as_an_identity_file() {
    let s = setup("explain-roundtrip");
    let cert = cert_arg(&s.order);
    let from_cert = explain(&s.policy, &with_cert(&cert), "POST", "/api/payment/create", "json").json();
    let fields = write(&s.dir, "order.identity.json", from_cert["identity"].to_string());
    let from_fields = explain(&s.policy, &["--identity", fields.to_str().unwrap()], "POST", "/api/payment/create", "json");
    assert_eq!(from_fields.code, 0, "{from_fields:#?}");
    let from_fields = from_fields.json();
    assert_eq!(from_fields["identity"], from_cert["identity"], "identity fields survive the round trip");
    for key in ["decision", "enforced", "rule", "reason", "upstream_principal"] {
        assert_eq!(from_fields[key], from_cert[key], "{key}");
    }
    assert_eq!(from_fields["identity_source"]["kind"], "identity");
}

#[test]
fn hand_written_identity_fields_decide_like_a_certificate() {
    let s = setup("explain-fields");
    let fields = write(&s.dir, "report.json", r#"{"cn": "report-service", "ou": ["reporting"]}"#);
    let run = explain(&s.policy, &["--identity", fields.to_str().unwrap()], "GET", "/api/payment/query/42", "text");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(field(&run, "rule"), "reports-read-payment");
    assert_eq!(field(&run, "not_before"), "-", "unknown, not invented");
    assert_eq!(field(&run, "serial"), "-");
}

#[test]
fn dry_run_reports_the_deny_but_enforces_allow() {
    let s = setup("explain-dryrun");
    let policy = write(&s.dir, "dry.json", PAYMENT_POLICY.replace("\"revision\": \"test-1\"", "\"mode\": \"dry_run\""));
    let cert = cert_arg(&s.report);
    let v = explain(&policy, &with_cert(&cert), "POST", "/api/payment/create", "json").json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["enforced"], "allow");
    assert_eq!(v["policy"]["mode"], "dry_run");
    let text = explain(&policy, &with_cert(&cert), "POST", "/api/payment/create", "text");
    assert!(field(&text, "enforced").starts_with("allow (dry run"), "{text:#?}");
}

fn assert_bad_cert(run: &Run, file: &Path, why: &str) {
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(run.stdout, "", "no half report: {run:#?}");
    assert!(run.stderr.contains(&file.display().to_string()), "names the file: {run:#?}");
    assert!(run.stderr.contains(why), "says why ({why}): {run:#?}");
}

#[test]
fn garbage_pem_is_exit_2_with_a_message_not_a_panic() {
    let s = setup("explain-garbage-pem");
    let garbage = write(&s.dir, "garbage.pem", "-----BEGIN CERTIFICATE-----\nthis is !!! not base64\n-----END CERTIFICATE-----\n");
    let cert = cert_arg(&garbage);
    for format in ["text", "json"] {
        let run = explain(&s.policy, &with_cert(&cert), "GET", "/", format);
        assert_bad_cert(&run, &garbage, "cannot read certificate");
    }
    let valid_base64_not_a_cert = write(&s.dir, "b64.pem", "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n");
    let cert = cert_arg(&valid_base64_not_a_cert);
    assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &valid_base64_not_a_cert, "cannot read certificate");
}

#[test]
fn random_der_is_exit_2_with_a_message_not_a_panic() {
    let s = setup("explain-random-der");
    for seed in 1..=16u64 {
        let der = write(&s.dir, &format!("random-{seed}.der"), noise(64 + 37 * seed as usize, seed));
        let cert = cert_arg(&der);
        assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &der, "not an X.509 certificate");
    }
    // A real certificate cut short, and one with trailing junk.
    let good = TestCa::new().leaf_der(&order_service());
    let cut = write(&s.dir, "cut.der", &good[..good.len() / 2]);
    let cert = cert_arg(&cut);
    assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &cut, "not an X.509 certificate");
    let mut long = good.clone();
    long.extend_from_slice(b"junk");
    let long = write(&s.dir, "long.der", long);
    let cert = cert_arg(&long);
    assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &long, "not an X.509 certificate");
}

#[test]
fn a_key_file_or_empty_file_is_not_a_certificate() {
    let s = setup("explain-key");
    let key = write(&s.dir, "key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let cert = cert_arg(&key);
    assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &key, "no PEM CERTIFICATE block");
    let empty = write(&s.dir, "empty.pem", "");
    let cert = cert_arg(&empty);
    assert_bad_cert(&explain(&s.policy, &with_cert(&cert), "GET", "/", "text"), &empty, "empty");
}

#[test]
fn missing_files_and_invalid_policies_are_exit_2() {
    let s = setup("explain-missing");
    let missing = s.dir.join("nope.pem");
    let cert = cert_arg(&missing);
    let run = explain(&s.policy, &with_cert(&cert), "GET", "/", "text");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("cannot read certificate") && run.stderr.contains("no such file"), "{run:#?}");

    let cert = cert_arg(&s.order);
    let run = explain(&s.dir.join("nope.json"), &with_cert(&cert), "GET", "/", "text");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("cannot read policy"), "{run:#?}");

    let invalid = write(&s.dir, "invalid.json", "{\"version\": 1, \"default_action\": \"maybe\", \"rules\": []}");
    let run = explain(&invalid, &with_cert(&cert), "GET", "/", "text");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with(&format!("{}:1:34: default_action: ", invalid.display())), "policy errors are printed: {run:#?}");

    let bad_fields = write(&s.dir, "fields.json", "{\"cn\": \"a\",\n \"orgs\": [\"x\"]}");
    let run = explain(&s.policy, &["--identity", bad_fields.to_str().unwrap()], "GET", "/", "text");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with(&format!("{}:2:", bad_fields.display())), "{run:#?}");
    assert!(run.stderr.contains("unknown field `orgs`"), "{run:#?}");
}

#[test]
fn exactly_one_caller_must_be_given() {
    let s = setup("explain-args");
    let cert = cert_arg(&s.order);
    let both = explain(&s.policy, &[&cert[0], &cert[1], "--no-cert"], "GET", "/", "text");
    assert_eq!(both.code, 2, "{both:#?}");
    let none = explain(&s.policy, &[], "GET", "/", "text");
    assert_eq!(none.code, 2, "{none:#?}");
}

fn explain_with(setup: &Setup, extra: &[&str]) -> serde_json::Value {
    let cert = cert_arg(&setup.order);
    let mut args = vec!["explain".to_owned(), "--policy".into(), setup.policy.display().to_string()];
    args.extend(with_cert(&cert).iter().map(|s| s.to_string()));
    args.extend(["--method", "POST", "--path", "/api/payment/create", "--format", "json"].map(str::to_owned));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = mtls_authz(args);
    assert_eq!(run.code, 0, "{run:#?}");
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn override_headers_and_bodies_are_explained_as_the_filter_decides_them() {
    let s = setup("explain-overrides");
    let plain = explain_with(&s, &[]);
    assert_eq!((plain["decision"].as_str(), plain["rule"].as_str()), (Some("allow"), Some("orders-create-payment")));
    let header = explain_with(&s, &["--header", "X-HTTP-Method-Override: DELETE"]);
    assert_eq!(header["decision"], "deny");
    assert_eq!(header["reason"], "request asks the backend to override its method or path");
    assert_eq!(header["request"]["headers"], json!([["X-HTTP-Method-Override", "DELETE"]]));
    let form = ["--header", "Content-Type: application/x-www-form-urlencoded"];
    let clean = explain_with(&s, &[form[0], form[1], "--body", "amount=10"]);
    assert_eq!((clean["decision"].as_str(), clean["request"]["body_bytes"].as_u64()), (Some("allow"), Some(9)));
    let body = explain_with(&s, &[form[0], form[1], "--body", "amount=10&.method=DELETE"]);
    assert_eq!(body["reason"], "request body asks the backend to override its method (_method)");
    let file = write(&s.dir, "body.json", r#"{"_method": "DELETE"}"#);
    let json_body = explain_with(&s, &["-H", "content-type: application/json", "--body-file", &file.display().to_string()]);
    assert_eq!(json_body["decision"], "deny");
    assert_eq!(plain["request"]["body_bytes"], serde_json::Value::Null);
}

#[test]
fn a_malformed_header_argument_is_a_usage_error() {
    let s = setup("explain-bad-header");
    let cert = cert_arg(&s.order);
    let mut args = vec!["explain".to_owned(), "--policy".into(), s.policy.display().to_string()];
    args.extend(with_cert(&cert).iter().map(|s| s.to_string()));
    args.extend(["--path", "/", "--header", "no-colon-here"].map(str::to_owned));
    let run = mtls_authz(args);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("expected 'NAME: VALUE'"), "{run:#?}");
    run.assert_no_panic();
}

const CONNECTION_POLICY: &str = r#"{"version": 1, "default_action": "deny", "revision": "l4-1", "connection_rules": [
  {"name": "orders", "action": "allow", "principals": [{"cn": "order-service"}]},
  {"name": "no-reports", "action": "deny", "principals": [{"ou": "reporting"}]}]}"#;

#[test]
fn explain_connection_judges_by_connection_rules_with_no_request() {
    let s = setup("explain-connection");
    let policy = write(&s.dir, "l4.json", CONNECTION_POLICY);
    let order = cert_arg(&s.order);
    let run = mtls_authz(["explain", "--connection", "--policy", policy.to_str().unwrap(), &order[0], &order[1]]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(field(&run, "decision"), "allow");
    assert_eq!(field(&run, "rule"), "orders");
    assert!(
        field(&run, "log").starts_with("mtls-authz: connection allow principal=\"uri=spiffe://shop.test/ns/prod/sa/order\""),
        "{run:#?}"
    );
    let report = cert_arg(&s.report);
    let run = mtls_authz(["explain", "--connection", "--policy", policy.to_str().unwrap(), &report[0], &report[1], "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!((v["decision"].as_str(), v["rule"].as_str(), v["unfit"].is_null()), (Some("deny"), Some("no-reports"), true), "{v}");
    // An HTTP policy can be asked, and the answer says it cannot run an L4 listener.
    let run = mtls_authz(["explain", "--connection", "--policy", s.policy.to_str().unwrap(), "--no-cert", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(v["unfit"].as_str().is_some_and(|w| w.contains("connection_rules")), "{v}");
    // A connection has no path.
    let run = mtls_authz(["explain", "--connection", "--policy", policy.to_str().unwrap(), "--no-cert", "--path", "/x"]);
    assert_eq!(run.code, 2, "{run:#?}");
    run.assert_no_panic();
}

#[test]
fn a_refused_grpc_call_is_explained_as_the_client_gets_it() {
    let s = setup("explain-grpc");
    let report = cert_arg(&s.report);
    let mut args = vec!["explain", "--policy", s.policy.to_str().unwrap(), &report[0], &report[1]];
    args.extend(["--method", "POST", "--path", "/shop.Payments/Create", "--header", "content-type: application/grpc", "--format", "json"]);
    let run = mtls_authz(&args);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let response = &v["outcome"]["response"];
    assert_eq!(response["grpc_status"], 7, "{v}");
    assert_eq!(response["headers"][0], json!(["grpc-message", "forbidden: no rule matched; default_action is deny"]), "{v}");
    // Not gRPC: the 403, and no grpc_status at all.
    let run = mtls_authz([
        "explain",
        "--policy",
        s.policy.to_str().unwrap(),
        &report[0],
        &report[1],
        "--method",
        "POST",
        "--path",
        "/x",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!((v["outcome"]["response"]["status"].as_u64(), v["outcome"]["response"].get("grpc_status")), (Some(403), None), "{v}");
}

#[test]
fn explain_names_the_counters_and_the_limits_a_request_meets() {
    let dir = scratch_dir("explain-gateway");
    let policy = write(
        &dir,
        "policy.json",
        r#"{"version": 1, "default_action": "deny",
  "metrics": {"per_identity": {"field": "o"}},
  "limits": [{"name": "quota", "rules": ["partner"], "key": ["o", "rule"], "rate": {"requests": 60, "per": "minute"}, "burst": 5}],
  "rules": [{"name": "partner", "action": "allow", "principals": [{"o": "Globex Corporation"}], "paths": ["/orders/**"]}]}"#,
    );
    let fields = write(&dir, "globex.json", r#"{"cn": "app", "o": ["Globex Corporation"]}"#);
    let caller = ["--identity".to_owned(), fields.display().to_string()];
    let run = explain(&policy, &with_cert(&caller), "GET", "/orders/1", "text");
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("counted:    rule=\"partner\" identity=\"Globex Corporation\"\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("limit:      quota (60/minute, burst 5; key o=\"Globex Corporation\" rule=\"partner\")\n"),
        "{}",
        run.stdout
    );
    let run = explain(&policy, &with_cert(&caller), "GET", "/elsewhere", "json");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["gateway"], json!({"rule_label": "~default", "identity_label": "Globex Corporation", "limits": []}));
}
