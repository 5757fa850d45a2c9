//! Check 2: does the private key belong to the certificate?
//!
//! A key/certificate mix-up (a renewed certificate deployed with the old key,
//! or keys of two services swapped) shows up in a handshake only as the
//! server's `decrypt_error` or a bare `handshake_failure`. Comparing the
//! public key derived from the private key with the certificate's
//! SubjectPublicKeyInfo names the cause before any connection is made.
//!
//! ring loads the key, which also proves it is internally consistent (for EC
//! keys ring checks the embedded public point against the private scalar).

use mtls_authz_policy::hex;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use x509_parser::certificate::X509Certificate;

use super::der::{self, Tlv};
use super::files::Key;
use super::{Check, Status};

// DER contents of the algorithm and curve OIDs.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]; // 1.2.840.113549.1.1.10
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22]; // 1.3.132.0.34
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23]; // 1.3.132.0.35
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113

/// How the private key is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `PRIVATE KEY`: PKCS#8 PrivateKeyInfo, any algorithm.
    Pkcs8,
    /// `RSA PRIVATE KEY`: PKCS#1 RSAPrivateKey.
    Pkcs1,
    /// `EC PRIVATE KEY`: SEC1 ECPrivateKey.
    Sec1,
}

impl KeyFormat {
    pub fn describe(self) -> &'static str {
        match self {
            KeyFormat::Pkcs8 => "PKCS#8 private key",
            KeyFormat::Pkcs1 => "PKCS#1 RSA private key",
            KeyFormat::Sec1 => "SEC1 EC private key",
        }
    }
}

/// PEM labels that hold a private key of some kind (readable or not).
pub fn is_key_label(label: &str) -> bool {
    matches!(
        label,
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "DSA PRIVATE KEY" | "OPENSSH PRIVATE KEY"
    )
}

/// The format of a PEM key block, or why it cannot be used.
pub fn classify_pem(label: &str, der: &[u8], encrypted_headers: bool) -> Result<KeyFormat, String> {
    if encrypted_headers {
        return Err("the key is encrypted with a passphrase (Proc-Type header); decrypt a copy with \
                    `openssl pkey -in KEY -out plain.key` to check it"
            .into());
    }
    let (format, ok) = match label {
        "PRIVATE KEY" => (KeyFormat::Pkcs8, is_pkcs8(der)),
        "RSA PRIVATE KEY" => (KeyFormat::Pkcs1, is_pkcs1(der)),
        "EC PRIVATE KEY" => (KeyFormat::Sec1, is_sec1(der)),
        "ENCRYPTED PRIVATE KEY" => {
            return Err("the key is encrypted (PKCS#8 with a passphrase); decrypt a copy with \
                        `openssl pkey -in KEY -out plain.key` to check it"
                .into())
        }
        "OPENSSH PRIVATE KEY" => {
            return Err("an OpenSSH key, which TLS stacks do not read; convert with `ssh-keygen -p -m PKCS8 -f KEY`".into())
        }
        other => return Err(format!("a {other}, which TLS 1.3 and Envoy cannot use")),
    };
    if ok {
        Ok(format)
    } else {
        Err(format!("not a {} (the DER structure does not match its label)", format.describe()))
    }
}

/// The format of a DER key file, guessed from its structure.
pub fn classify_der(der: &[u8]) -> Option<KeyFormat> {
    if is_pkcs8(der) {
        Some(KeyFormat::Pkcs8)
    } else if is_sec1(der) {
        Some(KeyFormat::Sec1)
    } else if is_pkcs1(der) {
        Some(KeyFormat::Pkcs1)
    } else {
        None
    }
}

fn top(der: &[u8]) -> Option<Vec<Tlv<'_>>> {
    der::children(der::read_only(der, der::SEQUENCE)?.value)
}

/// PrivateKeyInfo: SEQUENCE { INTEGER version, AlgorithmIdentifier, OCTET STRING, ... }.
fn is_pkcs8(der: &[u8]) -> bool {
    matches!(top(der).as_deref(), Some([v, a, k, ..]) if v.tag == der::INTEGER && a.tag == der::SEQUENCE && k.tag == der::OCTET_STRING)
}

/// ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING, [0] params?, [1] publicKey? }.
fn is_sec1(der: &[u8]) -> bool {
    matches!(top(der).as_deref(), Some([v, k, ..]) if v.tag == der::INTEGER && v.value == [1] && k.tag == der::OCTET_STRING)
}

/// RSAPrivateKey: SEQUENCE of nine INTEGERs (version, n, e, d, p, q, dp, dq, qinv).
fn is_pkcs1(der: &[u8]) -> bool {
    matches!(top(der), Some(items) if items.len() >= 9 && items.iter().all(|t| t.tag == der::INTEGER))
}

/// A key algorithm, as far as the check needs to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Algorithm {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    /// Recognised but not loadable with ring (P-521, Ed448, RSA-PSS keys …).
    Unsupported(String),
}

impl Algorithm {
    fn from_oids(alg: &[u8], param: Option<&[u8]>) -> Algorithm {
        match (alg, param) {
            (OID_RSA, _) => Algorithm::Rsa,
            (OID_EC, Some(OID_P256)) => Algorithm::EcP256,
            (OID_EC, Some(OID_P384)) => Algorithm::EcP384,
            (OID_EC, Some(OID_P521)) => Algorithm::Unsupported("EC P-521".into()),
            (OID_EC, Some(other)) => Algorithm::Unsupported(format!("EC curve {}", hex::lower(other))),
            (OID_EC, None) => Algorithm::Unsupported("EC with explicit curve parameters".into()),
            (OID_ED25519, _) => Algorithm::Ed25519,
            (OID_ED448, _) => Algorithm::Unsupported("Ed448".into()),
            (OID_RSA_PSS, _) => Algorithm::Unsupported("RSA-PSS".into()),
            (other, _) => Algorithm::Unsupported(format!("algorithm {}", hex::lower(other))),
        }
    }

    fn name(&self) -> String {
        match self {
            Algorithm::Rsa => "RSA".into(),
            Algorithm::EcP256 => "EC P-256".into(),
            Algorithm::EcP384 => "EC P-384".into(),
            Algorithm::Ed25519 => "Ed25519".into(),
            Algorithm::Unsupported(name) => name.clone(),
        }
    }
}

/// The certificate's public key: algorithm and the BIT STRING contents.
fn cert_public_key(cert: &X509Certificate<'_>) -> (Algorithm, Vec<u8>) {
    let spki = cert.public_key();
    let param = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
    let alg = Algorithm::from_oids(spki.algorithm.algorithm.as_bytes(), param.as_ref().map(|o| o.as_bytes()));
    (alg, spki.subject_public_key.data.to_vec())
}

/// Why the key could not be turned into a public key.
enum LoadError {
    /// ring refused it (carries its reason, in words).
    Rejected(String),
    /// An algorithm we can name but not load.
    Unsupported(String),
}

/// Derive (algorithm, public key bytes as in a SubjectPublicKeyInfo, size note).
fn key_public_key(key: &Key, cert_curve: Option<&[u8]>) -> Result<(Algorithm, Vec<u8>, String), LoadError> {
    match key.format {
        KeyFormat::Pkcs1 => rsa(RsaKeyPair::from_der(&key.der)),
        KeyFormat::Sec1 => {
            let items = top(&key.der).ok_or_else(|| LoadError::Rejected("malformed SEC1 structure".into()))?;
            let curve = items
                .iter()
                .find(|t| t.tag == der::CONTEXT_0)
                .and_then(|t| der::read_only(t.value, der::OID))
                .map(|oid| oid.value)
                .or(cert_curve)
                .ok_or_else(|| LoadError::Rejected("the SEC1 key names no curve".into()))?;
            let pkcs8 = sec1_to_pkcs8(&key.der, curve).ok_or_else(|| LoadError::Rejected("malformed SEC1 structure".into()))?;
            ec_or_other(&pkcs8, Algorithm::from_oids(OID_EC, Some(curve)))
        }
        KeyFormat::Pkcs8 => {
            let items = top(&key.der).ok_or_else(|| LoadError::Rejected("malformed PKCS#8 structure".into()))?;
            let alg = items
                .get(1)
                .and_then(|a| der::children(a.value))
                .ok_or_else(|| LoadError::Rejected("malformed PKCS#8 algorithm".into()))?;
            let oid = alg.first().filter(|t| t.tag == der::OID).map(|t| t.value).unwrap_or_default();
            let param = alg.get(1).filter(|t| t.tag == der::OID).map(|t| t.value);
            ec_or_other(&key.der, Algorithm::from_oids(oid, param))
        }
    }
}

fn ec_or_other(pkcs8: &[u8], alg: Algorithm) -> Result<(Algorithm, Vec<u8>, String), LoadError> {
    let rng = SystemRandom::new();
    let ec = |signing: &'static signature::EcdsaSigningAlgorithm| {
        EcdsaKeyPair::from_pkcs8(signing, pkcs8, &rng)
            .map(|kp| kp.public_key().as_ref().to_vec())
            .map_err(|e| LoadError::Rejected(rejected(&e.to_string())))
    };
    match alg {
        Algorithm::Rsa => rsa(RsaKeyPair::from_pkcs8(pkcs8)),
        Algorithm::EcP256 => Ok((Algorithm::EcP256, ec(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?, String::new())),
        Algorithm::EcP384 => Ok((Algorithm::EcP384, ec(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)?, String::new())),
        Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map(|kp| (Algorithm::Ed25519, kp.public_key().as_ref().to_vec(), String::new()))
            .map_err(|e| LoadError::Rejected(rejected(&e.to_string()))),
        Algorithm::Unsupported(name) => Err(LoadError::Unsupported(name)),
    }
}

fn rsa(kp: Result<RsaKeyPair, ring::error::KeyRejected>) -> Result<(Algorithm, Vec<u8>, String), LoadError> {
    let kp = kp.map_err(|e| LoadError::Rejected(rejected(&e.to_string())))?;
    let bits = kp.public().modulus_len() * 8;
    Ok((Algorithm::Rsa, kp.public().as_ref().to_vec(), format!(" {bits}-bit")))
}

/// ring's terse reasons, in words.
fn rejected(reason: &str) -> String {
    match reason {
        "InconsistentComponents" => {
            "its parts are inconsistent (the embedded public key does not match the private key): the file is corrupt".into()
        }
        "InvalidEncoding" | "InvalidComponent" => "its encoding is invalid".into(),
        "PublicKeyIsMissing" => "it has no embedded public key (re-export it with `openssl pkey -in KEY -out fixed.key`)".into(),
        "TooSmall" => "the RSA key is shorter than 2048 bits, which modern TLS stacks refuse".into(),
        "TooLarge" => "the RSA key is longer than 8192 bits".into(),
        "WrongAlgorithm" => "its algorithm or curve is not the one it claims".into(),
        "VersionNotSupported" => "its PKCS#8 version is not supported".into(),
        other => format!("ring rejected it ({other})"),
    }
}

/// PrivateKeyInfo { 0, { id-ecPublicKey, curve }, OCTET STRING { ECPrivateKey } }.
fn sec1_to_pkcs8(sec1: &[u8], curve: &[u8]) -> Option<Vec<u8>> {
    let alg = [der::encode(der::OID, OID_EC)?, der::encode(der::OID, curve)?].concat();
    let body = [der::encode(der::INTEGER, &[0])?, der::encode(der::SEQUENCE, &alg)?, der::encode(der::OCTET_STRING, sec1)?].concat();
    der::encode(der::SEQUENCE, &body)
}

/// The key in the form rustls loads.
pub fn to_rustls(key: &Key) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
    match key.format {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.der.clone())),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(key.der.clone())),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(key.der.clone())),
    }
}

/// Run the check.
pub fn check(cert: Option<&X509Certificate<'_>>, key: Option<&Key>, key_given: bool) -> Check {
    let (Some(cert), Some(key)) = (cert, key) else {
        let why = if !key_given {
            "no --key given: the key was not compared (and --connect presents no client certificate)"
        } else if cert.is_none() {
            "the certificate could not be read (see files)"
        } else {
            "the key could not be read (see files)"
        };
        return Check::new("key", Status::Skip, why);
    };
    let (cert_alg, cert_pub) = cert_public_key(cert);
    let curve = cert.public_key().algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
    let curve_bytes = curve.as_ref().map(|o| o.as_bytes());
    match key_public_key(key, curve_bytes) {
        Err(LoadError::Unsupported(name)) => Check::new(
            "key",
            Status::Warn,
            format!("cannot compare a {name} key here (only RSA, EC P-256/P-384 and Ed25519)"),
        )
        .detail(vec![format!("key: {} ({})", key.origin, key.format.describe())])
        .fix("Compare by hand: `openssl x509 -noout -pubkey -in CERT | sha256sum` must equal `openssl pkey -pubout -in KEY | sha256sum`."),
        Err(LoadError::Rejected(why)) => Check::new("key", Status::Fail, format!("the private key cannot be loaded: {why}"))
            .cause("key_unreadable")
            .detail(vec![format!("key: {} ({})", key.origin, key.format.describe())])
            .fix("Use the key that was generated together with this certificate's CSR, as an unencrypted PEM file."),
        Ok((key_alg, key_pub, size)) => {
            let detail = vec![
                format!("key: {} ({}, {}{size})", key.origin, key.format.describe(), key_alg.name()),
                format!("certificate public key: {}, SHA-256 {}", cert_alg.name(), hex::sha256(&cert_pub)),
                format!("private key's public key: {}, SHA-256 {}", key_alg.name(), hex::sha256(&key_pub)),
            ];
            let fix = "Deploy the key generated with this certificate's CSR (or reissue the certificate for this key). \
                       To find the pair: `openssl x509 -noout -pubkey -in CERT | sha256sum` equals \
                       `openssl pkey -pubout -in KEY | sha256sum` for the right key.";
            if key_alg != cert_alg {
                Check::new(
                    "key",
                    Status::Fail,
                    format!(
                        "the private key does not belong to this certificate: the key is {}{size}, the certificate's key is {}",
                        key_alg.name(),
                        cert_alg.name()
                    ),
                )
                .cause("key_mismatch")
                .detail(detail)
                .fix(fix)
            } else if key_pub != cert_pub {
                Check::new(
                    "key",
                    Status::Fail,
                    format!("the private key does not belong to this certificate: both are {}, but the public keys differ", key_alg.name()),
                )
                .cause("key_mismatch")
                .detail(detail)
                .fix(fix)
            } else {
                Check::new(
                    "key",
                    Status::Pass,
                    format!("the private key ({}{size}, {}) belongs to the certificate", key_alg.name(), key.format.describe()),
                )
                .detail(detail)
            }
        }
    }
}
