//! A throw-away PKI for the doctor tests: roots, intermediates, leaves with
//! any validity window, usages and keys, and CRLs, all minted by rcgen at
//! test time (no key material is committed), plus helpers that run
//! `mtls-authz doctor --format json` and pick out one check.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::common::{mtls_authz, Run};

pub fn days(n: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(n)
}

/// A certificate authority and its key.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
    pub cn: String,
}

fn ca_params(cn: &str, is_ca: IsCa, key_usages: Vec<KeyUsagePurpose>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "Doctor Test");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = is_ca;
    params.key_usages = key_usages;
    params.not_before = days(-30);
    params.not_after = days(3650);
    params
}

fn ca_usages() -> Vec<KeyUsagePurpose> {
    vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
}

impl Ca {
    pub fn root(cn: &str) -> Ca {
        let params = ca_params(cn, IsCa::Ca(BasicConstraints::Unconstrained), ca_usages());
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(), cn: cn.into() }
    }

    pub fn intermediate(&self, cn: &str) -> Ca {
        let params = ca_params(cn, IsCa::Ca(BasicConstraints::Unconstrained), ca_usages());
        Ca { issuer: CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.issuer).unwrap(), cn: cn.into() }
    }

    /// An "intermediate" whose certificate says basicConstraints CA:FALSE.
    pub fn intermediate_not_ca(&self, cn: &str) -> Ca {
        let params = ca_params(cn, IsCa::ExplicitNoCa, Vec::new());
        Ca { issuer: CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.issuer).unwrap(), cn: cn.into() }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn leaf(&self, spec: &Leaf) -> Issued {
        let key = match &spec.key_pem {
            Some(pem) => KeyPair::from_pem(pem).unwrap(),
            None => KeyPair::generate().unwrap(),
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "shop");
        params.distinguished_name.push(DnType::CommonName, spec.cn);
        for uri in &spec.uri_san {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        for dns in &spec.dns_san {
            params.subject_alt_names.push(SanType::DnsName((*dns).try_into().unwrap()));
        }
        for ip in &spec.ip_san {
            params.subject_alt_names.push(SanType::IpAddress(ip.parse().unwrap()));
        }
        params.extended_key_usages = spec.ekus.clone();
        params.key_usages = spec.key_usages.clone();
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued { pem: cert.pem(), der: cert.der().to_vec(), key_pem: key.serialize_pem(), key_der: key.serialize_der() }
    }

    /// A CRL listing `revoked` serials, valid from `this_update` to `next_update`.
    pub fn crl(&self, revoked: &[&[u8]], this_update: OffsetDateTime, next_update: OffsetDateTime) -> String {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: days(-2),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

/// What a leaf certificate says; `Leaf::client()` is a healthy client certificate.
#[derive(Clone)]
pub struct Leaf {
    pub cn: &'static str,
    pub uri_san: Vec<&'static str>,
    pub dns_san: Vec<&'static str>,
    pub ip_san: Vec<&'static str>,
    pub ekus: Vec<ExtendedKeyUsagePurpose>,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: Vec<u8>,
    /// Reuse this key (PKCS#8 PEM) instead of a fresh one.
    pub key_pem: Option<String>,
}

impl Leaf {
    pub fn client() -> Leaf {
        Leaf {
            cn: "order-service",
            uri_san: vec!["spiffe://shop.test/ns/prod/sa/order"],
            dns_san: vec!["order.shop.test"],
            ip_san: vec![],
            ekus: vec![ExtendedKeyUsagePurpose::ClientAuth],
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            not_before: days(-1),
            not_after: days(365),
            serial: vec![0x1a, 0x2b, 0x3c],
            key_pem: None,
        }
    }

    pub fn server() -> Leaf {
        Leaf {
            cn: "localhost",
            uri_san: vec![],
            dns_san: vec!["localhost"],
            ip_san: vec!["127.0.0.1"],
            ekus: vec![ExtendedKeyUsagePurpose::ServerAuth],
            serial: vec![0x55],
            ..Leaf::client()
        }
    }
}

/// A leaf certificate and its key.
pub struct Issued {
    pub pem: String,
    pub der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

/// Run `mtls-authz doctor ARGS --format json`.
pub fn doctor_json<S: AsRef<str>>(args: &[S]) -> Run {
    let mut all: Vec<String> = vec!["doctor".into()];
    all.extend(args.iter().map(|a| a.as_ref().to_owned()));
    all.extend(["--format".into(), "json".into()]);
    mtls_authz(all)
}

/// Run `mtls-authz doctor ARGS` (text).
pub fn doctor_text<S: AsRef<str>>(args: &[S]) -> Run {
    let mut all: Vec<String> = vec!["doctor".into()];
    all.extend(args.iter().map(|a| a.as_ref().to_owned()));
    mtls_authz(all)
}

/// The check with this id in a JSON report.
pub fn check(run: &Run, id: &str) -> Value {
    let report = run.json();
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks array: {run:#?}"))
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no check '{id}' in {run:#?}"))
}

/// Assert status, cause and that the summary contains every fragment.
pub fn assert_check(run: &Run, id: &str, status: &str, cause: Option<&str>, fragments: &[&str]) -> Value {
    let c = check(run, id);
    assert_eq!(c["status"], status, "check {id}: {}", serde_json::to_string_pretty(&c).unwrap());
    match cause {
        Some(cause) => assert_eq!(c["cause"], cause, "check {id}: {}", serde_json::to_string_pretty(&c).unwrap()),
        None => assert!(c["cause"].is_null(), "check {id} has a cause: {c}"),
    }
    let summary = c["summary"].as_str().unwrap();
    for f in fragments {
        assert!(summary.contains(f), "check {id}: summary {summary:?} lacks {f:?}");
    }
    c
}

pub fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A directory with a root CA and a healthy client: the base of most tests.
pub struct Setup {
    pub dir: PathBuf,
    pub root: Ca,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: Issued,
}

impl Setup {
    pub fn new(label: &str) -> Setup {
        let dir = crate::common::scratch_dir(label);
        let root = Ca::root("Doctor Test Root CA");
        let client = root.leaf(&Leaf::client());
        Setup {
            ca: crate::common::write(&dir, "ca.pem", root.pem()),
            cert: crate::common::write(&dir, "client.pem", &client.pem),
            key: crate::common::write(&dir, "client.key", &client.key_pem),
            client,
            root,
            dir,
        }
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        p(&crate::common::write(&self.dir, name, contents))
    }

    /// `--cert C --key K --ca A` for the healthy client.
    pub fn base(&self) -> Vec<String> {
        vec!["--cert".into(), p(&self.cert), "--key".into(), p(&self.key), "--ca".into(), p(&self.ca)]
    }
}
