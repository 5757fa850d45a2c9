//! Shared helpers for the CLI's integration tests: run the built binary,
//! make scratch directories, and mint certificates with `rcgen`.
//!
//! The tests drive the real `mtls-authz` executable rather than its modules,
//! because exit codes, stdout/stderr separation and "never a backtrace" are
//! properties of the process, and that is what CI scripts rely on.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType, SerialNumber};

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Bad input must never surface as a Rust panic or backtrace.
    pub fn assert_no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "panic output: {self:#?}");
        }
    }

    /// The stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:#?}"))
    }

    /// The last stdout line.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

/// Run `mtls-authz ARGS...` and capture everything.
pub fn mtls_authz<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_mtls-authz")).args(args).output().expect("the binary runs");
    let run = Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    run.assert_no_panic();
    run
}

/// A fresh, empty directory under the system temp dir, unique per test and process.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "mtls-authz-cli-{label}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Write `contents` to `dir/name` (creating parent folders) and return the path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, contents).unwrap();
    path
}

/// The microservices policy the envoy/ demo uses: who may touch the payment API.
pub const PAYMENT_POLICY: &str = r#"{
  "version": 1,
  "default_action": "deny",
  "revision": "test-1",
  "rules": [
    {"name": "orders-create-payment", "action": "allow",
     "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/order"}, {"cn": "order-service"}],
     "paths": ["/api/payment/create"], "methods": ["POST"]},
    {"name": "reports-read-payment", "action": "allow",
     "principals": [{"cn": "report-service", "ou": "reporting"}],
     "paths": ["/api/payment/query", "/api/payment/query/**"], "methods": ["GET", "HEAD"]},
    {"name": "nobody-on-admin", "action": "deny",
     "principals": [{"any": true}],
     "paths": ["/api/payment/admin/**"]}
  ]
}
"#;

/// What a test certificate says.
#[derive(Debug, Clone, Default)]
pub struct CertSpec {
    pub cn: Option<&'static str>,
    pub o: Option<&'static str>,
    pub ou: Option<&'static str>,
    pub uri_san: Vec<&'static str>,
    pub dns_san: Vec<&'static str>,
    pub serial: Vec<u8>,
}

/// A test CA and leaf certificates it signs. Keys live only in memory.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// The CN every test leaf's issuer has.
pub const CA_CN: &str = "Shop Test CA";

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, CA_CN);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// A leaf certificate (PEM, no key) valid 2024-01-01 to 2034-01-01.
    pub fn leaf_pem(&self, spec: &CertSpec) -> String {
        self.leaf(spec).pem()
    }

    /// The same as DER.
    pub fn leaf_der(&self, spec: &CertSpec) -> Vec<u8> {
        self.leaf(spec).der().to_vec()
    }

    fn leaf(&self, spec: &CertSpec) -> rcgen::Certificate {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(o) = spec.o {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        if let Some(ou) = spec.ou {
            params.distinguished_name.push(DnType::OrganizationalUnitName, ou);
        }
        if let Some(cn) = spec.cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        for uri in &spec.uri_san {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        for dns in &spec.dns_san {
            params.subject_alt_names.push(SanType::DnsName((*dns).try_into().unwrap()));
        }
        if !spec.serial.is_empty() {
            params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
        }
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2034, 1, 1);
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &self.issuer).unwrap()
    }
}

/// Deterministic noise (xorshift), for "random DER" without a rand dependency.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
