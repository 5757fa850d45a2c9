//! `mtls-authz check POLICY --envoy-config FILE`: routes that hand the backend
//! a path the policy did not judge are warnings at their line and column
//! (exit 1), and every Envoy configuration this project ships passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{mtls_authz, scratch_dir, write, PAYMENT_POLICY};

/// A bootstrap with one listener whose route_config has `routes` (already indented).
fn bootstrap(routes: &str) -> String {
    format!(
        "static_resources:
  listeners:
  - name: mtls
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config:
            virtual_hosts:
            - name: backends
              domains: [\"*\"]
              routes:
{routes}"
    )
}

const ROUTES: &str = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes";

#[test]
fn a_string_prefix_route_is_a_warning_at_its_match() {
    let dir = scratch_dir("lint-string-prefix");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let routes = "              - match: { prefix: \"/\" }
                route: { cluster: web }
              - match:
                  prefix: \"/api/payment/admin\"
                route: { cluster: admin }
";
    let config = write(&dir, "envoy.yaml", bootstrap(routes));
    let run = mtls_authz(["check".as_ref(), policy.as_os_str(), "--envoy-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 1, "a lint warning fails the check: {run:#?}");
    assert_eq!(run.stdout, format!("{}: ok (3 rules)\n", policy.display()), "no ok line for the config: {run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "only the string prefix, not the catch-all '/': {run:#?}");
    let want = format!("{}:17:19: {ROUTES}[1].match.prefix: warning: prefix \"/api/payment/admin\" is a string prefix: ", config.display());
    assert!(lines[0].starts_with(&want), "wrong position or path:\n{}\nwanted:\n{want}", lines[0]);
    for needle in [
        "this route also takes \"/api/payment/adminusers\", whose last segment the policy reads as \"adminusers\", not \"admin\"",
        &format!("policy patterns it cuts: \"/api/payment/admin/**\" ({}, rule \"nobody-on-admin\")", policy.display()),
        "match whole segments with path_separated_prefix: \"/api/payment/admin\"",
    ] {
        assert!(lines[0].contains(needle), "lacks {needle:?}:\n{}", lines[0]);
    }
}

#[test]
fn a_prefix_rewrite_on_a_string_prefix_shows_the_bypass() {
    let dir = scratch_dir("lint-rewrite");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let routes = "              - match: { prefix: \"/api/payment/admin\" }
                route: { cluster: admin, prefix_rewrite: \"/\" }
";
    let config = write(&dir, "envoy.yaml", bootstrap(routes));
    let run = mtls_authz(["check".as_ref(), policy.as_os_str(), "--envoy-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 1, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "the string prefix, then the rewrite: {run:#?}");
    let want = format!("{}:15:42: {ROUTES}[0].route.prefix_rewrite: warning: ", config.display());
    assert!(lines[1].starts_with(&want), "wrong position or path:\n{}\nwanted:\n{want}", lines[1]);
    for needle in [
        "rewrites the path after the filter judged it, and the match is the string prefix \"/api/payment/admin\"",
        "the policy judges \"/api/payment/adminusers\" and this route's backend receives \"/users\"",
        "use two routes, prefix: \"/api/payment/admin/\" and path: \"/api/payment/admin\", each with prefix_rewrite: \"/\"",
    ] {
        assert!(lines[1].contains(needle), "lacks {needle:?}:\n{}", lines[1]);
    }
}

#[test]
fn a_segment_wise_rewrite_is_a_note_and_passes() {
    let dir = scratch_dir("lint-note");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let routes = "              - match: { path_separated_prefix: \"/api/payment/query\" }
                route: { cluster: reports, prefix_rewrite: \"/query\" }
              - match: { prefix: \"/\" }
                route: { cluster: web }
";
    let config = write(&dir, "envoy.yaml", bootstrap(routes));
    let run = mtls_authz(["check".as_ref(), policy.as_os_str(), "--envoy-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 0, "a note does not fail the check: {run:#?}");
    assert!(run.stdout.ends_with(&format!("{}: ok (2 routes, 1 note)\n", config.display())), "{run:#?}");
    let note = run.stderr.trim_end();
    assert!(note.starts_with(&format!("{}:15:44: {ROUTES}[0].route.prefix_rewrite: note: ", config.display())), "{run:#?}");
    assert!(note.contains("judged \"/api/payment/query/x\" as sent; this route's backend receives \"/query/x\""), "{note}");
}

#[test]
fn an_unreadable_or_unparsable_config_is_exit_2_and_the_rest_are_still_checked() {
    let dir = scratch_dir("lint-bad-input");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let missing = dir.join("missing.yaml");
    let broken = write(&dir, "broken.yaml", "static_resources:\n  listeners: [ { name: a\n");
    let good = write(&dir, "good.yaml", bootstrap("              - match: { prefix: \"/\" }\n                route: { cluster: web }\n"));
    let run = mtls_authz([
        "check".as_ref(),
        policy.as_os_str(),
        "--envoy-config".as_ref(),
        missing.as_os_str(),
        "--envoy-config".as_ref(),
        broken.as_os_str(),
        "--envoy-config".as_ref(),
        good.as_os_str(),
    ]);
    assert_eq!(run.code, 2, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:#?}");
    assert_eq!(lines[0], format!("mtls-authz: cannot read Envoy config '{}': no such file", missing.display()));
    assert!(lines[1].starts_with(&format!("{}:3:1: not a YAML or JSON Envoy config: ", broken.display())), "{run:#?}");
    assert!(run.stdout.ends_with(&format!("{}: ok (1 route)\n", good.display())), "{run:#?}");
}

#[test]
fn a_config_without_inline_routes_says_it_checked_none() {
    let dir = scratch_dir("lint-rds");
    let policy = write(&dir, "policy.json", PAYMENT_POLICY);
    let config = write(
        &dir,
        "rds.json",
        r#"{"static_resources": {"listeners": [{"filter_chains": [{"filters": [{"typed_config": {"rds": {"route_config_name": "r"}}}]}]}]}}"#,
    );
    let run = mtls_authz(["check".as_ref(), policy.as_os_str(), "--envoy-config".as_ref(), config.as_os_str()]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.ends_with(&format!("{}: ok (0 routes)\n", config.display())), "{run:#?}");
    assert!(run.stderr.contains("note: no inline route_config found; routes from RDS"), "{run:#?}");
}

#[test]
fn the_help_says_warnings_fail_the_check() {
    let run = mtls_authz(["check", "--help"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("--envoy-config <FILE>"), "{}", run.stdout);
    assert!(run.stdout.contains("1 some policy invalid or some Envoy warning"), "{}", run.stdout);
}

// --------------------------------------------------------------------------- what the project ships

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Envoy configurations committed as they are loaded (rendered by envoy/render.py).
const SHIPPED: [&str; 4] =
    ["envoy/envoy.yaml", "envoy/envoy-ecds.yaml", "deploy/xds/envoy-ecds-grpc.yaml", "examples/b2b-gateway/envoy.yaml"];

/// Templates (string.Template `${name}`, `#@` note lines) that render to Envoy configurations.
const TEMPLATES: [&str; 4] =
    ["envoy/envoy.template.yaml", "bench/templates/server.yaml", "bench/templates/client.yaml", "examples/etcd/envoy.template.yaml"];

/// Template parts that hold routes but are not whole configurations: their wholes are in TEMPLATES.
const TEMPLATE_PARTS: [&str; 1] = ["bench/templates/client-listener.yaml"];

/// A template filled as its renderer would, with stand-in values: the routes are
/// what the lint reads, and no placeholder sits in a route. `${http_filters}`
/// (bench/run.py's filter list) is left empty; `${listeners}` and `${clusters}`
/// are bench/run.py's part templates, filled the same way.
fn fill(template: &Path) -> String {
    let text = std::fs::read_to_string(template).unwrap();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with("#@")) {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let end =
                rest[start..].find('}').map(|e| start + e).unwrap_or_else(|| panic!("{}: unclosed ${{ in {line:?}", template.display()));
            out.push_str(&rest[..start]);
            let parts = template.parent().unwrap();
            match &rest[start + 2..end] {
                "http_filters" => {}
                "listeners" => out.push_str(fill(&parts.join("client-listener.yaml")).trim_end()),
                "clusters" => out.push_str(fill(&parts.join("client-cluster.yaml")).trim_end()),
                _ => out.push('x'),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// envoy/policy.json and every example's policy: the policies the shipped configurations carry.
fn example_policies() -> Vec<PathBuf> {
    let mut policies = vec![repo().join("envoy/policy.json")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path().join("policy.json"))
        .filter(|p| p.is_file())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "examples/*/policy.json not found: {examples:?}");
    policies.extend(examples);
    policies
}

#[test]
fn every_shipped_envoy_config_passes_the_lint_with_the_example_policies() {
    let dir = scratch_dir("lint-shipped");
    let mut configs: Vec<PathBuf> = SHIPPED.iter().map(|f| repo().join(f)).collect();
    for template in TEMPLATES {
        configs.push(write(&dir, &template.replace('/', "__"), fill(&repo().join(template))));
    }
    let mut args: Vec<std::ffi::OsString> = vec!["check".into()];
    args.extend(example_policies().into_iter().map(Into::into));
    for config in &configs {
        args.push("--envoy-config".into());
        args.push(config.into());
    }
    let run = mtls_authz(&args);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stderr, "", "no warning and no note: {run:#?}");
    for config in &configs {
        let line = format!("{}: ok (", config.display());
        assert!(
            run.stdout.lines().any(|l| l.starts_with(&line) && !l.contains("(0 routes")),
            "{} has no routes checked: {run:#?}",
            config.display()
        );
    }
}

/// Every file under the folders that hold Envoy configurations, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !matches!(path.file_name().and_then(|n| n.to_str()), Some("target" | "node_modules" | ".work")) {
                files_under(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_envoy_config_with_routes_escapes_the_shipped_list() {
    let mut files = Vec::new();
    for dir in ["envoy", "deploy", "examples", "bench", "scripts", "policy-tests/e2e"] {
        files_under(&repo().join(dir), &mut files);
    }
    let known: Vec<PathBuf> = SHIPPED.iter().chain(&TEMPLATES).chain(&TEMPLATE_PARTS).map(|f| repo().join(f)).collect();
    for file in files {
        let is_config = matches!(file.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        if is_config && (text.contains("virtual_hosts") || text.contains("virtualHosts")) {
            assert!(known.contains(&file), "{} configures Envoy routes: add it to SHIPPED or TEMPLATES in {}", file.display(), file!());
        }
    }
}
