//! The examples' cases (`examples/*/cases.json`, the `mtls-authz test`
//! format) through the filter over its mock host. `tests/examples.rs`
//! already runs them through `mtls-authz test`, i.e. the engine; this
//! checks that the filter's request flow enforces the same, with each
//! identity minted as a certificate from its fields.

use serde_json::{json, Value};

use crate::runners::{Filter, Request, Runner};
use crate::table::{mint, repo};

/// The identity fields of a case as a certificate spec for [`mint`], or why
/// no certificate can carry them (a `sha256` is the fingerprint of a
/// certificate this test does not have).
fn spec(identity: &Value) -> Result<Value, &'static str> {
    if identity.get("sha256").is_some() {
        return Err("a sha256 fingerprint");
    }
    let list = |key: &str| -> Vec<String> {
        match identity.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    let mut subject = Vec::new();
    for (attr, key) in [("O", "o"), ("OU", "ou"), ("CN", "cn")] {
        subject.extend(list(key).into_iter().map(|v| json!([attr, v])));
    }
    let mut san: Vec<Value> = list("uri_san").into_iter().map(|v| json!({"uri": v})).collect();
    san.extend(list("dns_san").into_iter().map(|v| json!({"dns": v})));
    let mut spec = json!({"subject": subject, "san": san, "eku": "clientAuth"});
    for key in ["serial", "issuer_cn"] {
        if let Some(v) = identity.get(key) {
            spec[key] = v.clone();
        }
    }
    Ok(spec)
}

#[test]
fn the_filter_enforces_every_example() {
    let mut dirs: Vec<_> =
        std::fs::read_dir(repo().join("examples")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("cases.json").is_file()).collect();
    dirs.sort();
    let (mut run, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    for dir in &dirs {
        let policy = std::fs::read_to_string(dir.join("policy.json")).unwrap();
        let filter = Filter::new(&policy);
        let doc: Value = serde_json::from_str(&policy).unwrap();
        // A dry-run policy lets every deny through; `"details": false` keeps the rule and reason out of the 403 body.
        let dry_run = doc["mode"] == "dry_run";
        let details = doc["deny_response"]["details"] != false;
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
        for case in cases["cases"].as_array().unwrap() {
            let name = format!("{}: {}", dir.file_name().unwrap().to_string_lossy(), case["name"].as_str().unwrap());
            let pem = match case.get("identity").map(spec) {
                Some(Ok(spec)) => Some(mint(&spec)),
                Some(Err(why)) => {
                    skipped.push(format!("{name} ({why})"));
                    continue;
                }
                None => None, // no_cert
            };
            if case["connection"] == true {
                let got = filter.connect(pem.as_deref());
                run += 1;
                let reason = case.get("reason").and_then(Value::as_str).unwrap_or("");
                let ok = got.allowed == (case["expect"] == "allow")
                    && (case.get("rule").is_none() || got.rule.as_deref() == case["rule"].as_str())
                    && got.reason.as_deref().is_some_and(|r| r.contains(reason));
                if !ok {
                    failures.push(format!("{name}: expected {} (rule {:?}), got {got:?}", case["expect"], case.get("rule")));
                }
                continue;
            }
            let headers: Vec<(String, String)> = case
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
                .unwrap_or_default();
            let body = case.get("body").and_then(Value::as_str).map(str::as_bytes);
            let request =
                Request { method: case["method"].as_str().unwrap(), target: case["path"].as_str().unwrap(), headers: &headers, body };
            let got = filter.run(&name, pem.as_deref(), &request);
            run += 1;
            let expect = case["expect"].as_str().unwrap();
            let enforced = case.get("enforced").and_then(Value::as_str).unwrap_or(if dry_run { "allow" } else { expect });
            let rule = case["rule"].as_str();
            let ok = if got.allowed != (enforced == "allow") {
                false
            } else if expect != enforced {
                true // a dry-run deny: its rule and reason go to the log, not to the client
            } else if expect == "allow" {
                got.rule.as_deref() == rule
            } else if !details {
                got.status == Some(403) && got.rule.is_none() && got.reason.is_none()
            } else {
                let reason = case.get("reason").and_then(Value::as_str).unwrap_or("");
                got.rule.as_deref() == rule && got.reason.as_deref().is_some_and(|r| r.contains(reason))
            };
            if !ok {
                failures.push(format!(
                    "{name}: expected {expect} (enforced {enforced}, rule {rule:?}, reason {:?}), got {got:?}",
                    case.get("reason")
                ));
            }
        }
    }
    eprintln!("filter: {run} example cases; skipped {}: {skipped:?}", skipped.len());
    assert!(run >= 80, "only {run} example cases ran");
    assert!(failures.is_empty(), "{} example cases fail through the filter:\n{}", failures.len(), failures.join("\n"));
}
