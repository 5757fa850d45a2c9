//! `mtls-authz test`: passing and failing suites, the closing
//! `N passed, N failed` line, exit codes 0/1/2, and strict case files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{mtls_authz, scratch_dir, write, CertSpec, Run, TestCa, PAYMENT_POLICY};

fn run_test(policy: &Path, cases: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["test".to_owned(), policy.display().to_string(), cases.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    mtls_authz(args)
}

const PASSING: &str = r#"{
  "description": "the payment API's access rules",
  "cases": [
    {"name": "orders create payments (by SPIFFE ID)",
     "identity": {"uri_san": ["spiffe://shop.test/ns/prod/sa/order"]},
     "method": "POST", "path": "/api/payment/create", "expect": "allow", "rule": "orders-create-payment"},
    {"name": "reports read one payment",
     "identity": {"cn": "report-service", "ou": ["reporting"]},
     "method": "GET", "path": "/api/payment/query/42?full=1", "expect": "allow", "rule": "reports-read-payment",
     "reason": "allow rule"},
    {"name": "reports cannot create",
     "identity": {"cn": "report-service", "ou": ["reporting"]},
     "method": "POST", "path": "/api/payment/create", "expect": "deny", "rule": null, "reason": "default_action is deny"},
    {"name": "admin is closed even to orders",
     "identity": {"cn": "order-service"},
     "method": "GET", "path": "/api/payment/admin/users", "expect": "deny", "rule": "nobody-on-admin"},
    {"name": "dot-dot does not reach admin",
     "identity": {"cn": "order-service"},
     "method": "POST", "path": "/api/payment/create/../admin", "expect": "deny", "rule": null, "reason": "'..' segment"},
    {"name": "no certificate",
     "no_cert": true, "method": "POST", "path": "/api/payment/create", "expect": "deny",
     "reason": "no verified client certificate"}
  ]
}
"#;

#[test]
fn a_passing_suite_exits_0_with_the_closing_line() {
    let dir = scratch_dir("test-pass");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(&dir, "cases.json", PASSING);
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout, "6 passed, 0 failed\n", "only the summary when everything passes");
    assert_eq!(run.stderr, "");

    let verbose = run_test(&policy, &cases, &["--verbose"]);
    assert_eq!(verbose.code, 0);
    assert!(verbose.stdout.contains("ok   reports cannot create\n"), "{verbose:#?}");
    assert_eq!(verbose.last_line(), "6 passed, 0 failed");
}

#[test]
fn failures_show_expected_and_got_and_exit_1() {
    let dir = scratch_dir("test-fail");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(
        &dir,
        "cases.json",
        r#"{"cases": [
  {"name": "passes", "identity": {"cn": "order-service"},
   "method": "POST", "path": "/api/payment/create", "expect": "allow"},
  {"name": "wrong decision", "identity": {"cn": "report-service", "ou": "reporting"},
   "method": "POST", "path": "/api/payment/create", "expect": "allow", "rule": "orders-create-payment"},
  {"name": "wrong rule", "identity": {"cn": "order-service"},
   "method": "POST", "path": "/api/payment/create", "expect": "allow", "rule": "order-create-payment"},
  {"name": "wrong reason", "no_cert": true,
   "method": "GET", "path": "/", "expect": "deny", "rule": null, "reason": "default_action"}
]}"#,
    );
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.last_line(), "1 passed, 3 failed");
    assert!(run.stdout.lines().any(|l| l == "1 passed, 3 failed"), "alone on its line");
    let out = &run.stdout;
    let at =
        |name: &str| out.find(&format!("FAIL \"{name}\" ({}:", cases.display())).unwrap_or_else(|| panic!("no FAIL for {name}: {out}"));
    let (decision, rule, reason) = (at("wrong decision"), at("wrong rule"), at("wrong reason"));
    assert!(decision < rule && rule < reason, "failures in case order");
    assert!(out.contains(
        "  request:  POST /api/payment/create from identity report-service\n  expected: allow, rule \"orders-create-payment\"\n  got:      deny, rule null, reason \"no rule matched; default_action is deny\"\n"
    ), "{out}");
    assert!(out.contains("  expected: allow, rule \"order-create-payment\"\n  got:      allow, rule \"orders-create-payment\", reason \"matched an allow rule\"\n"), "{out}");
    assert!(out.contains("  note:     the policy has no rule named \"order-create-payment\""), "typo hint: {out}");
    assert!(out.contains("  expected: deny, rule null, reason containing \"default_action\"\n  got:      deny, rule null, reason \"no verified client certificate on the connection\"\n"), "{out}");
    assert!(!out.contains("FAIL \"passes\""));
}

#[test]
fn json_format_reports_every_result() {
    let dir = scratch_dir("test-json");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(&dir, "cases.json", PASSING.replace("\"expect\": \"deny\", \"rule\": \"nobody-on-admin\"", "\"expect\": \"allow\""));
    let run = run_test(&policy, &cases, &["--format", "json"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let v = run.json();
    assert_eq!(v["passed"], 5);
    assert_eq!(v["failed"], 1);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let failed: Vec<_> = results.iter().filter(|r| r["passed"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "admin is closed even to orders");
    assert_eq!(failed[0]["expected"]["decision"], "allow");
    assert!(failed[0]["expected"].get("rule").is_none(), "an unchecked rule is absent, not null");
    assert_eq!(failed[0]["got"]["decision"], "deny");
    assert_eq!(failed[0]["got"]["rule"], "nobody-on-admin");
    assert_eq!(failed[0]["mismatches"], serde_json::json!(["decision"]));
}

#[test]
fn cases_can_use_certificates_relative_to_the_cases_file() {
    let dir = scratch_dir("test-certs");
    let ca = TestCa::new();
    write(&dir, "suite/certs/order.pem", ca.leaf_pem(&CertSpec { cn: Some("order-service"), ..CertSpec::default() }));
    write(
        &dir,
        "suite/certs/report.der",
        ca.leaf_der(&CertSpec { cn: Some("report-service"), ou: Some("reporting"), ..CertSpec::default() }),
    );
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(
        &dir,
        "suite/cases.json",
        r#"{"cases": [
  {"name": "order by cert", "cert": "certs/order.pem", "method": "POST", "path": "/api/payment/create", "expect": "allow"},
  {"name": "report by DER cert", "cert": "certs/report.der", "method": "HEAD", "path": "/api/payment/query", "expect": "allow",
   "rule": "reports-read-payment"}
]}"#,
    );
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.last_line(), "2 passed, 0 failed");
}

#[test]
fn a_named_certificate_runs_on_its_fields_or_with_certs_on_the_file_which_must_agree() {
    let dir = scratch_dir("test-named-certs");
    let ca = TestCa::new();
    // The certificate says report-service; the fields say order-service in one case.
    write(&dir, "pki/report.crt", ca.leaf_pem(&CertSpec { cn: Some("report-service"), ou: Some("reporting"), ..CertSpec::default() }));
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let agreeing = write(
        &dir,
        "agreeing.json",
        r#"{"cases": [
  {"name": "report reads", "cert": "report", "identity": {"cn": "report-service", "ou": "reporting", "issuer_cn": "Shop Test CA"},
   "method": "GET", "path": "/api/payment/query", "expect": "allow", "rule": "reports-read-payment"}
]}"#,
    );
    let drifted = write(
        &dir,
        "drifted.json",
        r#"{"cases": [
  {"name": "order creates", "cert": "report", "identity": {"cn": "order-service"},
   "method": "POST", "path": "/api/payment/create", "expect": "allow"}
]}"#,
    );
    let certs = dir.join("pki").display().to_string();
    // Without --certs the written fields are the caller (no PKI needed).
    assert_eq!(run_test(&policy, &agreeing, &[]).last_line(), "1 passed, 0 failed");
    assert_eq!(run_test(&policy, &drifted, &[]).last_line(), "1 passed, 0 failed");
    // With --certs the certificate is, and it must have the written fields.
    let run = run_test(&policy, &agreeing, &["--certs", &certs]);
    assert_eq!((run.code, run.last_line()), (0, "1 passed, 0 failed"), "{run:#?}");
    let run = run_test(&policy, &drifted, &["--certs", &certs]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("differs from certificate report: cn: written [\"order-service\"], the certificate has [\"report-service\"]"),
        "{run:#?}"
    );
    // A name field left out means "none": the certificate's OU is drift too,
    // since the fields would then decide differently from the certificate.
    let partial = write(
        &dir,
        "partial.json",
        r#"{"cases": [
  {"name": "report reads", "cert": "report", "identity": {"cn": "report-service", "issuer_cn": "Shop Test CA"},
   "method": "GET", "path": "/api/payment/query", "expect": "deny"}
]}"#,
    );
    let run = run_test(&policy, &partial, &["--certs", &certs]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("ou: written [], the certificate has [\"reporting\"]"), "{run:#?}");
    let run = run_test(&policy, &agreeing, &["--certs", &dir.join("nowhere").display().to_string()]);
    assert_eq!(run.code, 2, "{run:#?}");
}

#[test]
fn dry_run_cases_can_assert_what_is_enforced() {
    let dir = scratch_dir("test-dryrun");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY.replace("\"revision\": \"test-1\"", "\"mode\": \"dry_run\""));
    let cases = write(
        &dir,
        "cases.json",
        r#"{"cases": [
  {"name": "would be denied, is allowed", "identity": {"cn": "stranger"}, "method": "GET", "path": "/api/payment/query",
   "expect": "deny", "enforced": "allow", "rule": null},
  {"name": "claims enforcement", "identity": {"cn": "stranger"}, "method": "GET", "path": "/api/payment/query",
   "expect": "deny", "enforced": "deny"}
]}"#,
    );
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("  expected: deny, enforced deny\n  got:      deny, enforced allow, rule null"), "{run:#?}");
    assert_eq!(run.last_line(), "1 passed, 1 failed");
}

#[test]
fn unknown_fields_and_missing_callers_are_input_errors_with_positions() {
    let dir = scratch_dir("test-bad-cases");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(
        &dir,
        "cases.json",
        "{\"cases\": [\n  {\"name\": \"typo\", \"no_cert\": true, \"method\": \"GET\", \"path\": \"/\", \"expected\": \"deny\"},\n  {\"name\": \"nobody\", \"method\": \"GET\", \"path\": \"/\", \"expect\": \"deny\"},\n  {\"name\": \"bad ip\", \"identity\": {\"ip_san\": [\"10.1\"]}, \"method\": \"GET\", \"path\": \"/\", \"expect\": \"deny\"}\n]}",
    );
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(run.stdout, "", "no summary for unusable input");
    let file = cases.display().to_string();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    assert!(lines[0].starts_with(&format!("{file}:2:")) && lines[0].contains("cases[0] (\"typo\"): unknown field `expected`"), "{run:#?}");
    assert_eq!(lines[1], format!("{file}:3:3: cases[1]: give exactly one caller: \"cert\", \"identity\" or \"no_cert\": true"));
    assert!(lines[2].starts_with(&format!("{file}:4:")) && lines[2].contains("'10.1' is not an IP address"), "{run:#?}");
}

#[test]
fn unusable_inputs_are_exit_2() {
    let dir = scratch_dir("test-unusable");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(&dir, "cases.json", PASSING);

    let run = run_test(&dir.join("missing.json"), &cases, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("cannot read policy") && run.stderr.contains("no such file"), "{run:#?}");

    let run = run_test(&policy, &dir.join("missing-cases.json"), &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("cannot read cases file"), "{run:#?}");

    let invalid = write(&dir, "invalid.json", r#"{"version": 1, "default_action": "deny"}"#);
    let run = run_test(&invalid, &cases, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("missing required field 'rules'"), "{run:#?}");

    let missing_cert = write(
        &dir,
        "cert-cases.json",
        r#"{"cases": [{"name": "x", "cert": "certs/nope.pem", "method": "GET", "path": "/", "expect": "deny"}]}"#,
    );
    let run = run_test(&policy, &missing_cert, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("cases[0].cert: cannot read certificate") && run.stderr.contains("nope.pem"), "{run:#?}");

    write(&dir, "certs/junk.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let junk = write(
        &dir,
        "junk-cases.json",
        r#"{"cases": [{"name": "x", "cert": "certs/junk.pem", "method": "GET", "path": "/", "expect": "deny"}]}"#,
    );
    let run = run_test(&policy, &junk, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("junk.pem: cannot read certificate"), "{run:#?}");

    let syntax = write(&dir, "syntax.json", "{\"cases\": [\n}");
    let run = run_test(&policy, &syntax, &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with(&format!("{}:2:", syntax.display())), "{run:#?}");
}

#[test]
fn help_documents_the_cases_format() {
    let run = mtls_authz(["test", "--help"]);
    assert_eq!(run.code, 0);
    for needle in ["\"cases\"", "\"identity\"", "\"no_cert\": true", "expect", "N passed, N failed"] {
        assert!(run.stdout.contains(needle), "help lacks {needle}: {}", run.stdout);
    }
}

#[test]
fn cases_can_carry_override_headers_and_bodies() {
    let dir = scratch_dir("test-overrides");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let cases = write(
        &dir,
        "cases.json",
        r#"{"cases": [
          {"name": "a form post goes on", "identity": {"cn": "order-service"}, "method": "POST", "path": "/api/payment/create",
           "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": "amount=10",
           "expect": "allow", "rule": "orders-create-payment"},
          {"name": "_method in the form is refused", "identity": {"cn": "order-service"}, "method": "POST", "path": "/api/payment/create",
           "headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": "amount=10&_method=DELETE",
           "expect": "deny", "rule": null, "reason": "request body asks the backend to override its method"},
          {"name": "an override header is refused", "identity": {"cn": "order-service"}, "method": "POST", "path": "/api/payment/create",
           "headers": {"X-HTTP-Method-Override": "DELETE"}, "expect": "deny", "reason": "override its method or path"}
        ]}"#,
    );
    let run = run_test(&policy, &cases, &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.ends_with("3 passed, 0 failed\n"), "{run:#?}");
    // The same case expecting the wrong answer fails: the body is really read.
    let wrong = write(
        &dir,
        "wrong.json",
        r#"{"cases": [{"name": "wrong", "identity": {"cn": "order-service"}, "method": "POST", "path": "/api/payment/create",
           "headers": {"Content-Type": "application/json"}, "body": "{\"_method\": \"DELETE\"}", "expect": "allow"}]}"#,
    );
    let run = run_test(&policy, &wrong, &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("body: 21 bytes"), "{run:#?}");
}
