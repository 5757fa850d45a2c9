#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] functions; a panic here is a failed test
//! `mtls-authz path`: how targets read under a policy's path_reading, and
//! `explain` naming the option that would accept a refused path.

mod common;

use common::{mtls_authz, scratch_dir, write};

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn strict_refusals_name_the_option_that_would_accept_them() {
    let run = mtls_authz(["path", "--format", "json", "/admin/login/", "/app;jsessionid=1/x", "/wiki/C%23", "/a/../b", "/ok"]);
    run.assert_no_panic();
    assert_eq!(run.code, 1, "some were refused: {run:#?}");
    let lines = json_lines(&run.stdout);
    let codes: Vec<&str> = lines.iter().map(|l| l["refusal"]["code"].as_str().unwrap_or("-")).collect();
    assert_eq!(codes, ["path.trailing_slash", "path.path_parameter", "path.encoded_delimiter", "path.dot_segment", "-"]);
    assert!(lines[0]["refusal"]["accepted_by"].as_str().unwrap().contains("same_as_without"));
    assert!(lines[1]["refusal"]["accepted_by"].as_str().unwrap().contains("\"strip\""));
    assert!(lines[3]["refusal"]["accepted_by"].is_null(), "no option accepts a dot segment");
    assert_eq!(lines[4]["segments"], serde_json::json!(["ok"]));
}

#[test]
fn a_reading_accepts_the_real_world_shapes_and_says_what_the_backend_receives() {
    let reading = r#"{"trailing_slash": "same_as_without", "path_parameters": "strip", "encoded_delimiters": "decode_once"}"#;
    let run = mtls_authz(["path", "--format", "json", "--reading", reading, "/admin/login/", "/shop;jsessionid=A1/cart", "/wiki/C%23_(x)"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let lines = json_lines(&run.stdout);
    assert_eq!(lines[0]["decoded"], serde_json::json!(["admin", "login", ""]));
    assert_eq!(lines[0]["path"], "/admin/login");
    assert_eq!(lines[1]["path"], "/shop/cart");
    assert_eq!(lines[2]["segments"], serde_json::json!(["wiki", "C#_(x)"]));
}

#[test]
fn targets_come_from_stdin_and_a_policy_gives_the_reading() {
    let dir = scratch_dir("path-policy");
    let policy = write(
        &dir,
        "policy.json",
        r#"{"version": 1, "default_action": "deny", "path_reading": {"case": "insensitive", "suffix_patterns": true}, "rules": []}"#,
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mtls-authz"))
        .args(["path", "--format", "json", "--policy"])
        .arg(&policy)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"/Docs/Internal.JSON\r\n/x\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["target"], "/Docs/Internal.JSON", "CRLF line ends are not part of the target");
    assert_eq!(lines[0]["path"], "/docs/internal.json");
    assert_eq!(lines[0]["alternatives"], serde_json::json!([["docs", "internal"]]));
}

#[test]
fn a_bad_reading_is_unusable_input_with_the_policy_path() {
    let run = mtls_authz(["path", "--reading", r#"{"trailing_slash": "sometimes"}"#, "/x"]);
    run.assert_no_panic();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("path_reading.trailing_slash") && run.stderr.contains("same_as_without"), "{run:#?}");
}

#[test]
fn explain_refuses_a_raw_fragment_and_says_how_a_refused_path_could_be_read() {
    let dir = scratch_dir("path-explain");
    let policy = write(
        &dir,
        "policy.json",
        r#"{"version": 1, "default_action": "deny", "rules": [
            {"name": "q", "action": "allow", "principals": [{"any": true}], "paths": ["/api/payment/query"]}]}"#,
    );
    let identity = write(&dir, "id.json", r#"{"cn": "report-service"}"#);
    let explain = |path: &str| {
        let run = mtls_authz([
            "explain",
            "--format",
            "json",
            "--policy",
            policy.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
            "--path",
            path,
        ]);
        assert_eq!(run.code, 0, "{run:#?}");
        run.json()
    };
    let fragment = explain("/api/payment/query#/../admin/x");
    assert_eq!(
        (fragment["decision"].as_str(), fragment["request"]["reading"]["refusal"]["code"].as_str()),
        (Some("deny"), Some("path.fragment"))
    );
    let slash = explain("/api/payment/query/");
    assert!(slash["request"]["reading"]["refusal"]["accepted_by"].as_str().unwrap().contains("trailing_slash"));
    assert!(slash["outcome"]["log_line"].as_str().unwrap().contains("accepted_by="), "{slash}");
    let ok = explain("/api/payment/%71uery");
    assert_eq!((ok["decision"].as_str(), ok["request"]["canonical_path"].as_str()), (Some("allow"), Some("/api/payment/query")));
}
