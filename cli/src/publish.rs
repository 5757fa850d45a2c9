//! `mtls-authz publish`: turn a policy into the file Envoy reloads it from.
//!
//! Envoy cannot read a policy file itself: a Wasm plugin gets its policy as the
//! plugin `configuration`. For live reload the HTTP filter is configured by
//! Extension Config Discovery (ECDS) from a file: Envoy watches a directory
//! and, whenever a file is *moved* into it, re-reads an xDS
//! `DiscoveryResponse` holding the filter's whole configuration (the Wasm
//! module and the policy). This module writes that file:
//!
//! 1. the policy is validated by the engine first; an invalid one is refused
//!    with the very lines `mtls-authz check` prints, and nothing is written;
//! 2. the resource is written to a temporary file in the same directory and
//!    renamed over the old one, so Envoy never reads half a file and the
//!    rename is the single event that triggers the reload.
//!
//! Envoy validates again (the filter's `on_configure` refuses a bad policy and
//! Envoy keeps the previous one), so a resource written by hand or by another
//! tool cannot break a running proxy either: keep-last-good at both layers.
//!
//! The policy text is embedded byte for byte, so `LINE:COL` in the filter's
//! log points into the policy file. `version_info` carries the policy's
//! `revision` and a SHA-256 prefix of the file: Envoy shows it as the
//! `extension_config_discovery.http_filter.<name>.version_text` stat.
//!
//! The extension of `--out` picks the file's format, as it does for Envoy
//! (`.yaml`/`.yml` are read as YAML, `.pb` as binary protobuf, anything else
//! as JSON): `.yaml`/`.yml` write YAML, `.json` JSON, `.pb` binary protobuf
//! ([`crate::resource_pb`]); any other name is refused rather than written in
//! a format Envoy would misread. All hold the same resource. They differ in
//! how long Envoy takes to read a large one: YAML goes through yaml-cpp, a
//! `google.protobuf.Value` tree and a JSON string before the JSON parse that
//! is all JSON needs, and binary protobuf needs no parse of text at all. At
//! 10,000 rules (a 5.3 MB YAML file, 3.8 MB as JSON or protobuf), medians
//! from the rename to the first VM loading the policy, without requests:
//! YAML ~600 ms, JSON ~250, protobuf ~60 (bench/reload.py's
//! `--resource-format` measures it under load). YAML stays the name in the
//! docs and the compose set-up: it carries a comment and reads better, and at
//! a few hundred rules the difference is a few milliseconds.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use mtls_authz_policy::Mode;
use mtls_authz_policy::{hex, load};

use crate::console::Console;
use crate::input::{read_bytes, InputError};
use crate::resource_pb;
use crate::Exit;

/// The resource name (and the HTTP filter name in the Envoy bootstrap) by default.
pub const DEFAULT_NAME: &str = "mtls_authz";
/// Where the filter's `.wasm` is by default: the path in the docker compose setup.
pub const DEFAULT_WASM: &str = "/etc/envoy/mtls_authz_filter.wasm";
/// Hex digits of the policy's SHA-256 shown in `version_info` and messages.
const DIGEST_SHOWN: usize = 16;

// What every resource holds, whichever format writes it (YAML, JSON, protobuf).
/// The plugin's `root_id` (the HTTP filter's; L4 mode is `mtls_authz_l4`).
pub const ROOT_ID: &str = "mtls_authz";
/// The VM's `vm_id`: the same in every update, so Envoy keeps the running VMs.
pub const VM_ID: &str = "mtls_authz";
pub const RUNTIME: &str = "envoy.wasm.runtime.v8";
pub const TYPED_EXTENSION_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
pub const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// Where and how to publish; shared by `publish` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The resource file Envoy watches (its `path_config_source.path`). Its
    /// directory must exist; it is replaced atomically (temp file + rename).
    /// The extension picks the format: .yaml or .yml for YAML, .json for JSON,
    /// .pb for binary protobuf (the fastest for Envoy to read at thousands of rules).
    #[arg(long, value_name = "DIR/mtls_authz.yaml")]
    pub out: PathBuf,
    /// The filter's .wasm file, as Envoy sees the path.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_WASM)]
    pub wasm: String,
    /// The ECDS resource name: the `name` of the HTTP filter with `config_discovery` in the bootstrap.
    #[arg(long, default_value = DEFAULT_NAME, value_parser = parse_name)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The policy to publish.
    #[arg(value_name = "POLICY.json")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub target: Target,
}

fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err("use 1-128 characters from A-Z a-z 0-9 _ . -".into())
    }
}

/// The format of the resource file, from the extension of `--out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Protobuf,
}

impl Format {
    /// `.yaml`/`.yml` YAML, `.json` JSON, `.pb` binary protobuf (any case, as
    /// Envoy compares them); anything else is refused: Envoy would read it as
    /// JSON, so the name alone must say what the file is.
    pub fn of(out: &Path) -> Result<Format, InputError> {
        let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("json") => Ok(Format::Json),
            Some("pb") => Ok(Format::Protobuf),
            _ => Err(InputError(format!(
                "--out '{}': the resource file's name must end in .yaml, .yml, .json or .pb (Envoy reads it by its extension)",
                out.display()
            ))),
        }
    }
}

/// A policy that compiled, ready to be written out.
pub struct Validated {
    pub rules: usize,
    pub mode: Mode,
    pub revision: Option<String>,
    /// Lower-case hex SHA-256 of the policy file's bytes.
    pub sha256: String,
    pub text: String,
}

impl Validated {
    /// `3 rules, mode=enforce, revision=r7, sha256=0123456789abcdef`
    pub fn summary(&self) -> String {
        let mode = match self.mode {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry_run",
        };
        format!(
            "{} rule{}, mode={mode}, revision={}, sha256={}",
            self.rules,
            if self.rules == 1 { "" } else { "s" },
            self.revision.as_deref().unwrap_or("-"),
            self.sha256.get(..DIGEST_SHOWN).unwrap_or(&self.sha256)
        )
    }

    /// The ECDS `version_info`: what Envoy reports as the active version.
    pub fn version_info(&self) -> String {
        format!("revision={} sha256={}", self.revision.as_deref().unwrap_or("-"), self.sha256.get(..DIGEST_SHOWN).unwrap_or(&self.sha256))
    }
}

/// Validate policy bytes with the engine. `Err` holds the lines `check` would
/// print for this file (`FILE:LINE:COL: JSONPATH: message`).
pub fn validate(origin: &str, bytes: &[u8]) -> Result<Validated, String> {
    let policy = load::load(origin, bytes).map_err(|e| e.to_string())?;
    let text = load::text(origin, bytes).map_err(|e| e.to_string())?;
    Ok(Validated {
        rules: policy.policy().rules.len(),
        mode: policy.mode(),
        revision: policy.revision().map(str::to_string),
        sha256: hex::sha256(bytes),
        text: text.to_string(),
    })
}

/// The resource file: an xDS `DiscoveryResponse` with one
/// `TypedExtensionConfig` holding the Wasm filter configuration and the policy.
pub fn render_resource(policy: &Validated, origin: &str, target: &Target, format: Format) -> Vec<u8> {
    match format {
        Format::Yaml => render_yaml(policy, origin, target).into_bytes(),
        Format::Json => render_json(policy, target).into_bytes(),
        Format::Protobuf => resource_pb::render(policy, target),
    }
}

/// The resource as YAML, with a comment saying where it comes from.
pub fn render_yaml(policy: &Validated, origin: &str, target: &Target) -> String {
    let mut y = String::new();
    let mut line = |s: &str| {
        y.push_str(s);
        y.push('\n');
    };
    line(&format!("# Written by `mtls-authz publish` from {}.", comment_text(origin)));
    line("# Do not edit: edit the policy and publish again. Envoy re-reads this file");
    line("# (ECDS, path_config_source + watched_directory) when it is replaced by a");
    line("# rename, and keeps its previous policy if the filter refuses the new one.");
    line(&format!("version_info: {}", yaml_quote(&policy.version_info())));
    line("resources:");
    line(&format!("- \"@type\": {TYPED_EXTENSION_CONFIG_TYPE}"));
    line(&format!("  name: {}", target.name));
    line("  typed_config:");
    line(&format!("    \"@type\": {WASM_TYPE}"));
    line("    config:");
    line(&format!("      name: {}", target.name));
    line(&format!("      root_id: {ROOT_ID}"));
    line("      vm_config:");
    line("        # The same vm_id and code in every update: Envoy keeps the running");
    line("        # VMs and only hands them the new configuration (on_configure).");
    line(&format!("        vm_id: {VM_ID}"));
    line(&format!("        runtime: {RUNTIME}"));
    line("        code:");
    line("          local:");
    line(&format!("            filename: {}", yaml_quote(&target.wasm)));
    line("      # If the VM fails, requests get 503: never a free pass.");
    line("      failure_policy: FAIL_CLOSED");
    line("      # The policy, verbatim: LINE:COL in the filter's errors point into the policy file.");
    line("      configuration:");
    line(&format!("        \"@type\": {STRING_VALUE_TYPE}"));
    line(&format!("        value: {}", embed_text(&policy.text, 8)));
    y
}

/// The resource as JSON: the same fields as [`render_yaml`], without its
/// comments (JSON has none; a made-up field would be an unknown field to
/// Envoy). The policy is
/// embedded verbatim as one JSON string, not minified: minifying would cut
/// the file further (3.8 to 2.7 MB at 10,000 rules) but `LINE:COL` in the
/// filter's errors would no longer point into the policy file.
pub fn render_json(policy: &Validated, target: &Target) -> String {
    // serde_json's maps keep keys sorted, so each "@type" comes first in its
    // object, where protobuf's JSON parser reads an Any fastest.
    let resource = serde_json::json!({
        "version_info": policy.version_info(),
        "resources": [{
            "@type": TYPED_EXTENSION_CONFIG_TYPE,
            "name": target.name,
            "typed_config": {
                "@type": WASM_TYPE,
                "config": {
                    "name": target.name,
                    "root_id": ROOT_ID,
                    "vm_config": {
                        "vm_id": VM_ID,
                        "runtime": RUNTIME,
                        "code": { "local": { "filename": target.wasm } },
                    },
                    "failure_policy": "FAIL_CLOSED",
                    "configuration": {
                        "@type": STRING_VALUE_TYPE,
                        "value": policy.text,
                    },
                },
            },
        }],
    });
    format!("{resource:#}\n")
}

/// A file name for a YAML comment: one line, no control characters.
fn comment_text(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Characters YAML (1.1, as Envoy's yaml-cpp reads it) allows unescaped,
/// less the ones that are easy to mangle: NEL, LS and PS (YAML 1.1 line
/// breaks) and the BOM.
fn yaml_printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A YAML double-quoted scalar for any string.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if yaml_printable(c) => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Can `text` be a YAML literal block scalar that reads back byte for byte?
fn block_literal_ok(text: &str) -> bool {
    if text.trim().is_empty() || text.contains('\r') || text.contains('\t') {
        return false;
    }
    let mut body: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        body.pop();
    }
    while body.last() == Some(&"") {
        body.pop();
    }
    // Leading spaces on the first line would change the detected indentation;
    // blank or whitespace-only lines inside could lose spaces. Quote those.
    match body.first() {
        None => return false,
        Some(first) if first.starts_with(' ') => return false,
        Some(_) => {}
    }
    body.iter().all(|l| !l.trim().is_empty() && l.chars().all(yaml_printable))
}

/// The YAML for `key: <here>` holding `text`, for a key indented by `indent`:
/// a literal block (readable, line numbers kept) where that is exact, else a
/// double-quoted scalar.
pub fn embed_text(text: &str, indent: usize) -> String {
    if !block_literal_ok(text) {
        return yaml_quote(text);
    }
    let stripped = text.trim_end_matches('\n');
    let trailing = text.len() - stripped.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent + 2);
    let mut out = format!("|{chomp}");
    for l in stripped.split('\n') {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(l);
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

/// What happened to the resource file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Replaced (or created) by a rename.
    Replaced,
    /// It already had exactly this content: left alone, so Envoy does not reload.
    Unchanged,
}

/// Replace `out` with `contents` atomically: write a temporary file next to
/// it, flush it to disk, rename it over `out`. A reader (Envoy) sees the old
/// file or the new one, never a mix; the rename is what Envoy's directory
/// watch reacts to.
pub fn write_atomically(out: &Path, contents: &[u8]) -> io::Result<Written> {
    if fs::read(out).is_ok_and(|current| current == contents) {
        return Ok(Written::Unchanged);
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    // Hidden, and created (not moved) in the directory: Envoy's watch ignores it.
    let tmp = dir.join(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(contents)?;
        if let Ok(meta) = fs::metadata(out) {
            // Keep whatever access the operator gave the file (Envoy must read it).
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, out)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; not being able to is no reason to fail.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Written::Replaced)
}

/// Check that `out` can be published to: its directory exists and it is not a directory.
pub fn check_target(target: &Target) -> Result<(), InputError> {
    let out = &target.out;
    if out.is_dir() {
        return Err(InputError(format!("--out '{}' is a directory; give the resource file's path", out.display())));
    }
    Format::of(out)?;
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(InputError(format!(
            "the directory of --out '{}' does not exist (it is the directory Envoy watches; create it first)",
            out.display()
        )));
    }
    Ok(())
}

/// The outcome of publishing one policy version.
pub enum Outcome {
    Published(Validated, Written),
    /// The policy is invalid; the lines say why. Nothing was written.
    Refused(String),
}

/// Validate `bytes` (the policy file's content) and, if valid, write the resource.
pub fn publish_bytes(origin: &str, bytes: &[u8], target: &Target) -> Result<Outcome, InputError> {
    let policy = match validate(origin, bytes) {
        Ok(p) => p,
        Err(lines) => return Ok(Outcome::Refused(lines)),
    };
    let format = Format::of(&target.out)?;
    let resource = render_resource(&policy, origin, target, format);
    match write_atomically(&target.out, &resource) {
        Ok(written) => Ok(Outcome::Published(policy, written)),
        Err(e) => Err(InputError(format!("cannot write '{}': {e}", target.out.display()))),
    }
}

/// The line saying what was published.
pub fn published_line(origin: &str, out: &Path, policy: &Validated, written: Written) -> String {
    match written {
        Written::Replaced => format!("published {origin} -> {} ({})", out.display(), policy.summary()),
        Written::Unchanged => format!("unchanged: {} already has {origin} ({})", out.display(), policy.summary()),
    }
}

/// `mtls-authz publish`.
pub fn run(args: &PublishArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    check_target(&args.target)?;
    let origin = args.policy.display().to_string();
    let bytes = read_bytes(&args.policy, "policy")?;
    match publish_bytes(&origin, &bytes, &args.target)? {
        Outcome::Published(policy, written) => {
            console.out(&published_line(&origin, &args.target.out, &policy, written));
            if policy.revision.is_none() {
                console.err(&format!(
                    "mtls-authz: note: {origin} has no \"revision\"; set one to tell policy versions apart in Envoy's log and stats"
                ));
            }
            Ok(Exit::Ok)
        }
        Outcome::Refused(lines) => {
            console.err(&lines);
            console
                .err(&format!("mtls-authz: not published: {origin} is not a valid policy; {} was not changed", args.target.out.display()));
            Ok(Exit::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const POLICY: &str = "{\n  \"version\": 1,\n  \"revision\": \"r7\",\n  \"default_action\": \"deny\",\n  \"rules\": []\n}\n";

    fn target(out: &Path) -> Target {
        Target { out: out.to_path_buf(), wasm: "/w/f.wasm".into(), name: DEFAULT_NAME.into() }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mtls-authz-publish-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_resource_embeds_the_policy_verbatim_as_a_block() {
        let p = validate("p.json", POLICY.as_bytes()).unwrap();
        let y = rendered(&p, "/x/mtls_authz.yaml", Format::Yaml);
        assert!(y.contains("        value: |\n          {\n            \"version\": 1,\n"), "{y}");
        assert!(y.ends_with("          }\n"), "{y}");
        assert!(y.contains("version_info: \"revision=r7 sha256="), "{y}");
        assert!(y.contains("filename: \"/w/f.wasm\""), "{y}");
        assert!(y.contains("  name: mtls_authz\n"), "{y}");
    }

    #[test]
    fn awkward_policies_are_quoted_and_round_trip() {
        // No trailing newline, tabs, CRLF, a leading space: all exact in a quoted scalar.
        for text in ["{\"a\":1}", "{\n\t\"a\": 1\n}\n", "{\r\n}\r\n", " {}\n", "{\n\n}\n", "{\"d\": \"\u{feff}\u{2028}é\"}"] {
            let e = embed_text(text, 8);
            if e.starts_with('"') {
                assert!(!e.contains('\n') && !e.contains('\t') && !e.contains('\r') && !e.contains('\u{feff}'), "{e:?}");
            }
        }
        assert_eq!(embed_text("{\"a\":1}", 2), "|-\n    {\"a\":1}");
        assert_eq!(embed_text("{\n}\n\n", 0), "|+\n  {\n  }\n");
        assert_eq!(embed_text("{\n\t\"a\": 1\n}\n", 0), "\"{\\n\\t\\\"a\\\": 1\\n}\\n\"");
        assert_eq!(yaml_quote("a\u{1}\u{85}\u{2028}\u{1F600}"), "\"a\\u0001\\u0085\\u2028\u{1F600}\"");
    }

    #[test]
    fn an_invalid_policy_gives_the_check_lines_and_writes_nothing() {
        let dir = scratch("invalid");
        let out = dir.join("mtls_authz.yaml");
        fs::write(&out, "old").unwrap();
        let bad = POLICY.replace(
            "\"rules\": []",
            "\"rules\": [{\"name\": \"a\", \"action\": \"allow\", \"principals\": [{\"cn\": \"x\"}], \"paths\": [\"api\"]}]",
        );
        match publish_bytes("p.json", bad.as_bytes(), &target(&out)).unwrap() {
            Outcome::Refused(lines) => assert!(lines.starts_with("p.json:5:") && lines.contains("rules[0].paths[0]: "), "{lines}"),
            Outcome::Published(..) => panic!("published an invalid policy"),
        }
        assert_eq!(fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn publishing_replaces_atomically_and_skips_identical_content() {
        let dir = scratch("replace");
        let out = dir.join("mtls_authz.yaml");
        let t = target(&out);
        let Outcome::Published(_, w) = publish_bytes("p.json", POLICY.as_bytes(), &t).unwrap() else { panic!() };
        assert_eq!(w, Written::Replaced);
        let Outcome::Published(_, w) = publish_bytes("p.json", POLICY.as_bytes(), &t).unwrap() else { panic!() };
        assert_eq!(w, Written::Unchanged);
        let v2 = POLICY.replace("r7", "r8");
        let Outcome::Published(p, w) = publish_bytes("p.json", v2.as_bytes(), &t).unwrap() else { panic!() };
        assert_eq!(w, Written::Replaced);
        assert_eq!(p.revision.as_deref(), Some("r8"));
        assert!(fs::read_to_string(&out).unwrap().contains("\"revision\": \"r8\""));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_missing_directory_is_unusable_input() {
        let t = target(Path::new("/nonexistent/mtls-authz/ecds/mtls_authz.yaml"));
        assert!(check_target(&t).unwrap_err().0.contains("does not exist"));
    }

    /// The YAML resource as a JSON value (every scalar in it is a string).
    fn yaml_as_json(y: &saphyr::Yaml) -> serde_json::Value {
        use saphyr::{Scalar, Yaml};
        use serde_json::Value;
        match y {
            Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
            Yaml::Mapping(m) => Value::Object(m.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), yaml_as_json(v))).collect()),
            Yaml::Sequence(s) => Value::Array(s.iter().map(yaml_as_json).collect()),
            other => panic!("unexpected YAML node {other:?}"),
        }
    }

    fn json_resource(text: &str) -> String {
        let p = Validated { rules: 0, mode: Mode::Enforce, revision: None, sha256: hex::sha256(text.as_bytes()), text: text.into() };
        rendered(&p, "/x/mtls_authz.json", Format::Json)
    }

    /// A text resource as text.
    fn rendered(p: &Validated, out: &str, format: Format) -> String {
        String::from_utf8(render_resource(p, "p.json", &target(Path::new(out)), format)).unwrap()
    }

    #[test]
    fn the_json_resource_holds_what_the_yaml_one_does() {
        use saphyr::LoadableYamlNode;
        let p = validate("p.json", POLICY.as_bytes()).unwrap();
        let y = rendered(&p, "/x/mtls_authz.yaml", Format::Yaml);
        let j = rendered(&p, "/x/mtls_authz.json", Format::Json);
        let from_json: serde_json::Value = serde_json::from_str(&j).unwrap();
        let docs = saphyr::Yaml::load_from_str(&y).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(from_json, yaml_as_json(&docs[0]), "{j}\n{y}");
        let config = &from_json["resources"][0]["typed_config"]["config"];
        assert_eq!(config["configuration"]["value"].as_str(), Some(POLICY));
        assert_eq!(config["vm_config"]["code"]["local"]["filename"], "/w/f.wasm");
        assert_eq!(config["failure_policy"], "FAIL_CLOSED");
        assert_eq!(from_json["version_info"].as_str(), Some(p.version_info().as_str()));
        assert!(j.ends_with("}\n"), "{j}");
    }

    #[test]
    fn json_round_trips_any_policy_text_exactly() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        for text in [
            POLICY,
            "{\"a\":1}",
            "{\r\n\t\"a\": \"\\\"q\\\" \\\\ /\"\r\n}\r\n",
            " {}\n\n\n",
            "{\"d\": \"\u{feff}\u{2028}\u{2029}\u{85}\u{7f}é\u{1F600}\"}",
            &controls,
            "",
        ] {
            let j = json_resource(text);
            let v: serde_json::Value = serde_json::from_str(&j).unwrap();
            assert_eq!(v["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str(), Some(text), "{j}");
            let value_line = j.lines().find(|l| l.trim_start().starts_with("\"value\": ")).unwrap();
            assert!(!value_line.chars().any(|c| (c as u32) < 0x20), "raw control character in {value_line:?}");
        }
    }

    #[test]
    fn the_extension_of_out_picks_the_format() {
        for (name, format) in [
            ("m.yaml", Format::Yaml),
            ("m.yml", Format::Yaml),
            ("d/m.YAML", Format::Yaml),
            ("m.json", Format::Json),
            ("m.Json", Format::Json),
            ("m.pb", Format::Protobuf),
            ("d/m.PB", Format::Protobuf),
        ] {
            assert_eq!(Format::of(Path::new(name)).unwrap(), format, "{name}");
        }
        for name in ["m", "m.txt", "m.pb_text", "m.yaml.tmp", ".json", ".pb", "d.json/m"] {
            let e = Format::of(Path::new(name)).unwrap_err().0;
            assert!(e.contains("must end in .yaml, .yml, .json or .pb"), "{name}: {e}");
        }
        let dir = scratch("format");
        let t = target(&dir.join("mtls_authz.txt"));
        assert!(check_target(&t).unwrap_err().0.contains(".yaml, .yml, .json or .pb"));
        assert!(publish_bytes("p.json", POLICY.as_bytes(), &t).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing written");
    }

    #[test]
    fn publishing_to_a_json_name_writes_json() {
        let dir = scratch("json");
        let out = dir.join("mtls_authz.json");
        let Outcome::Published(p, w) = publish_bytes("p.json", POLICY.as_bytes(), &target(&out)).unwrap() else { panic!() };
        assert_eq!(w, Written::Replaced);
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["version_info"].as_str(), Some(p.version_info().as_str()));
        assert_eq!(v["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str(), Some(POLICY));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn the_protobuf_resource_holds_what_the_json_one_does() {
        use prost::Message;
        use resource_pb::{DiscoveryResponse, StringValue, TypedExtensionConfig, Wasm};
        let p = validate("p.json", POLICY.as_bytes()).unwrap();
        let j: serde_json::Value = serde_json::from_str(&rendered(&p, "/x/mtls_authz.json", Format::Json)).unwrap();
        let pb = render_resource(&p, "p.json", &target(Path::new("/x/mtls_authz.pb")), Format::Protobuf);
        let response = DiscoveryResponse::decode(pb.as_slice()).unwrap();
        assert_eq!(response.version_info, j["version_info"].as_str().unwrap());
        let [resource] = response.resources.as_slice() else { panic!("{response:?}") };
        let j = &j["resources"][0];
        assert_eq!(resource.type_url, j["@type"].as_str().unwrap());
        let extension = TypedExtensionConfig::decode(resource.value.as_slice()).unwrap();
        assert_eq!(extension.name, j["name"].as_str().unwrap());
        let typed = extension.typed_config.unwrap();
        let j = &j["typed_config"];
        assert_eq!(typed.type_url, j["@type"].as_str().unwrap());
        let config = Wasm::decode(typed.value.as_slice()).unwrap().config.unwrap();
        let j = &j["config"];
        assert_eq!((config.name.as_str(), config.root_id.as_str()), (j["name"].as_str().unwrap(), j["root_id"].as_str().unwrap()));
        assert_eq!(config.failure_policy, resource_pb::FAIL_CLOSED);
        assert_eq!(j["failure_policy"], "FAIL_CLOSED");
        let vm = config.vm_config.unwrap();
        assert_eq!(
            (vm.vm_id.as_str(), vm.runtime.as_str()),
            (j["vm_config"]["vm_id"].as_str().unwrap(), j["vm_config"]["runtime"].as_str().unwrap())
        );
        assert_eq!(vm.code.unwrap().local.unwrap().filename, "/w/f.wasm");
        let configuration = config.configuration.unwrap();
        assert_eq!(configuration.type_url, j["configuration"]["@type"].as_str().unwrap());
        assert_eq!(StringValue::decode(configuration.value.as_slice()).unwrap().value, POLICY, "the policy, verbatim");
    }

    #[test]
    fn names_are_restricted() {
        assert!(parse_name("mtls_authz").is_ok());
        assert!(parse_name("a b").is_err());
        assert!(parse_name("").is_err());
    }
}
