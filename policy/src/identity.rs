//! Certificate → [`Identity`]: every field a policy can name, read from a leaf
//! certificate with `x509-parser`.
//!
//! Envoy hands a Wasm filter only the *first* URI and DNS SAN as attributes, so
//! the filter asks for the full PEM and parses it here. That is what makes OU,
//! issuer, serial and second-SAN rules possible.

use std::fmt;
use std::net::IpAddr;

/// What a verified client certificate says about its holder.
///
/// Strings are kept as the certificate spells them, except DNS SANs, which are
/// lower-cased (DNS names are case-insensitive), and the serial and fingerprint,
/// which are lower-case hex.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The subject DN in RFC 4514 order and syntax, for logs and display.
    pub subject: String,
    /// Every CN of the subject. A policy `cn` matches only when there is exactly one.
    pub common_names: Vec<String>,
    /// Every O of the subject.
    pub organizations: Vec<String>,
    /// Every OU of the subject.
    pub organizational_units: Vec<String>,
    /// The issuer DN, for logs and display.
    pub issuer: String,
    /// Every CN of the issuer. A policy `issuer_cn` matches only when there is exactly one.
    pub issuer_common_names: Vec<String>,
    /// Serial number: lower-case hex, no separators, no leading zeros ("0" for zero).
    pub serial: String,
    /// Every URI SAN (SPIFFE IDs live here), in certificate order.
    pub uri_sans: Vec<String>,
    /// Every DNS SAN, lower-cased, in certificate order.
    pub dns_sans: Vec<String>,
    /// Every email (rfc822Name) SAN, in certificate order.
    pub email_sans: Vec<String>,
    /// Every IP SAN, in certificate order.
    pub ip_sans: Vec<IpAddr>,
    /// Validity window start, seconds since the Unix epoch.
    pub not_before: i64,
    /// Validity window end, seconds since the Unix epoch.
    pub not_after: i64,
    /// SHA-256 of the certificate's DER encoding, lower-case hex (64 characters).
    pub sha256: String,
}

/// Why a certificate could not be turned into an [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertError {
    /// No `-----BEGIN CERTIFICATE-----` block was found, or its base64 is broken.
    NoPemCertificate,
    /// The bytes are not a DER X.509 certificate; carries the parser's message.
    NotACertificate(String),
    /// An attribute or SAN could not be decoded to text (carries which one).
    /// Fail closed: an undecodable CN must not silently vanish from the count.
    UndecodableField(&'static str),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::NoPemCertificate => f.write_str("no PEM CERTIFICATE block found"),
            CertError::NotACertificate(why) => write!(f, "not an X.509 certificate: {why}"),
            CertError::UndecodableField(which) => write!(f, "certificate field {which} cannot be decoded as text"),
        }
    }
}

impl std::error::Error for CertError {}

impl Identity {
    /// The subject CN when there is exactly one; `None` when there are none or several.
    pub fn common_name(&self) -> Option<&str> {
        match self.common_names.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }

    /// The issuer CN when there is exactly one.
    pub fn issuer_common_name(&self) -> Option<&str> {
        match self.issuer_common_names.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }

    /// The name to show for this identity in headers and logs: the first URI SAN
    /// (a SPIFFE ID), else the single CN, else the subject DN.
    pub fn display_name(&self) -> &str {
        if let Some(uri) = self.uri_sans.first() {
            return uri;
        }
        if let Some(cn) = self.common_name() {
            return cn;
        }
        &self.subject
    }

    /// Parse a DER-encoded leaf certificate.
    pub fn from_der(der: &[u8]) -> Result<Identity, CertError> {
        let _ = der;
        Err(CertError::NotACertificate("not implemented yet".into()))
    }

    /// Parse the first `CERTIFICATE` block of a PEM document (the leaf, as Envoy
    /// puts it first in `connection.peer_certificate`).
    pub fn from_pem(pem: &[u8]) -> Result<Identity, CertError> {
        let _ = pem;
        Err(CertError::NoPemCertificate)
    }

    /// PEM when the bytes look like PEM, DER otherwise: for files given on a command line.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Identity, CertError> {
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            Identity::from_pem(bytes)
        } else {
            Identity::from_der(bytes)
        }
    }
}
