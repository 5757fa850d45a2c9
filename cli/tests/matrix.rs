#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions
//! `mtls-authz matrix`, `diff` and `playground`, run as CI and people run them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{mtls_authz, scratch_dir, write};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/microservices/policy.json");

#[test]
fn the_table_has_a_line_per_identity_and_endpoint_and_a_column_per_method() {
    let run = mtls_authz(["matrix", EXAMPLE]);
    assert_eq!(run.code, 0, "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(lines[0]), ["identity", "path", "GET", "HEAD", "POST"]);
    let reporting = lines.iter().find(|l| l.starts_with("cn=report-service ou=reporting") && l.contains(" /api/payment/query ")).unwrap();
    assert_eq!(words(reporting)[3..], ["allow:reports-read-payment", "allow:reports-read-payment", "deny:default"]);
    assert_eq!(run.last_line(), "4 identities x 4 endpoints x 3 methods: 6 of 48 cells allow");
}

#[test]
fn json_and_cases_carry_every_cell_and_the_cases_pass() {
    let dir = scratch_dir("matrix-cases");
    let me = write(&dir, "me.json", r#"{"cn": "order-service", "o": ["shop"]}"#);
    let m =
        mtls_authz(["matrix", EXAMPLE, "--identity", me.to_str().unwrap(), "--endpoint", "/api/payment/create?x=1", "--format", "json"])
            .json();
    let rows = m["identities"].as_array().unwrap().len();
    assert_eq!(rows, 5, "the fields add a row: its O makes it another identity");
    assert_eq!(m["cells"].as_array().unwrap().len(), rows * 5 * 3);
    let cases = mtls_authz(["matrix", EXAMPLE, "--identity", me.to_str().unwrap(), "--format", "cases"]);
    let file = write(&dir, "cases.json", &cases.stdout);
    let run = mtls_authz(["test", EXAMPLE, file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.last_line(), "60 passed, 0 failed");
}

#[test]
fn diff_prints_the_flips_and_exits_1_only_when_there_are_some() {
    let dir = scratch_dir("matrix-diff");
    let old = std::fs::read_to_string(EXAMPLE).unwrap();
    let new = write(&dir, "new.json", old.replace(r#""methods": ["GET", "HEAD"]"#, r#""methods": ["GET"]"#));
    let run = mtls_authz(["diff", EXAMPLE, new.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:#?}");
    let flips: Vec<&str> = run.stdout.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(flips.len(), 2, "{}", run.stdout);
    assert!(flips.iter().all(|l| l.contains("HEAD") && l.ends_with("allow (reports-read-payment) -> deny (default)")), "{flips:?}");
    assert_eq!(run.last_line(), "2 of 48 cells flip");
    // Narrowing the admin deny to POST: GET and HEAD stay denied, by the default now.
    let narrowed = write(
        &dir,
        "narrowed.json",
        old.replace(r#""paths": ["/api/payment/admin/**"]"#, r#""paths": ["/api/payment/admin/**"], "methods": ["POST"]"#),
    );
    let run = mtls_authz(["diff", EXAMPLE, narrowed.to_str().unwrap()]);
    assert_eq!(run.code, 0, "no flip, so no review needed by exit status: {run:#?}");
    assert_eq!(run.last_line(), "0 of 48 cells flip; 8 keep their decision, from another rule");
    assert!(
        run.stdout.lines().next().unwrap().ends_with("deny (nobody-on-admin) -> deny (default)  (same decision, another rule)"),
        "{}",
        run.stdout
    );
    let same = mtls_authz(["diff", EXAMPLE, EXAMPLE]);
    assert_eq!((same.code, same.last_line()), (0, "0 of 48 cells flip"));
    let bad = write(&dir, "bad.json", "{");
    let run = mtls_authz(["diff", EXAMPLE, bad.to_str().unwrap()]);
    assert_eq!(run.code, 2, "an unreadable policy is unusable input, not a flip: {run:#?}");
    assert!(run.stderr.contains("bad.json:1:1: EOF while parsing"), "{}", run.stderr);
}

#[test]
fn a_bad_endpoint_is_unusable_input() {
    let run = mtls_authz(["matrix", EXAMPLE, "--endpoint", "health"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("must start with '/'"), "{}", run.stderr);
}

#[test]
fn playground_serves_the_page_on_loopback() {
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_mtls-authz")).args(["playground", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\n") && out.read(&mut byte).unwrap() == 1 {
        seen.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&seen).into_owned();
    let addr =
        line.split("http://").nth(1).and_then(|s| s.split('/').next()).unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let get = |path: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    };
    let page = get("/");
    let missing = get("/no-such-file");
    let _ = child.kill();
    let _ = child.wait();
    assert!(page.starts_with("HTTP/1.0 200") || page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("mtls-authz playground"), "{page}");
    assert!(missing.contains(" 404 "), "{missing}");
}
