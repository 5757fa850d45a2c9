//! `mtls-authz check`: valid policies say "ok", invalid ones point at the
//! exact line, column and JSON path, and unreadable files are a different exit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{mtls_authz, scratch_dir, write, PAYMENT_POLICY};

#[test]
fn a_valid_policy_is_ok_with_its_rule_count() {
    let dir = scratch_dir("check-ok");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let run = mtls_authz(["check".as_ref(), policy.as_os_str()]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout, format!("{}: ok (3 rules)\n", policy.display()));
    assert_eq!(run.stderr, "");
}

#[test]
fn an_invalid_policy_reports_file_line_column_and_json_path() {
    let dir = scratch_dir("check-invalid");
    // Line 6: the path pattern lacks its leading slash; line 7: a lower-case method.
    let src = r#"{
  "version": 1,
  "default_action": "deny",
  "rules": [
    {"name": "a", "action": "allow", "principals": [{"cn": "x"}],
     "paths": ["api/x"],
     "methods": ["get"]}
  ]
}
"#;
    let policy = write(&dir, "bad.json", src);
    let run = mtls_authz(["check".as_ref(), policy.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(run.stdout, "", "nothing on stdout for an invalid policy");
    let lines: Vec<&str> = run.stderr.lines().collect();
    let file = policy.display();
    assert_eq!(lines.len(), 2, "{run:#?}");
    assert!(lines[0].starts_with(&format!("{file}:6:16: rules[0].paths[0]: ")), "wrong position or path: {}", lines[0]);
    assert!(lines[0].contains("must start with '/'"), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("{file}:7:18: rules[0].methods[0]: ")), "{}", lines[1]);
    assert!(lines[1].contains("write \"GET\""), "{}", lines[1]);
}

#[test]
fn a_syntax_error_is_located_too() {
    let dir = scratch_dir("check-syntax");
    let policy = write(&dir, "syntax.json", "{\n  \"version\": 1,\n}\n");
    let run = mtls_authz(["check".as_ref(), policy.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.starts_with(&format!("{}:3:1: ", policy.display())), "{run:#?}");
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let dir = scratch_dir("check-unknown");
    let src = PAYMENT_POLICY.replace("\"action\": \"deny\"", "\"action\": \"deny\", \"methodz\": [\"GET\"]");
    let policy = write(&dir, "p.json", src);
    let run = mtls_authz(["check".as_ref(), policy.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains(": rules[2].methodz: unknown field 'methodz'"), "{run:#?}");
}

#[test]
fn a_misplaced_head_with_get_is_reported_at_the_field() {
    let dir = scratch_dir("check-head-with-get");
    let src = r#"{
  "version": 1,
  "default_action": "deny",
  "rules": [
    {"name": "read", "action": "allow", "principals": [{"cn": "x"}], "paths": ["/a"],
     "methods": ["GET"], "head_with_get": false}
  ]
}
"#;
    let policy = write(&dir, "head.json", src);
    let run = mtls_authz(["check".as_ref(), policy.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    let line = run.stderr.trim_end();
    assert!(line.starts_with(&format!("{}:6:26: rules[0].head_with_get: ", policy.display())), "{run:#?}");
    assert!(line.contains("applies only to deny rules"), "{run:#?}");
}

#[test]
fn a_missing_file_is_exit_2_with_a_clear_message_and_the_rest_are_still_checked() {
    let dir = scratch_dir("check-missing");
    let good = write(&dir, "good.json", PAYMENT_POLICY);
    let missing = dir.join("missing.json");
    let run = mtls_authz(["check".as_ref(), missing.as_os_str(), good.as_os_str()]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(run.stderr.trim(), format!("mtls-authz: cannot read policy '{}': no such file", missing.display()));
    assert_eq!(run.stdout, format!("{}: ok (3 rules)\n", good.display()));
}

#[test]
fn several_files_exit_with_the_worst_outcome() {
    let dir = scratch_dir("check-several");
    let good = write(&dir, "good.json", PAYMENT_POLICY);
    let bad = write(&dir, "bad.json", r#"{"version": 2, "default_action": "deny", "rules": []}"#);
    let run = mtls_authz(["check".as_ref(), good.as_os_str(), bad.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("good.json: ok (3 rules)"));
    assert!(run.stderr.starts_with(&format!("{}:1:13: version: unsupported version", bad.display())), "{run:#?}");
}

#[test]
fn a_directory_or_binary_file_is_unusable_input() {
    let dir = scratch_dir("check-dir");
    let run = mtls_authz(["check".as_ref(), dir.as_os_str()]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("is a directory"), "{run:#?}");
    let binary = write(&dir, "policy.bin", [0xff, 0xfe, 0x00, 0x81]);
    let run = mtls_authz(["check".as_ref(), binary.as_os_str()]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("not UTF-8"), "{run:#?}");
}

#[test]
fn check_without_files_is_a_usage_error() {
    let run = mtls_authz(["check"]);
    assert_eq!(run.code, 2, "{run:#?}");
}
