//! The compiled index against the naive evaluator, on structured input.
//!
//! `arbitrary` turns the fuzzer's bytes into a small policy, an identity and a
//! handful of requests, all drawn from small alphabets (like
//! policy/tests/differential.rs, but coverage-guided and with every principal
//! field) so that requests hit rules often. The policy goes through the real
//! JSON front door, then for every request:
//! - `CompiledPolicy::decide` must equal `decide_naive` (verdict, enforced
//!   verdict, rule and reason);
//! - compiling the rules in reverse order must not change the decision;
//! - the decision must be self-consistent: a rule is named exactly when a rule
//!   decided, and only dry-run turns a deny into an allow.
//!
//! The policy's `path_reading` is drawn too, so folding, normalisation,
//! stripped parameters, trailing slashes and the extra readings of suffix
//! matching and best fit go through both evaluators.
#![no_main]

use std::fmt::Write as _;
use std::net::IpAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mtls_authz_policy::{decide_naive, CompiledPolicy, Identity, Mode, Policy, Reason, Verdict};

/// Path-pattern segments and request segments share most of this alphabet.
/// "a b", "é" and "A" only match requests that spell them encoded or in that case.
const SEGMENTS: &[&str] = &["a", "b", "c", "dev1", "order", "A", "a b", "é", "x.y", "~u", "x", "Order", "ı"];
/// Request segments beyond the alphabet: encodings of it and things the canonicaliser must refuse.
const REQUEST_EXTRA: &[&str] = &[
    "%61",
    "%64ev1",
    "a%20b",
    "%C3%A9",
    "%41",
    "%2e",
    "..",
    ".",
    "",
    "%2F",
    "%2f",
    "a;b",
    "x%00",
    "%5C",
    "%252f",
    "%c0%af",
    "a b",
    "a;jsessionid=1",
    "x.y.json",
    "x.json",
    "%20a",
    "a.",
    "a::$DATA",
    "a%E2%80%8C",
    "e%CC%81",
    "%EF%BD%81",
    "%C4%B1",
    "ORDER",
    "%23",
    "%25",
    "a%2Fb",
    "%C2%A5",
    "a~1",
    "x:y",
];
const CNS: &[&str] = &["dev1", "order", "report", "a b", "a/b", "..", "", "A", "é"];
/// What a policy's `cn` may name (an empty value is refused by the validator).
const POLICY_CNS: &[&str] = &["dev1", "order", "report", "a b", "a/b", "..", "A", "é"];
const URI_SANS: &[&str] = &[
    "spiffe://t/sa/a",
    "spiffe://t/sa/dev1",
    "spiffe://t/ns/prod/sa/order",
    "spiffe://t/sa/",
    "spiffe://t",
    "spiffe://t/sa/..",
    "spiffe://t/sa/x?/a",
    "spiffe://t/sa/x#/a",
    "urn:x:a",
];
const DNS_SANS: &[&str] = &["a.t", "b.a.t", "t", "dev1", "order", "a", "a.t."];
const EMAILS: &[&str] = &["ops@t", "a.b@t.x", "ops@T", "Ops@t"];
const IPS: &[&str] = &["10.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "fd00::1", "::ffff:10.0.0.1"];
const ISSUERS: &[&str] = &["CA", "Other CA"];
const SERIALS: &[&str] = &["1a2b", "ff", "0"];
const METHODS: &[&str] = &["GET", "POST", "DELETE", "HEAD", "M-SEARCH"];
const REQUEST_METHODS: &[&str] = &["GET", "POST", "DELETE", "HEAD", "M-SEARCH", "get", "", "GET "];
/// Queries and fragments: none, one that must not matter, and method overrides the engine refuses.
const QUERIES: &[&str] = &["", "?q=/a/../b", "?_method=DELETE", "?x=1&%5FMethod=put", "#?_method=x"];
const NAMES: &[&str] = &["a", "b", "r", "r1", "r10", "r2", "Z", "_", "allow-all", "deny-all"];

fn pick<'a>(alphabet: &[&'a str], i: u8) -> &'a str {
    alphabet[usize::from(i) % alphabet.len()]
}

#[derive(Arbitrary, Debug)]
enum PatternSegment {
    Literal(u8),
    Any,
    Cn,
    DnsSan,
    UriSanLastSegment,
}

#[derive(Arbitrary, Debug)]
struct Pattern {
    segments: Vec<PatternSegment>,
    rest: bool,
}

#[derive(Arbitrary, Debug)]
enum Field {
    Cn(u8),
    CnGlob,
    Ou,
    O,
    UriSan(u8),
    UriSanGlob,
    DnsSan(u8),
    DnsSanGlob,
    EmailSan(u8),
    IpSan(u8, bool),
    IssuerCn(u8),
    Serial(u8),
    Sha256(bool),
}

#[derive(Arbitrary, Debug)]
enum PrincipalIn {
    Any,
    Fields(Vec<Field>),
}

#[derive(Arbitrary, Debug)]
struct RuleIn {
    name: u8,
    allow: bool,
    principals: Vec<PrincipalIn>,
    paths: Vec<Pattern>,
    methods: Option<Vec<u8>>,
    head_with_get: Option<bool>,
}

#[derive(Arbitrary, Debug)]
struct IdentityIn {
    cns: Vec<u8>,
    fleet_ou: bool,
    org: bool,
    uri_sans: Vec<u8>,
    dns_sans: Vec<u8>,
    email: Option<u8>,
    ip: Option<u8>,
    issuer: Option<u8>,
    serial: u8,
    sha256_match: bool,
}

#[derive(Arbitrary, Debug)]
enum RequestSegment {
    Known(u8),
    Extra(u8),
}

#[derive(Arbitrary, Debug)]
struct Request {
    identity: Option<u8>,
    method: u8,
    segments: Vec<RequestSegment>,
    trailing_slash: bool,
    query: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    default_allow: bool,
    dry_run: bool,
    reading: (u8, u8),
    rules: Vec<RuleIn>,
    identities: Vec<IdentityIn>,
    requests: Vec<Request>,
}

const SHA: &str = "abababababababababababababababababababababababababababababababab";

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pattern(p: &Pattern) -> String {
    let mut out = String::new();
    for s in p.segments.iter().take(5) {
        out.push('/');
        match s {
            PatternSegment::Literal(i) => out.push_str(pick(SEGMENTS, *i)),
            PatternSegment::Any => out.push('*'),
            PatternSegment::Cn => out.push_str("{cn}"),
            PatternSegment::DnsSan => out.push_str("{dns_san}"),
            PatternSegment::UriSanLastSegment => out.push_str("{uri_san_last_segment}"),
        }
    }
    if p.rest {
        out.push_str("/**");
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn principal(p: &PrincipalIn) -> String {
    let fields = match p {
        PrincipalIn::Any => return r#"{"any": true}"#.into(),
        PrincipalIn::Fields(f) if f.is_empty() => return r#"{"any": true}"#.into(),
        PrincipalIn::Fields(f) => f,
    };
    let mut seen = Vec::new();
    let mut parts = Vec::new();
    for f in fields.iter().take(4) {
        let (key, value) = match f {
            Field::Cn(i) => ("cn", pick(POLICY_CNS, *i).to_owned()),
            Field::CnGlob => ("cn", "*".to_owned()),
            Field::Ou => ("ou", "fleet".to_owned()),
            Field::O => ("o", "Shop".to_owned()),
            Field::UriSan(i) => ("uri_san", pick(URI_SANS, *i).to_owned()),
            Field::UriSanGlob => ("uri_san", "spiffe://t/sa/*".to_owned()),
            Field::DnsSan(i) => ("dns_san", pick(DNS_SANS, *i).to_ascii_uppercase()),
            Field::DnsSanGlob => ("dns_san", "*.t".to_owned()),
            Field::EmailSan(i) => ("email_san", pick(EMAILS, *i).to_owned()),
            Field::IpSan(i, net) => {
                let ip = pick(IPS, *i);
                let v = match (*net, ip.contains(':')) {
                    (false, _) => ip.to_owned(),
                    (true, false) => "10.0.0.0/8".to_owned(),
                    (true, true) => "fd00::/8".to_owned(),
                };
                ("ip_san", v)
            }
            Field::IssuerCn(i) => ("issuer_cn", pick(ISSUERS, *i).to_owned()),
            Field::Serial(i) => ("serial", format!("00:{}", pick(SERIALS, *i).to_ascii_uppercase())),
            Field::Sha256(upper) => ("sha256", if *upper { SHA.to_ascii_uppercase() } else { SHA.to_owned() }),
        };
        // A duplicate key would be refused; keep the first.
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        parts.push(format!("{}: {}", json_str(key), json_str(&value)));
    }
    format!("{{{}}}", parts.join(", "))
}

fn policy_json(input: &Input) -> String {
    let mut names_used: Vec<String> = Vec::new();
    let mut rules = Vec::new();
    for (i, r) in input.rules.iter().take(10).enumerate() {
        let mut name = pick(NAMES, r.name).to_owned();
        if names_used.contains(&name) {
            // No name in NAMES has a "-<digit>" suffix, so this one is new.
            name = format!("{name}-{i}");
        }
        names_used.push(name.clone());
        let mut principals: Vec<String> = r.principals.iter().take(3).map(principal).collect();
        if principals.is_empty() {
            principals.push(r#"{"any": true}"#.into());
        }
        let mut paths: Vec<String> = r.paths.iter().take(3).map(|p| json_str(&pattern(p))).collect();
        if paths.is_empty() {
            paths.push("\"/**\"".into());
        }
        let picked: Vec<&str> = r.methods.iter().flatten().take(3).map(|m| pick(METHODS, *m)).collect();
        let methods = if picked.is_empty() {
            String::new()
        } else {
            let ms: Vec<String> = picked.iter().map(|m| json_str(m)).collect();
            format!(r#", "methods": [{}]"#, ms.join(", "))
        };
        // Only where the validator takes it: a deny rule listing GET and not HEAD.
        let head_with_get = match r.head_with_get {
            Some(h) if !r.allow && picked.contains(&"GET") && !picked.contains(&"HEAD") => format!(r#", "head_with_get": {h}"#),
            _ => String::new(),
        };
        rules.push(format!(
            r#"{{"name": {}, "action": "{}", "principals": [{}], "paths": [{}]{methods}{head_with_get}}}"#,
            json_str(&name),
            if r.allow { "allow" } else { "deny" },
            principals.join(", "),
            paths.join(", ")
        ));
    }
    format!(
        r#"{{"version": 1, "default_action": "{}", "mode": "{}", "path_reading": {}, "rules": [{}]}}"#,
        if input.default_allow { "allow" } else { "deny" },
        if input.dry_run { "dry_run" } else { "enforce" },
        path_reading(input.reading),
        rules.join(", ")
    )
}

/// A `path_reading` object from two bytes: every option, every value (a
/// `case` only where the platform allows it to be said).
fn path_reading((a, b): (u8, u8)) -> String {
    let trailing = ["refuse", "same_as_without", "distinct"][usize::from(a % 3)];
    let params = if a & 4 != 0 { "strip" } else { "refuse" };
    let slash = if a & 8 != 0 { "in_segment" } else { "refuse" };
    let delimiters = if a & 16 != 0 { "decode_once" } else { "refuse" };
    let case = if a & 32 != 0 { r#", "case": "insensitive""# } else { "" };
    let platform = ["any", "posix", "windows", "macos"][usize::from(b % 4)];
    let unicode = ["any", "as_sent", "nfc", "nfkc"][usize::from((b >> 2) % 4)];
    format!(
        r#"{{"trailing_slash": "{trailing}", "path_parameters": "{params}", "encoded_slash": "{slash}", "encoded_delimiters": "{delimiters}"{case}, "platform": "{platform}", "unicode": "{unicode}", "suffix_patterns": {}, "trim_whitespace": {}}}"#,
        a & 64 != 0,
        a & 128 != 0
    )
}

fn identity(i: &IdentityIn) -> Identity {
    let ip = |k: u8| pick(IPS, k).parse::<IpAddr>().ok();
    Identity {
        common_names: i.cns.iter().take(3).map(|&k| pick(CNS, k).to_owned()).collect(),
        organizations: if i.org { vec!["Shop".into()] } else { vec![] },
        organizational_units: if i.fleet_ou { vec!["fleet".into()] } else { vec![] },
        uri_sans: i.uri_sans.iter().take(3).map(|&k| pick(URI_SANS, k).to_owned()).collect(),
        // Certificates' DNS SANs reach the engine lower-cased.
        dns_sans: i.dns_sans.iter().take(3).map(|&k| pick(DNS_SANS, k).to_owned()).collect(),
        email_sans: i.email.map(|k| vec![pick(EMAILS, k).to_owned()]).unwrap_or_default(),
        ip_sans: i.ip.and_then(ip).into_iter().collect(),
        issuer_common_names: i.issuer.map(|k| vec![pick(ISSUERS, k).to_owned()]).unwrap_or_default(),
        serial: pick(SERIALS, i.serial).to_owned(),
        sha256: if i.sha256_match { SHA.to_owned() } else { "cd".repeat(32) },
        ..Identity::default()
    }
}

fn request_path(r: &Request) -> String {
    let mut p = String::new();
    for s in r.segments.iter().take(6) {
        p.push('/');
        match s {
            RequestSegment::Known(i) => p.push_str(pick(SEGMENTS, *i)),
            RequestSegment::Extra(i) => p.push_str(pick(REQUEST_EXTRA, *i)),
        }
    }
    if p.is_empty() || r.trailing_slash {
        p.push('/');
    }
    p.push_str(pick(QUERIES, r.query));
    p
}

fuzz_target!(|input: Input| {
    let src = policy_json(&input);
    let policy = match Policy::from_json(&src) {
        Ok(p) => p,
        // The generator only builds valid documents; a refusal is a bug in one or the other.
        Err(e) => panic!("generated policy refused: {e}\n{src}"),
    };
    let compiled = CompiledPolicy::new(policy.clone());
    let mut reversed = policy.clone();
    reversed.rules.reverse();
    let reversed = CompiledPolicy::new(reversed);
    let identities: Vec<Identity> = input.identities.iter().take(4).map(identity).collect();
    for r in input.requests.iter().take(16) {
        let id = r.identity.and_then(|k| identities.get(usize::from(k) % identities.len().max(1)));
        let method = pick(REQUEST_METHODS, r.method);
        let path = request_path(r);
        let fast = compiled.decide(id, method, &path);
        let slow = decide_naive(&policy, id, method, &path);
        assert_eq!(fast, slow, "compiled vs naive\npolicy: {src}\nidentity: {id:?}\nrequest: {method} {path}");
        assert_eq!(reversed.decide(id, method, &path), fast, "rule order changed the decision\npolicy: {src}\nrequest: {method} {path}");
        assert_eq!(fast.rule.is_some(), matches!(fast.reason, Reason::Rule(_)), "{fast:?}");
        match policy.mode {
            Mode::Enforce => assert_eq!(fast.enforced, fast.verdict),
            Mode::DryRun => assert_eq!(fast.enforced, Verdict::Allow),
        }
        if id.is_none() {
            assert_eq!(fast.reason, Reason::NoPeerCertificate);
        }
    }
});
