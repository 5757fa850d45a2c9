//! `mtls-authz doctor`: say in plain words why an mTLS connection fails.
//!
//! TLS stacks report failures as terse alerts (`unknown ca`, `bad
//! certificate`, `certificate required`) that each cover several causes. The
//! doctor runs the checks a handshake would run, in the order it would run
//! them, on the operator's own files, and names the first thing that breaks
//! together with the fix:
//!
//! 1. `files`: every file parses (which block of which file did not);
//! 2. `key`: the private key belongs to the certificate;
//! 3. `validity`: not expired, not yet valid, or expiring soon;
//! 4. `chain`: a verified chain to a CA in `--ca`;
//! 5. `usage`: key usage / extended key usage allow TLS client auth;
//! 6. `revocation`: not listed in `--crl`, and the CRL is usable;
//! 7. `identity` / `policy`: what the filter sees, and what the policy decides;
//! 8. `handshake`: with `--connect`, a real handshake, its outcome in words.
//!
//! Every check reports one of pass/warn/fail/skip with a one-line summary,
//! detail lines, a fix, and (for scripts) a stable `cause` code. Exit status:
//! 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when
//! the command line or a file could not be used at all.

mod chain;
mod crl;
mod der;
mod files;
mod handshake;
mod identity;
mod key;
mod usage;
mod validity;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use mtls_authz_policy::CompiledPolicy;
use serde::Serialize;
use x509_parser::x509::X509Name;

use crate::console::Console;
use crate::input::{read_bytes, read_text, InputError};
use crate::output::{to_json_line, Format};
use crate::Exit;

use self::chain::Source;
use self::files::{Cert, RawFile, Role};
use self::handshake::{ClientAuth, Settings, Target, TlsVersion};

/// The `doctor` command line.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The client certificate, PEM or DER; intermediates may follow the leaf (they are what the client sends).
    #[arg(long, value_name = "CLIENT.pem")]
    pub cert: PathBuf,
    /// The client's private key (PKCS#8, SEC1 EC or PKCS#1 RSA; PEM or DER). Without it the key is not checked and --connect presents no certificate.
    #[arg(long, value_name = "CLIENT.key")]
    pub key: Option<PathBuf>,
    /// The CA certificates the server trusts for client certificates (Envoy: validation_context.trusted_ca).
    #[arg(long, value_name = "TRUSTED_CA.pem")]
    pub ca: PathBuf,
    /// Intermediate CA certificates, to build the chain with (repeatable).
    #[arg(long, value_name = "INTERMEDIATES.pem")]
    pub chain: Vec<PathBuf>,
    /// Certificate revocation lists, PEM or DER (repeatable; Envoy: validation_context.crl).
    #[arg(long, value_name = "REVOKED.crl")]
    pub crl: Vec<PathBuf>,
    /// A policy: also show what it decides for --method and --path.
    #[arg(long, value_name = "POLICY.json", requires = "path")]
    pub policy: Option<PathBuf>,
    /// The request method for --policy.
    #[arg(long, default_value = "GET", requires = "policy")]
    pub method: String,
    /// The request :path for --policy, as sent (query and escapes included).
    #[arg(long, value_name = "PATH", allow_hyphen_values = true, requires = "policy")]
    pub path: Option<String>,
    /// Also do a real TLS handshake with this server, presenting the certificate and key.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// The CA that issued the server's certificate [default: --ca].
    #[arg(long, value_name = "SERVER_CA.pem", requires = "connect")]
    pub server_ca: Option<PathBuf>,
    /// The server name to send and verify [default: the --connect host].
    #[arg(long, value_name = "NAME", requires = "connect")]
    pub sni: Option<String>,
    /// Offer only this TLS version [default: 1.3 and 1.2].
    #[arg(long, value_enum, requires = "connect")]
    pub tls: Option<TlsVersion>,
    /// Seconds to wait for each network step of --connect.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub timeout: u64,
    /// Warn when the certificate expires within this many days.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub warn_days: u32,
    /// Output format; json prints one object: {"checks":[{"id","status","summary","cause","detail","fix","data"}...],"ok":bool}.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A check's outcome. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skip,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Skip => "SKIP",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result, as printed and as serialised.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id: files, key, validity, chain, usage, revocation, identity, policy, handshake.
    pub id: &'static str,
    pub status: Status,
    /// One line: what was found, in words.
    pub summary: String,
    /// Stable machine-readable cause for warn/fail (e.g. "expired", "server_untrusted_ca"); null on pass/skip.
    pub cause: Option<&'static str>,
    /// Supporting facts, one per line.
    pub detail: Vec<String>,
    /// What to do about it; null when there is nothing to do.
    pub fix: Option<String>,
    /// Structured facts for scripts (identity fields, the decision, the alert …), or null.
    pub data: Option<serde_json::Value>,
}

impl Check {
    pub fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Check {
        Check { id, status, summary: summary.into(), cause: None, detail: Vec::new(), fix: None, data: None }
    }

    pub fn cause(mut self, cause: &'static str) -> Check {
        self.cause = Some(cause);
        self
    }

    pub fn detail(mut self, lines: Vec<String>) -> Check {
        self.detail = lines;
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Check {
        self.data = Some(data);
        self
    }
}

/// What `--format json` prints.
#[derive(Debug, Serialize)]
struct Report {
    checks: Vec<Check>,
    /// True when no check failed (warnings allowed): the exit status is 0.
    ok: bool,
}

/// A distinguished name for people: RFC 4514-ish, never empty.
pub fn dn(name: &X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty name)".into()
    } else {
        text
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn read(role: Role, path: &Path, what: &str) -> Result<RawFile, InputError> {
    Ok(RawFile { role, path: path.to_path_buf(), bytes: read_bytes(path, what)? })
}

/// Read every input, run the checks, print the report.
///
/// Unreadable files and a malformed --connect are input errors (exit 2,
/// nothing printed on stdout): there is nothing to diagnose yet. Everything
/// else, however broken, is a finding.
pub fn run(args: &DoctorArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    let target = args.connect.as_deref().map(Target::parse).transpose().map_err(InputError)?;
    let mut raw = vec![read(Role::Cert, &args.cert, "certificate")?];
    if let Some(k) = &args.key {
        raw.push(read(Role::Key, k, "key")?);
    }
    raw.push(read(Role::Ca, &args.ca, "CA file")?);
    for c in &args.chain {
        raw.push(read(Role::Chain, c, "chain file")?);
    }
    for c in &args.crl {
        raw.push(read(Role::Crl, c, "CRL")?);
    }
    if let Some(s) = &args.server_ca {
        raw.push(read(Role::ServerCa, s, "server CA file")?);
    }
    let policy = match &args.policy {
        Some(p) => {
            let src = read_text(p, "policy")?;
            let origin = p.display().to_string();
            Some(CompiledPolicy::from_json(&src).map_err(|e| e.render(&origin)))
        }
        None => None,
    };

    let checks = diagnose(args, &raw, policy, target.as_ref());
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    match args.format {
        Format::Json => console.out(&to_json_line(&Report { checks, ok })),
        Format::Text => print_text(&checks, ok, console),
    }
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

fn diagnose(args: &DoctorArgs, raw: &[RawFile], policy: Option<Result<CompiledPolicy, String>>, target: Option<&Target>) -> Vec<Check> {
    let now = now();
    let mut checks = Vec::new();
    let (loaded, files_check) = files::load(raw);
    checks.push(files_check);
    let leaf = loaded.leaf.as_ref();
    let leaf_x = leaf.and_then(Cert::parse);
    let unreadable = || Check::new("", Status::Skip, "the certificate could not be read (see files)");
    let skipped = |id: &'static str| Check { id, ..unreadable() };

    checks.push(key::check(leaf_x.as_ref(), loaded.key.as_ref(), args.key.is_some()));
    checks.push(match &leaf_x {
        Some(c) => validity::check(c, now, args.warn_days),
        None => skipped("validity"),
    });
    let path = match leaf {
        Some(l) => {
            let outcome = chain::check(l, &loaded.cert_extras, &loaded.chain, &loaded.cas, now);
            checks.push(outcome.check);
            outcome.path
        }
        None => {
            checks.push(skipped("chain"));
            Vec::new()
        }
    };
    checks.push(match &leaf_x {
        Some(c) => usage::check(c, &path),
        None => skipped("usage"),
    });
    let known: Vec<&Cert> = loaded.cas.iter().chain(&loaded.chain).chain(&loaded.cert_extras).collect();
    checks.push(match leaf {
        Some(l) => crl::check(l, &path, &loaded.crls, &known, now),
        None if args.crl.is_empty() => Check::new("revocation", Status::Skip, "no --crl given: revocation not checked"),
        None => skipped("revocation"),
    });
    let identity = match leaf {
        Some(l) => {
            let (check, identity) = identity::check(&l.der);
            checks.push(check);
            identity
        }
        None => {
            checks.push(skipped("identity"));
            None
        }
    };
    checks.push(match policy {
        Some(p) if leaf.is_some() => identity::policy_check(p, identity.as_ref(), &args.method, args.path.as_deref().unwrap_or("/")),
        Some(_) => skipped("policy"),
        None => Check::new("policy", Status::Skip, "no --policy given: the request decision was not evaluated"),
    });
    checks.push(match target {
        None => Check::new("handshake", Status::Skip, "no --connect given: no live handshake"),
        Some(target) => {
            let local_failures: Vec<String> =
                checks.iter().filter(|c| c.status == Status::Fail).map(|c| format!("{}: {}", c.id, c.summary)).collect();
            let client = match (leaf, &loaded.key) {
                (Some(l), Some(k)) => {
                    let mut chain = vec![l.der.clone()];
                    chain.extend(loaded.cert_extras.iter().map(|c| c.der.clone()));
                    chain.extend(path.iter().filter(|p| p.source == Source::ChainFile).map(|p| p.cert.der.clone()));
                    Some(ClientAuth {
                        chain,
                        key: key::to_rustls(k),
                        not_after: leaf_x.as_ref().map(|c| c.validity().not_after.timestamp()),
                    })
                }
                _ => None,
            };
            if args.key.is_some() && client.is_none() {
                Check::new("handshake", Status::Skip, "the certificate or key could not be read (see files): no live handshake")
            } else {
                let (roots, roots_flag) =
                    if args.server_ca.is_some() { (&loaded.server_cas, "--server-ca") } else { (&loaded.cas, "--ca") };
                handshake::check(Settings {
                    target,
                    sni: args.sni.as_deref(),
                    roots,
                    roots_flag,
                    client,
                    tls: args.tls,
                    timeout: Duration::from_secs(args.timeout),
                    local_failures,
                })
            }
        }
    });
    checks
}

const INDENT: &str = "                  ";

fn print_text(checks: &[Check], ok: bool, console: &mut Console<'_>) {
    for c in checks {
        console.out(&format!("{:<6}{:<12}{}", c.status.label(), c.id, c.summary));
        for line in &c.detail {
            console.out(&format!("{INDENT}{line}"));
        }
        if let Some(fix) = &c.fix {
            console.out(&format!("{INDENT}fix: {fix}"));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (failed, warned, passed, skipped) = (count(Status::Fail), count(Status::Warn), count(Status::Pass), count(Status::Skip));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let verdict = if ok { "OK, nothing failed" } else { "PROBLEMS FOUND" };
    let mut tally = Vec::new();
    if failed > 0 {
        tally.push(format!("{} failed", plural(failed, "check")));
    }
    if warned > 0 {
        tally.push(plural(warned, "warning"));
    }
    console.out(&format!(
        "doctor: {verdict}{}{} (of {} checks: {passed} pass, {skipped} skipped)",
        if tally.is_empty() { "" } else { " — " },
        tally.join(", "),
        checks.len()
    ));
}
