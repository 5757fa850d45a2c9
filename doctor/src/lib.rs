//! Say in plain words why an mTLS connection fails: the library behind
//! `mtls-authz doctor`.
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
//! detail lines, a fix, and (for scripts) a stable `cause` code. The caller
//! reads the files ([`RawFile`]) and hands them to [`diagnose`]; the
//! [`Report`] it gets back serialises to the JSON scripts read and renders as
//! the text people read. Apart from the `--connect` handshake nothing here
//! does I/O.

mod chain;
mod crl;
mod der;
mod files;
mod handshake;
mod identity;
mod key;
mod usage;
mod validity;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtls_authz_policy::{CompiledPolicy, LoadError};
use serde::Serialize;
use x509_parser::x509::X509Name;

use self::chain::Source;
use self::files::Cert;
pub use self::files::{RawFile, Role};
use self::handshake::{ClientAuth, Settings};
pub use self::handshake::{Target, TlsVersion};

/// What to diagnose: the files as read, and the settings of the command line.
pub struct Inputs<'a> {
    /// Every file given, in the order the `files` check lists them: the
    /// `--cert` file, then the key, CA, chain, CRL and server CA files that
    /// were given. Which roles are there decides what is checked (no key
    /// file: no key check).
    pub files: Vec<RawFile>,
    /// The policy as the engine loaded it; `Err` is why it did not, whose
    /// `lines()` are what `check` prints.
    pub policy: Option<Result<CompiledPolicy, LoadError>>,
    /// The request method for the policy decision.
    pub method: &'a str,
    /// The request :path for the policy decision, as sent.
    pub path: Option<&'a str>,
    /// The server for a live handshake.
    pub connect: Option<Target>,
    /// The server name to send and verify [default: the `connect` host].
    pub sni: Option<&'a str>,
    /// Offer only this TLS version [default: 1.3 and 1.2].
    pub tls: Option<TlsVersion>,
    /// How long each network step of the handshake may take.
    pub timeout: Duration,
    /// Warn when the certificate expires within this many days.
    pub warn_days: u32,
}

impl Inputs<'_> {
    fn has(&self, role: Role) -> bool {
        self.files.iter().any(|f| f.role == role)
    }
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
    pub(crate) fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Check {
        Check { id, status, summary: summary.into(), cause: None, detail: Vec::new(), fix: None, data: None }
    }

    pub(crate) fn cause(mut self, cause: &'static str) -> Check {
        self.cause = Some(cause);
        self
    }

    pub(crate) fn detail(mut self, lines: Vec<String>) -> Check {
        self.detail = lines;
        self
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn data(mut self, data: serde_json::Value) -> Check {
        self.data = Some(data);
        self
    }
}

/// Every check's result; serialised, it is what `--format json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// True when no check failed (warnings allowed): the exit status is 0.
    pub ok: bool,
}

/// A name for messages: the engine's RFC 4514 spelling
/// ([`mtls_authz_policy::identity::distinguished_name`]), as `explain` shows
/// it; `(empty name)` when it has no attributes.
pub(crate) fn dn(name: &X509Name<'_>) -> String {
    let text = mtls_authz_policy::identity::distinguished_name(name);
    if text.is_empty() {
        "(empty name)".into()
    } else {
        text
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Run the checks, in handshake order, on the inputs.
///
/// Everything in the inputs, however broken, is a finding: an unparsable
/// file fails the `files` check and the checks that need it are skipped.
pub fn diagnose(inputs: Inputs<'_>) -> Report {
    let checks = run_checks(inputs);
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report { checks, ok }
}

fn run_checks(inputs: Inputs<'_>) -> Vec<Check> {
    let (key_given, crl_given, server_ca_given) = (inputs.has(Role::Key), inputs.has(Role::Crl), inputs.has(Role::ServerCa));
    let now = now();
    let mut checks = Vec::new();
    let (loaded, files_check) = files::load(&inputs.files);
    checks.push(files_check);
    let leaf = loaded.leaf.as_ref();
    let leaf_x = leaf.and_then(Cert::parse);
    let unreadable = || Check::new("", Status::Skip, "the certificate could not be read (see files)");
    let skipped = |id: &'static str| Check { id, ..unreadable() };

    checks.push(key::check(leaf_x.as_ref(), loaded.key.as_ref(), key_given));
    checks.push(match &leaf_x {
        Some(c) => validity::check(c, now, inputs.warn_days),
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
        None if !crl_given => Check::new("revocation", Status::Skip, "no --crl given: revocation not checked"),
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
    checks.push(match inputs.policy {
        Some(p) if leaf.is_some() => identity::policy_check(p, identity.as_ref(), inputs.method, inputs.path.unwrap_or("/")),
        Some(_) => skipped("policy"),
        None => Check::new("policy", Status::Skip, "no --policy given: the request decision was not evaluated"),
    });
    checks.push(match &inputs.connect {
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
            if key_given && client.is_none() {
                Check::new("handshake", Status::Skip, "the certificate or key could not be read (see files): no live handshake")
            } else {
                let (roots, roots_flag) = if server_ca_given { (&loaded.server_cas, "--server-ca") } else { (&loaded.cas, "--ca") };
                handshake::check(Settings {
                    target,
                    sni: inputs.sni,
                    roots,
                    roots_flag,
                    client,
                    tls: inputs.tls,
                    timeout: inputs.timeout,
                    local_failures,
                })
            }
        }
    });
    checks
}

const INDENT: &str = "                  ";

impl Report {
    /// The report for people: a line per check (status, id, summary), its
    /// detail and fix indented below, and a closing verdict with the tally.
    pub fn text_lines(&self) -> Vec<String> {
        let checks = &self.checks;
        let mut lines = Vec::new();
        for c in checks {
            lines.push(format!("{:<6}{:<12}{}", c.status.label(), c.id, c.summary));
            for line in &c.detail {
                lines.push(format!("{INDENT}{line}"));
            }
            if let Some(fix) = &c.fix {
                lines.push(format!("{INDENT}fix: {fix}"));
            }
        }
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let (failed, warned, passed, skipped) = (count(Status::Fail), count(Status::Warn), count(Status::Pass), count(Status::Skip));
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let verdict = if self.ok { "OK, nothing failed" } else { "PROBLEMS FOUND" };
        let mut tally = Vec::new();
        if failed > 0 {
            tally.push(format!("{} failed", plural(failed, "check")));
        }
        if warned > 0 {
            tally.push(plural(warned, "warning"));
        }
        lines.push(format!(
            "doctor: {verdict}{}{} (of {} checks: {passed} pass, {skipped} skipped)",
            if tally.is_empty() { "" } else { " — " },
            tally.join(", "),
            checks.len()
        ));
        lines
    }
}
