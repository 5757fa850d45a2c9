//! policy-tests/cases/bypass.json, read for the Rust runners: the policy,
//! the identities minted by rcgen from their specs, and the cases `cargo
//! test` can judge without Envoy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
    SerialNumber,
};
use serde_json::Value;

/// The repository root (this crate is `cli/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Table {
    pub policy: String,
    pub no_cert: String,
    /// Identity name -> its minted certificate.
    pub identities: BTreeMap<String, Minted>,
    pub cases: Vec<Case>,
    /// Reason code -> the engine's phrase (filter/constants.json, kept in step with the engine by filter/tests/constants.rs).
    pub reasons: BTreeMap<String, String>,
}

/// A certificate minted from a spec.
pub struct Minted {
    pub pem: String,
    /// What the filter must forward as x-mtls-authz-principal, when the table says.
    pub principal: Option<String>,
}

/// One case, with its raw-listener expectation.
pub struct Case {
    pub name: String,
    pub identity: String,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Allow {
        rule: String,
    },
    /// `reason` is the code; `status` 403 unless the table says (413).
    Deny {
        reason: String,
        rule: Option<String>,
        status: u32,
    },
}

/// Why a case is not run by `cargo test`, or `None` when it is.
///
/// Only the raw listener's expectation is the filter's own: Envoy's
/// normalisation is off there. Of those, a case is left to the Envoy suite
/// when its outcome is Envoy's (reject, drop), or when the request the filter
/// sees is not the one written down: exact request bytes (`request`), raw
/// HTTP/2 frames (`h2f`), non-origin targets (absolute-form, CONNECT's
/// authority, `*`: Envoy's codecs rewrite or route them) and targets with
/// whitespace (the HTTP/1 codec splits the request line on it).
fn skipped(case: &Value) -> Option<&'static str> {
    let raw = case.get("raw").unwrap_or(&case["hardened"]);
    let kind = raw["kind"].as_str().unwrap_or("");
    if kind != "allow" && kind != "deny" {
        return Some("Envoy decides (reject/drop)");
    }
    if case.get("request").is_some() {
        return Some("exact request bytes");
    }
    if case.get("proto").and_then(Value::as_str) == Some("h2f") {
        return Some("raw HTTP/2 frames");
    }
    let target = text(&case["target"]);
    if !target.starts_with('/') {
        return Some("non-origin target");
    }
    if target.chars().any(char::is_whitespace) {
        return Some("whitespace in the target");
    }
    None
}

/// A string field: a string, or parts (strings and `{"repeat", "times"}`).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                _ => p["repeat"].as_str().unwrap().repeat(p["times"].as_u64().unwrap() as usize),
            })
            .collect(),
        _ => panic!("not a string field: {v}"),
    }
}

/// A bytes field: a string field with one character (U+0000-U+00FF) per byte.
fn bytes(v: &Value) -> Vec<u8> {
    text(v).chars().map(|c| u8::try_from(u32::from(c)).expect("a byte per character")).collect()
}

fn str_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned())).collect())
        .unwrap_or_default()
}

fn expect(v: &Value) -> Expect {
    let rule = v.get("rule").and_then(Value::as_str).map(str::to_owned);
    match v["kind"].as_str() {
        Some("allow") => Expect::Allow { rule: rule.expect("an allow names its rule") },
        Some("deny") => Expect::Deny {
            reason: v["reason"].as_str().unwrap().to_owned(),
            rule,
            status: v.get("status").and_then(Value::as_u64).map_or(403, |s| s as u32),
        },
        other => panic!("not a filter decision: {other:?}"),
    }
}

/// Mint a certificate from a spec: `subject`, `san`, `eku` as in bypass.json,
/// and optionally `serial` (hex, colons allowed) and `issuer_cn` (signed by a
/// CA of that CN; else self-signed: the filter and the CLI trust whatever
/// Envoy verified).
pub fn mint(spec: &Value) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for attr in spec["subject"].as_array().unwrap() {
        let (key, value) = (attr[0].as_str().unwrap(), attr[1].as_str().unwrap());
        let (ty, oid) = match key {
            "CN" => (DnType::CommonName, vec![2, 5, 4, 3]),
            "O" => (DnType::OrganizationName, vec![2, 5, 4, 10]),
            "OU" => (DnType::OrganizationalUnitName, vec![2, 5, 4, 11]),
            other => panic!("subject attribute {other} has no rcgen mapping here"),
        };
        // rcgen keeps one value per DnType; a repeated attribute (two CNs) goes in by its OID.
        let ty = if seen.contains(&ty) { DnType::CustomDnType(oid) } else { ty };
        seen.push(ty.clone());
        dn.push(ty, value);
    }
    params.distinguished_name = dn;
    for san in spec["san"].as_array().unwrap() {
        let (kind, value) = san.as_object().unwrap().iter().next().unwrap();
        let value = value.as_str().unwrap();
        params.subject_alt_names.push(match kind.as_str() {
            "uri" => SanType::URI(value.try_into().unwrap()),
            "dns" => SanType::DnsName(value.try_into().unwrap()),
            "ip" => SanType::IpAddress(value.parse().unwrap()),
            other => panic!("SAN kind {other}"),
        });
    }
    params.extended_key_usages = vec![match spec["eku"].as_str() {
        Some("clientAuth") => ExtendedKeyUsagePurpose::ClientAuth,
        Some("serverAuth") => ExtendedKeyUsagePurpose::ServerAuth,
        other => panic!("eku {other:?}"),
    }];
    if let Some(serial) = spec.get("serial").and_then(Value::as_str) {
        let hex: String = serial.chars().filter(|c| *c != ':').collect();
        let hex = if hex.len() % 2 == 1 { format!("0{hex}") } else { hex };
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        params.serial_number = Some(SerialNumber::from_slice(&bytes));
    }
    let key = KeyPair::generate().unwrap();
    match spec.get("issuer_cn").and_then(Value::as_str) {
        Some(issuer_cn) => {
            let mut ca = CertificateParams::default();
            ca.distinguished_name = DistinguishedName::new();
            ca.distinguished_name.push(DnType::CommonName, issuer_cn);
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
            params.signed_by(&key, &issuer).unwrap().pem()
        }
        None => params.self_signed(&key).unwrap().pem(),
    }
}

pub fn load() -> Table {
    let file = repo().join("policy-tests/cases/bypass.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let constants: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("filter/constants.json")).unwrap()).unwrap();
    let reasons = constants["reasons"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    let mut cases = Vec::new();
    let mut wanted = Vec::new();
    for c in doc["cases"].as_array().unwrap() {
        if skipped(c).is_some() {
            continue;
        }
        wanted.push(c["identity"].as_str().unwrap().to_owned());
        cases.push(Case {
            name: c["name"].as_str().unwrap().to_owned(),
            identity: c["identity"].as_str().unwrap().to_owned(),
            method: c["method"].as_str().unwrap().to_owned(),
            target: text(&c["target"]),
            headers: str_pairs(c.get("headers")),
            body: c.get("body").map(bytes),
            expect: expect(c.get("raw").unwrap_or(&c["hardened"])),
        });
    }
    let no_cert = doc["no_cert"].as_str().unwrap().to_owned();
    let identities = doc["identities"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| wanted.contains(name))
        .map(|(name, spec)| {
            let principal = spec.get("principal").and_then(Value::as_str).map(str::to_owned);
            (name.clone(), Minted { pem: mint(spec), principal })
        })
        .collect();
    Table { policy: serde_json::to_string(&doc["policy"]).unwrap(), no_cert, identities, cases, reasons }
}

/// Every case of the table and why it is or is not run here, for the coverage check.
pub fn selection() -> Vec<(String, Option<&'static str>)> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("policy-tests/cases/bypass.json")).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap().to_owned(), skipped(c))).collect()
}
