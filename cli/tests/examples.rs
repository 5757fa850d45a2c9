//! Every example under `examples/` must pass its own test cases, so the
//! examples people copy from are known to do what their READMEs say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::mtls_authz;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("examples")
}

/// Every `examples/*/` folder that holds a policy.
fn example_folders() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(examples_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("policy.json").is_file()).collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_passes_its_cases() {
    let folders = example_folders();
    assert!(folders.len() >= 5, "expected the five deployment stories, found {folders:?}");
    for dir in folders {
        let (policy, cases) = (dir.join("policy.json"), dir.join("cases.json"));
        assert!(cases.is_file(), "{} has a policy but no cases.json", dir.display());
        assert!(dir.join("README.md").is_file(), "{} has no README.md", dir.display());

        let check = mtls_authz(["check".as_ref(), policy.as_os_str()]);
        assert_eq!(check.code, 0, "{}: {check:#?}", dir.display());

        let run = mtls_authz(["test".as_ref(), policy.as_os_str(), cases.as_os_str()]);
        assert_eq!(run.code, 0, "{}: {run:#?}", dir.display());
        assert!(run.last_line().ends_with(" passed, 0 failed"), "{}: {run:#?}", dir.display());
    }
}

#[test]
fn every_example_tests_the_ways_in_that_must_stay_shut() {
    for dir in example_folders() {
        let text = std::fs::read_to_string(dir.join("cases.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        let has = |pred: &dyn Fn(&serde_json::Value) -> bool| cases.iter().any(pred);
        let name = dir.display();
        assert!(has(&|c| c["no_cert"] == true && c["expect"] == "deny"), "{name}: no 'no certificate' case");
        // A policy for an L4 listener only (every case a connection) has no paths to get wrong.
        let requests = has(&|c| c["connection"] != true);
        assert!(
            !requests
                || has(&|c| c["expect"] == "deny"
                    && c["path"].as_str().is_some_and(|p| p.contains("..") || p.to_ascii_lowercase().contains("%2f"))),
            "{name}: no non-canonical path case"
        );
        assert!(has(&|c| c["expect"] == "allow"), "{name}: nothing is ever allowed?");
        assert!(has(&|c| c["expect"] == "deny" && c.get("reason").is_some()), "{name}: denials should state the expected reason");
    }
}

#[test]
fn no_private_keys_are_committed_in_examples() {
    fn walk(dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                assert!(!text.contains("PRIVATE KEY-----"), "{} contains a private key", path.display());
            }
        }
    }
    walk(&examples_dir());
}
