#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; a panic here is a failed test
//! The shipped JSON Schema (for editors) and the validator (the authority)
//! must agree: every valid example passes both, and every structural mistake
//! an editor can catch is refused by both.

use mtls_authz_policy::{Policy, PrincipalFormat};
use std::path::{Path, PathBuf};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn schema_accepts(v: &jsonschema::Validator, src: &str) -> bool {
    v.is_valid(&serde_json::from_str::<serde_json::Value>(src).unwrap())
}

/// Every policy document shipped in the repository.
fn shipped_policies() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut out = vec![];
    for dir in [root.join("examples"), root.join("envoy")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                let policy = p.join("policy.json");
                if policy.exists() {
                    out.push(policy);
                }
            } else if p.file_name().is_some_and(|n| n == "policy.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn schema_and_validator_accept_every_shipped_policy() {
    let v = schema();
    let shipped = shipped_policies();
    // envoy/policy.json is the README's example policy (the same document).
    assert!(shipped.iter().any(|p| p.ends_with("envoy/policy.json")), "{shipped:?}");
    let examples = shipped.iter().filter(|p| p.parent().and_then(Path::parent).is_some_and(|d| d.ends_with("examples")));
    assert!(examples.count() >= 5, "every examples/*/policy.json is checked: {shipped:?}");
    for path in &shipped {
        let src = std::fs::read_to_string(path).unwrap();
        assert!(schema_accepts(&v, &src), "schema refuses {}", path.display());
        if let Err(e) = Policy::from_json(&src) {
            panic!("validator refuses {}: {e}", path.display());
        }
    }
}

#[test]
fn schema_and_validator_refuse_the_same_structural_mistakes() {
    let v = schema();
    let rule = |body: &str| format!(r#"{{"version": 1, "default_action": "deny", "rules": [{body}]}}"#);
    let ok_rule = r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a"]}"#;
    let cases = [
        ("missing default_action", r#"{"version": 1, "rules": []}"#.to_owned()),
        ("missing rules", r#"{"version": 1, "default_action": "deny"}"#.to_owned()),
        ("wrong version", r#"{"version": 2, "default_action": "deny", "rules": []}"#.to_owned()),
        ("bad default", r#"{"version": 1, "default_action": "permit", "rules": []}"#.to_owned()),
        ("bad mode", r#"{"version": 1, "default_action": "deny", "mode": "audit", "rules": []}"#.to_owned()),
        ("unknown top field", r#"{"version": 1, "default_action": "deny", "rules": [], "extra": 1}"#.to_owned()),
        (
            "unknown rule field",
            rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a"], "method": ["GET"]}"#),
        ),
        ("empty principals", rule(r#"{"name": "r", "action": "allow", "principals": [], "paths": ["/a"]}"#)),
        ("empty paths", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": []}"#)),
        ("empty principal", rule(r#"{"name": "r", "action": "allow", "principals": [{}], "paths": ["/a"]}"#)),
        ("any false", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": false}], "paths": ["/a"]}"#)),
        ("any with cn", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true, "cn": "x"}], "paths": ["/a"]}"#)),
        ("unknown principal field", rule(r#"{"name": "r", "action": "allow", "principals": [{"common_name": "x"}], "paths": ["/a"]}"#)),
        ("cn not a string", rule(r#"{"name": "r", "action": "allow", "principals": [{"cn": 1}], "paths": ["/a"]}"#)),
        ("empty cn", rule(r#"{"name": "r", "action": "allow", "principals": [{"cn": ""}], "paths": ["/a"]}"#)),
        (
            "uri_san wildcard with a fragment",
            rule(r#"{"name": "r", "action": "allow", "principals": [{"uri_san": "spiffe://t/ns/*/sa/x#y"}], "paths": ["/a"]}"#),
        ),
        ("double star value", rule(r#"{"name": "r", "action": "allow", "principals": [{"dns_san": "**.x"}], "paths": ["/a"]}"#)),
        ("relative path", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["a"]}"#)),
        ("empty segment", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a//b"]}"#)),
        ("trailing slash", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a/"]}"#)),
        ("** in the middle", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a/**/b"]}"#)),
        ("partial star", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a/b*"]}"#)),
        ("unknown placeholder", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a/{ou}"]}"#)),
        ("dot segment", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a/../b"]}"#)),
        ("encoded pattern", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a%2fb"]}"#)),
        (
            "lower-case method",
            rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a"], "methods": ["get"]}"#),
        ),
        ("empty methods", rule(r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a"], "methods": []}"#)),
        ("bad rule name", rule(r#"{"name": "has space", "action": "allow", "principals": [{"any": true}], "paths": ["/a"]}"#)),
        ("bad serial", rule(r#"{"name": "r", "action": "allow", "principals": [{"serial": "xyz"}], "paths": ["/a"]}"#)),
        ("bad sha256", rule(r#"{"name": "r", "action": "allow", "principals": [{"sha256": "abc"}], "paths": ["/a"]}"#)),
        (
            "head_with_get on an allow rule",
            rule(
                r#"{"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/a"], "methods": ["GET"], "head_with_get": true}"#,
            ),
        ),
        (
            "head_with_get without methods",
            rule(r#"{"name": "r", "action": "deny", "principals": [{"any": true}], "paths": ["/a"], "head_with_get": false}"#),
        ),
        (
            "head_with_get without GET",
            rule(
                r#"{"name": "r", "action": "deny", "principals": [{"any": true}], "paths": ["/a"], "methods": ["POST"], "head_with_get": false}"#,
            ),
        ),
        (
            "head_with_get with HEAD listed",
            rule(
                r#"{"name": "r", "action": "deny", "principals": [{"any": true}], "paths": ["/a"], "methods": ["GET", "HEAD"], "head_with_get": false}"#,
            ),
        ),
        (
            "head_with_get not a boolean",
            rule(
                r#"{"name": "r", "action": "deny", "principals": [{"any": true}], "paths": ["/a"], "methods": ["GET"], "head_with_get": "no"}"#,
            ),
        ),
        ("bad revision", r#"{"version": 1, "default_action": "deny", "revision": "", "rules": []}"#.to_owned()),
        ("details not bool", r#"{"version": 1, "default_action": "deny", "deny_response": {"details": "no"}, "rules": []}"#.to_owned()),
        (
            "upstream header not bool",
            r#"{"version": 1, "default_action": "deny", "upstream_headers": {"rule": 0}, "rules": []}"#.to_owned(),
        ),
        ("bad method_overrides", r#"{"version": 1, "default_action": "deny", "method_overrides": "honour", "rules": []}"#.to_owned()),
        ("zero body_inspection_limit", r#"{"version": 1, "default_action": "deny", "body_inspection_limit": 0, "rules": []}"#.to_owned()),
        (
            "huge body_inspection_limit",
            r#"{"version": 1, "default_action": "deny", "body_inspection_limit": 67108865, "rules": []}"#.to_owned(),
        ),
        (
            "fractional body_inspection_limit",
            r#"{"version": 1, "default_action": "deny", "body_inspection_limit": 1.5, "rules": []}"#.to_owned(),
        ),
        (
            "unknown upstream header",
            r#"{"version": 1, "default_action": "deny", "upstream_headers": {"dry_run": false}, "rules": []}"#.to_owned(),
        ),
        (
            "unknown principal format",
            r#"{"version": 1, "default_action": "deny", "upstream_headers": {"principal_format": "bare"}, "rules": []}"#.to_owned(),
        ),
        (
            "principal format not a string",
            r#"{"version": 1, "default_action": "deny", "upstream_headers": {"principal_format": true}, "rules": []}"#.to_owned(),
        ),
    ];
    // Sanity: the base rule is valid for both, so each case fails for its own reason.
    assert!(schema_accepts(&v, &rule(ok_rule)));
    Policy::from_json(&rule(ok_rule)).unwrap();
    for (what, src) in &cases {
        assert!(!schema_accepts(&v, src), "schema accepts {what}: {src}");
        assert!(Policy::from_json(src).is_err(), "validator accepts {what}: {src}");
    }
}

#[test]
fn schema_accepts_every_documented_path_form() {
    let v = schema();
    for path in
        ["/", "/**", "/a", "/a/*", "/a/**", "/a/*/b/**", "/devices/{cn}/telemetry", "/x/{uri_san_last_segment}", "/h/{dns_san}", "/a..b/.c"]
    {
        let src = format!(
            r#"{{"version": 1, "default_action": "deny", "rules": [{{"name": "r", "action": "allow", "principals": [{{"any": true}}], "paths": ["{path}"]}}]}}"#
        );
        assert!(schema_accepts(&v, &src), "schema refuses {path}");
        Policy::from_json(&src).unwrap();
    }
}

#[test]
fn schema_and_validator_accept_every_optional_top_level_field() {
    let v = schema();
    let src = r#"{"$schema": "./policy.schema.json", "version": 1, "default_action": "deny", "mode": "dry_run", "revision": "r1",
        "description": "all optional fields", "deny_response": {"details": false},
        "upstream_headers": {"principal": true, "principal_format": "legacy", "rule": false, "revision": false},
        "method_overrides": "ignore", "body_inspection_limit": 67108864, "rules": []}"#;
    assert!(schema_accepts(&v, src));
    let policy = Policy::from_json(src).unwrap();
    assert!(!policy.upstream_headers.rule && policy.upstream_headers.principal);
    assert_eq!(policy.upstream_headers.principal_format, PrincipalFormat::Legacy);
    assert_eq!(policy.method_overrides, mtls_authz_policy::MethodOverrides::Ignore);
    assert_eq!(policy.body_inspection_limit, 64 << 20);
    for format in ["typed", "legacy"] {
        let src =
            format!(r#"{{"version": 1, "default_action": "deny", "upstream_headers": {{"principal_format": "{format}"}}, "rules": []}}"#);
        assert!(schema_accepts(&v, &src), "schema refuses {format}");
        Policy::from_json(&src).unwrap();
    }
}

#[test]
fn schema_and_validator_accept_an_exact_uri_san_with_a_query() {
    let v = schema();
    let src = r#"{"version": 1, "default_action": "deny", "rules": [{"name": "r", "action": "allow", "principals": [{"uri_san": "urn:example:a?b#c"}], "paths": ["/a"]}]}"#;
    assert!(schema_accepts(&v, src));
    Policy::from_json(src).unwrap();
}

#[test]
fn schema_and_validator_accept_head_with_get_on_a_deny_rule_for_get() {
    let v = schema();
    for value in ["true", "false"] {
        let src = format!(
            r#"{{"version": 1, "default_action": "allow", "rules": [{{"name": "r", "action": "deny", "principals": [{{"any": true}}], "paths": ["/a"], "methods": ["GET", "POST"], "head_with_get": {value}}}]}}"#
        );
        assert!(schema_accepts(&v, &src), "{src}");
        Policy::from_json(&src).unwrap();
    }
}

#[test]
fn the_schema_names_the_same_principal_fields_as_the_engine() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let one_of = schema["$defs"]["principal"]["oneOf"].as_array().unwrap();
    let mut names: Vec<String> = one_of[1]["properties"].as_object().unwrap().keys().cloned().collect();
    names.sort();
    let mut want: Vec<String> = mtls_authz_policy::identity::MATCH_FIELDS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(one_of[0]["properties"].as_object().unwrap().keys().collect::<Vec<_>>(), ["any"]);
}

#[test]
fn schema_and_validator_agree_on_path_reading() {
    let v = schema();
    let with = |reading: &str, path: &str| {
        format!(
            r#"{{"version": 1, "default_action": "deny", "path_reading": {reading},
                "rules": [{{"name": "r", "action": "allow", "principals": [{{"any": true}}], "paths": [{path}]}}]}}"#
        )
    };
    let accepted = [
        with(r#"{"trailing_slash": "distinct"}"#, r#""/admin/login/""#),
        with(r#"{"encoded_delimiters": "decode_once"}"#, r#""/wiki/C#_(language)""#),
        with(r#"{"encoded_delimiters": "decode_once"}"#, r#""/wiki/100%_(album)""#),
        with(r#"{"trailing_slash": "same_as_without", "path_parameters": "strip", "encoded_slash": "in_segment"}"#, r#""/a""#),
        with(r#"{"case": "insensitive", "platform": "posix", "unicode": "as_sent"}"#, r#""/a""#),
        with(r#"{"platform": "windows", "unicode": "nfkc", "suffix_patterns": true, "trim_whitespace": true}"#, r#""/a""#),
    ];
    for src in &accepted {
        assert!(schema_accepts(&v, src), "schema refuses {src}");
        assert!(Policy::from_json(src).is_ok(), "validator refuses {src}: {:?}", Policy::from_json(src).err());
    }
    let refused = [
        with(r#"{"trailing_slash": "same_as_without"}"#, r#""/admin/login/""#),
        with("{}", r#""/wiki/C#""#),
        with(r#"{"trailing_slash": "distinct"}"#, r#""/wiki/100%""#),
        with(r#"{"trailing_slash": "sometimes"}"#, r#""/a""#),
        with(r#"{"case": "upper"}"#, r#""/a""#),
        with(r#"{"suffix_patterns": "yes"}"#, r#""/a""#),
        with(r#"{"unknown": 1}"#, r#""/a""#),
        with(r#""strict""#, r#""/a""#),
    ];
    for src in &refused {
        assert!(!schema_accepts(&v, src), "schema accepts {src}");
        assert!(Policy::from_json(src).is_err(), "validator accepts {src}");
    }
}

#[test]
fn schema_and_validator_agree_on_connection_rules() {
    let v = schema();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mqtt = std::fs::read_to_string(root.join("examples/mqtt/policy.json")).unwrap();
    assert!(schema_accepts(&v, &mqtt) && Policy::from_json(&mqtt).is_ok(), "the L4 example, without any HTTP field");
    let with = |rule: &str| format!(r#"{{"version": 1, "default_action": "deny", "connection_rules": [{rule}]}}"#);
    for bad in [
        with(r#"{"name": "c", "action": "allow", "principals": [{"cn": "x"}], "paths": ["/"]}"#),
        with(r#"{"name": "c", "action": "allow", "principals": [{"cn": "x"}], "methods": ["GET"]}"#),
        with(r#"{"name": "c", "action": "allow"}"#),
        r#"{"version": 1, "default_action": "deny"}"#.to_owned(),
    ] {
        assert!(!schema_accepts(&v, &bad), "schema accepts {bad}");
        assert!(Policy::from_json(&bad).is_err(), "validator accepts {bad}");
    }
}

#[test]
fn schema_and_validator_agree_on_the_gateway_sections() {
    let v = schema();
    let with = |extra: &str| {
        format!(
            r#"{{"version": 1, "default_action": "deny", {extra} "rules": [{{"name": "orders", "action": "allow", "principals": [{{"o": "Globex"}}], "paths": ["/orders"]}}]}}"#
        )
    };
    let good = with(
        r#""metrics": {"per_rule": true, "per_identity": {"field": "o", "max_identities": 50}},
        "limits": [{"name": "globex-quota", "description": "d", "rules": ["orders"], "key": ["o", "rule"], "rate": {"requests": 5, "per": "second"}, "burst": 10, "dry_run": false, "max_keys": 100}],
        "audit_log": {"events": "all"}, "filter_state": ["principal", "rule"],"#,
    );
    assert!(schema_accepts(&v, &good));
    Policy::from_json(&good).unwrap();
    for (what, extra) in [
        ("unknown metrics field", r#""metrics": {"per_path": true},"#),
        ("per_identity without field", r#""metrics": {"per_identity": {}},"#),
        ("unknown identity field", r#""metrics": {"per_identity": {"field": "serial"}},"#),
        ("cap of zero", r#""metrics": {"per_identity": {"field": "o", "max_identities": 0}},"#),
        (
            "limit without burst",
            r#""limits": [{"name": "q", "rules": ["orders"], "key": ["o"], "rate": {"requests": 1, "per": "second"}}],"#,
        ),
        (
            "bad period",
            r#""limits": [{"name": "q", "rules": ["orders"], "key": ["o"], "rate": {"requests": 1, "per": "day"}, "burst": 1}],"#,
        ),
        (
            "bad limit name",
            r#""limits": [{"name": "a b", "rules": ["orders"], "key": ["o"], "rate": {"requests": 1, "per": "second"}, "burst": 1}],"#,
        ),
        (
            "empty key",
            r#""limits": [{"name": "q", "rules": ["orders"], "key": [], "rate": {"requests": 1, "per": "second"}, "burst": 1}],"#,
        ),
        ("bad audit events", r#""audit_log": {"events": "some"},"#),
        ("unknown filter state", r#""filter_state": ["serial"],"#),
    ] {
        let src = with(extra);
        assert!(!schema_accepts(&v, &src), "schema accepts {what}");
        assert!(Policy::from_json(&src).is_err(), "validator accepts {what}");
    }
}
