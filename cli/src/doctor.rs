//! `mtls-authz doctor`: the command line of the mTLS diagnosis in the
//! `mtls-authz-doctor` crate. This module reads the files and the policy,
//! hands them to [`mtls_authz_doctor::diagnose`] and prints the report; every
//! check and every word of its findings is the library's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use mtls_authz_doctor::{Inputs, RawFile, Role, Target, TlsVersion};
use mtls_authz_policy::load::load;

use crate::console::Console;
use crate::input::{read_bytes, InputError};
use crate::output::{to_json_line, Format};
use crate::Exit;

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
    pub tls: Option<TlsArg>,
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

/// `--tls`: which TLS versions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2 only: rejections come as alerts inside the handshake.
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    V13,
}

impl From<TlsArg> for TlsVersion {
    fn from(arg: TlsArg) -> TlsVersion {
        match arg {
            TlsArg::V12 => TlsVersion::V12,
            TlsArg::V13 => TlsVersion::V13,
        }
    }
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
    let connect = args.connect.as_deref().map(Target::parse).transpose().map_err(InputError)?;
    let mut files = vec![read(Role::Cert, &args.cert, "certificate")?];
    if let Some(k) = &args.key {
        files.push(read(Role::Key, k, "key")?);
    }
    files.push(read(Role::Ca, &args.ca, "CA file")?);
    for c in &args.chain {
        files.push(read(Role::Chain, c, "chain file")?);
    }
    for c in &args.crl {
        files.push(read(Role::Crl, c, "CRL")?);
    }
    if let Some(s) = &args.server_ca {
        files.push(read(Role::ServerCa, s, "server CA file")?);
    }
    let policy = match &args.policy {
        Some(p) => match load(&p.display().to_string(), &read_bytes(p, "policy")?) {
            // Not text is unusable input, as for every file; invalid is a finding.
            Err(e) if e.is_not_text() => return Err(InputError(e.to_string())),
            loaded => Some(loaded),
        },
        None => None,
    };

    let report = mtls_authz_doctor::diagnose(Inputs {
        files,
        policy,
        method: &args.method,
        path: args.path.as_deref(),
        connect,
        sni: args.sni.as_deref(),
        tls: args.tls.map(TlsVersion::from),
        timeout: Duration::from_secs(args.timeout),
        warn_days: args.warn_days,
    });
    match args.format {
        Format::Json => console.out(&to_json_line(&report)),
        Format::Text => {
            for line in report.text_lines() {
                console.out(&line);
            }
        }
    }
    Ok(if report.ok { Exit::Ok } else { Exit::Failed })
}
