//! Certificate → [`Identity`]: every field a policy can name, read from a leaf
//! certificate with `x509-parser`.
//!
//! Envoy hands a Wasm filter only the *first* URI and DNS SAN as attributes, so
//! the filter asks for the full PEM and parses it here. That is what makes OU,
//! issuer, serial and second-SAN rules possible.
//!
//! Here: [`Identity`], [`CertError`] and the parse that fills one in. The
//! parts it reads: `pem` (the first `CERTIFICATE` block), `name` (CN, O, OU
//! and the RFC 4514 form of subject and issuer), `san` (subject alternative
//! names).

use std::fmt;
use std::net::IpAddr;

mod name;
mod pem;
mod san;

use crate::hex;

use name::{rfc4514, NameAttributes, NameRole};

/// Every certificate field a principal can name, by the one name the policy
/// (`principals`), the identity-fields input of `mtls-authz test`, the
/// identity view that `explain` prints and the JSON Schema all use. Tests in
/// each of those places hold them to this list.
pub const MATCH_FIELDS: [&str; 10] = ["cn", "o", "ou", "uri_san", "dns_san", "email_san", "ip_san", "issuer_cn", "serial", "sha256"];

/// A distinguished name as every part of the product spells it: RFC 4514
/// (RDNs in reverse order, `,` between them, values escaped), the form of
/// [`Identity::subject`] and [`Identity::issuer`]. The doctor names CAs and
/// certificates with it too, so `explain` and `doctor` show one subject the same way.
pub fn distinguished_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    rfc4514(name)
}
use pem::first_pem_certificate;
use san::Sans;

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
    /// Every DNS SAN, lower-cased, in certificate order. A trailing dot is kept
    /// as written; matching ignores it (`api.shop.test.` is `api.shop.test`).
    pub dns_sans: Vec<String>,
    /// Every email (rfc822Name) SAN, in certificate order, as written; matching
    /// ignores the case of the domain, never of the local part.
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
            CertError::UndecodableField(which) => {
                write!(f, "certificate field {which} cannot be decoded as text")
            }
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

    /// The bare name: the first URI SAN (a SPIFFE ID), else the single CN, else
    /// the subject DN. It does not say which field it is, so a CN can spell a
    /// URI SAN; the upstream is told [`Identity::upstream_principal`] instead.
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
    ///
    /// The input must be exactly one certificate: trailing bytes are rejected, so the
    /// fingerprint always covers everything that was parsed. Fails closed: a CN, O, OU,
    /// issuer CN or SAN that cannot be decoded is an error, never a silently missing value.
    pub fn from_der(der: &[u8]) -> Result<Identity, CertError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| CertError::NotACertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::NotACertificate(format!("{} trailing bytes after the certificate", rest.len())));
        }
        // `rest` is empty, so `der` is exactly the certificate's encoding.
        let sha256 = hex::sha256(der);

        let tbs = &cert.tbs_certificate;
        let subject_attrs = NameAttributes::read(&tbs.subject, NameRole::Subject)?;
        let issuer_attrs = NameAttributes::read(&tbs.issuer, NameRole::Issuer)?;
        let sans = Sans::read(&cert)?;

        Ok(Identity {
            subject: rfc4514(&tbs.subject),
            common_names: subject_attrs.common_names,
            organizations: subject_attrs.organizations,
            organizational_units: subject_attrs.organizational_units,
            issuer: rfc4514(&tbs.issuer),
            issuer_common_names: issuer_attrs.common_names,
            serial: hex::serial(tbs.raw_serial()),
            uri_sans: sans.uri,
            dns_sans: sans.dns,
            email_sans: sans.email,
            ip_sans: sans.ip,
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            sha256,
        })
    }

    /// Parse the first `CERTIFICATE` block of a PEM document (the leaf, as Envoy
    /// puts it first in `connection.peer_certificate`).
    ///
    /// Text before the block and other kinds of blocks (keys, parameters) before it
    /// are skipped; CRLF line endings are fine. Only the *first* `CERTIFICATE` block
    /// is ever considered: if it is broken this fails rather than falling back to a
    /// later block, which in a chain would be the issuer's certificate.
    pub fn from_pem(pem: &[u8]) -> Result<Identity, CertError> {
        let der = first_pem_certificate(pem)?;
        Identity::from_der(&der)
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

#[cfg(test)]
mod tests {
    use super::name::*;
    use super::*;
    use proptest::prelude::*;
    use rcgen::string::{BmpString, TeletexString, UniversalString};
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName, DnType, DnValue, IsCa,
        KeyPair, SanType, SerialNumber,
    };
    use std::borrow::Cow;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::OnceLock;
    use x509_parser::asn1_rs::{Any, Class, Header, Length, Oid, Tag};
    use x509_parser::x509::{AttributeTypeAndValue, RelativeDistinguishedName, X509Name};

    // Same OIDs as DnType::CommonName etc., but distinct keys in rcgen's
    // DistinguishedName map, which is how we get a second CN / O / OU.
    const CN_AGAIN: &[u64] = &[2, 5, 4, 3];
    const O_AGAIN: &[u64] = &[2, 5, 4, 10];
    const OU_AGAIN: &[u64] = &[2, 5, 4, 11];
    const SAN_OID: &[u64] = &[2, 5, 29, 17];

    type Ca = CertifiedIssuer<'static, KeyPair>;

    fn ca_named(cn: DnValue) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Acme");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn ca() -> Ca {
        ca_named("Acme Test Root CA".into())
    }

    /// Bare leaf parameters: no subject attributes, no SANs.
    fn bare_params() -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
    }

    fn params_with_cn(cn: impl Into<DnValue>) -> CertificateParams {
        let mut params = bare_params();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
    }

    fn sign(params: &CertificateParams, ca: &Ca) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, ca).unwrap().der().to_vec()
    }

    /// The leaf with everything: several O/OU, every SAN kind, fixed serial and dates.
    fn full_params() -> CertificateParams {
        let mut params = bare_params();
        let dn = &mut params.distinguished_name;
        dn.push(DnType::CountryName, DnValue::PrintableString("DE".try_into().unwrap()));
        dn.push(DnType::OrganizationName, "Acme Corp");
        dn.push(DnType::CustomDnType(O_AGAIN.to_vec()), "Acme Payments GmbH");
        dn.push(DnType::OrganizationalUnitName, "payments");
        dn.push(DnType::CustomDnType(OU_AGAIN.to_vec()), "eu-west");
        dn.push(DnType::CommonName, "payments-api");
        params.subject_alt_names = vec![
            SanType::URI("spiffe://acme.test/ns/prod/sa/payments".try_into().unwrap()),
            SanType::DnsName("Payments.Acme.TEST".try_into().unwrap()),
            SanType::URI("spiffe://acme.test/ns/prod/sa/legacy".try_into().unwrap()),
            SanType::DnsName("API.example.COM".try_into().unwrap()),
            SanType::Rfc822Name("Ops@acme.test".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        ];
        // High bit set, so DER must carry a leading 0x00 byte.
        params.serial_number = Some(SerialNumber::from_slice(&[0x8f, 0x00, 0x1a, 0x2b]));
        params.not_before = date_time_ymd(2024, 1, 2);
        params.not_after = date_time_ymd(2051, 6, 15); // GeneralizedTime (>= 2050)
        params
    }

    struct Fixture {
        ca_der: Vec<u8>,
        ca_pem: String,
        leaf_der: Vec<u8>,
        leaf_pem: String,
    }

    /// One CA + full leaf, shared by the tests that only read them.
    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let ca = ca();
            let key = KeyPair::generate().unwrap();
            let leaf = full_params().signed_by(&key, &ca).unwrap();
            Fixture { ca_der: ca.der().to_vec(), ca_pem: ca.pem(), leaf_der: leaf.der().to_vec(), leaf_pem: leaf.pem() }
        })
    }

    fn ring_sha256_hex(bytes: &[u8]) -> String {
        ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Replace the single occurrence of `from` (same length as `to`) in `der`.
    fn patch(der: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let hits: Vec<usize> = der.windows(from.len()).enumerate().filter(|(_, w)| *w == from).map(|(i, _)| i).collect();
        assert_eq!(hits.len(), 1, "patch target must occur exactly once");
        der[hits[0]..hits[0] + to.len()].copy_from_slice(to);
    }

    /// Short-form DER TLV.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 0x80);
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }

    /// A leaf whose only SAN extension has the given GeneralNames contents.
    fn with_raw_san(entries: &[Vec<u8>]) -> Result<Identity, CertError> {
        let mut params = params_with_cn("raw-san");
        let names = tlv(0x30, &entries.concat());
        params.custom_extensions = vec![CustomExtension::from_oid_content(SAN_OID, names)];
        Identity::from_der(&sign(&params, &ca()))
    }

    // ---- the happy path ------------------------------------------------------

    #[test]
    fn identity_from_der_has_every_field() {
        let f = fixture();
        let id = Identity::from_der(&f.leaf_der).unwrap();

        assert_eq!(id.subject, "CN=payments-api,OU=eu-west,OU=payments,O=Acme Payments GmbH,O=Acme Corp,C=DE");
        assert_eq!(id.common_names, ["payments-api"]);
        assert_eq!(id.common_name(), Some("payments-api"));
        assert_eq!(id.organizations, ["Acme Corp", "Acme Payments GmbH"]);
        assert_eq!(id.organizational_units, ["payments", "eu-west"]);

        assert_eq!(id.issuer, "CN=Acme Test Root CA,O=Acme");
        assert_eq!(id.issuer_common_names, ["Acme Test Root CA"]);
        assert_eq!(id.issuer_common_name(), Some("Acme Test Root CA"));

        assert_eq!(id.serial, "8f001a2b");

        assert_eq!(id.uri_sans, ["spiffe://acme.test/ns/prod/sa/payments", "spiffe://acme.test/ns/prod/sa/legacy"]);
        assert_eq!(id.dns_sans, ["payments.acme.test", "api.example.com"]);
        assert_eq!(id.email_sans, ["Ops@acme.test"], "emails are kept as spelled");
        assert_eq!(id.ip_sans, [IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),]);

        assert_eq!(id.not_before, 1_704_153_600); // 2024-01-02T00:00:00Z
        assert_eq!(id.not_after, 2_570_400_000); // 2051-06-15T00:00:00Z

        assert_eq!(id.sha256.len(), 64);
        assert_eq!(id.sha256, ring_sha256_hex(&f.leaf_der));
        assert_eq!(id.display_name(), "spiffe://acme.test/ns/prod/sa/payments");
    }

    #[test]
    fn serial_has_its_der_leading_zero_byte_removed() {
        let f = fixture();
        let (_, cert) = x509_parser::parse_x509_certificate(&f.leaf_der).unwrap();
        assert_eq!(cert.tbs_certificate.raw_serial(), [0x00, 0x8f, 0x00, 0x1a, 0x2b]);
        assert_eq!(Identity::from_der(&f.leaf_der).unwrap().serial, "8f001a2b");
    }

    #[test]
    fn serials_drop_leading_zero_digits() {
        assert_eq!(hex::serial(&[]), "0");
        assert_eq!(hex::serial(&[0x00]), "0");
        assert_eq!(hex::serial(&[0x00, 0x00]), "0");
        assert_eq!(hex::serial(&[0x01]), "1");
        assert_eq!(hex::serial(&[0x0a, 0xbc]), "abc");
        assert_eq!(hex::serial(&[0x00, 0xff, 0x00]), "ff00");
        assert_eq!(hex::serial(&[0x10, 0x00]), "1000");

        let mut params = params_with_cn("small serial");
        params.serial_number = Some(SerialNumber::from_slice(&[0x0a, 0xbc]));
        assert_eq!(Identity::from_der(&sign(&params, &ca())).unwrap().serial, "abc");
    }

    #[test]
    fn sha256_matches_an_openssl_style_fingerprint() {
        let f = fixture();
        let id = Identity::from_der(&f.leaf_der).unwrap();
        // `openssl x509 -noout -fingerprint -sha256` prints "AB:CD:…" over the DER.
        let openssl_style: Vec<String> =
            ring::digest::digest(&ring::digest::SHA256, &f.leaf_der).as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(id.sha256, openssl_style.join(":").replace(':', "").to_lowercase());
        assert!(id.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // A different certificate, a different fingerprint.
        assert_ne!(id.sha256, Identity::from_der(&f.ca_der).unwrap().sha256);
    }

    #[test]
    fn dates_before_1970_are_negative() {
        let mut params = params_with_cn("old");
        params.not_before = date_time_ymd(1969, 12, 31);
        params.not_after = date_time_ymd(2049, 12, 31); // last UTCTime year
        let id = Identity::from_der(&sign(&params, &ca())).unwrap();
        assert_eq!(id.not_before, -86_400);
        assert_eq!(id.not_after, 2_524_521_600);
    }

    #[test]
    fn certificate_without_sans_or_subject_attributes() {
        let id = Identity::from_der(&sign(&bare_params(), &ca())).unwrap();
        assert_eq!(id.subject, "");
        assert!(id.common_names.is_empty());
        assert!(id.organizations.is_empty() && id.organizational_units.is_empty());
        assert!(id.uri_sans.is_empty() && id.dns_sans.is_empty());
        assert!(id.email_sans.is_empty() && id.ip_sans.is_empty());
        assert_eq!(id.common_name(), None);
        assert_eq!(id.display_name(), "");
    }

    #[test]
    fn two_common_names_mean_no_common_name() {
        let mut params = params_with_cn("alice");
        params.distinguished_name.push(DnType::CustomDnType(CN_AGAIN.to_vec()), "bob");
        let id = Identity::from_der(&sign(&params, &ca())).unwrap();
        assert_eq!(id.common_names, ["alice", "bob"]);
        assert_eq!(id.common_name(), None);
        assert_eq!(id.subject, "CN=bob,CN=alice");
        // No URI SAN and no single CN: display falls back to the subject DN.
        assert_eq!(id.display_name(), "CN=bob,CN=alice");
    }

    #[test]
    fn display_name_prefers_the_single_cn_without_uri_sans() {
        let id = Identity::from_der(&sign(&params_with_cn("svc"), &ca())).unwrap();
        assert_eq!(id.display_name(), "svc");
    }

    #[test]
    fn two_issuer_common_names_mean_no_issuer_common_name() {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, "Root A");
        ca_params.distinguished_name.push(DnType::CustomDnType(CN_AGAIN.to_vec()), "Root B");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let id = Identity::from_der(&sign(&params_with_cn("leaf"), &ca)).unwrap();
        assert_eq!(id.issuer_common_names, ["Root A", "Root B"]);
        assert_eq!(id.issuer_common_name(), None);
    }

    // ---- string types ----------------------------------------------------------

    #[test]
    fn every_string_type_decodes() {
        let mut params = bare_params();
        let dn = &mut params.distinguished_name;
        dn.push(DnType::CommonName, DnValue::BmpString(BmpString::try_from("Zürich-服务").unwrap()));
        dn.push(DnType::OrganizationName, DnValue::UniversalString(UniversalString::try_from("Ünïcode 🦀").unwrap()));
        dn.push(DnType::CustomDnType(O_AGAIN.to_vec()), DnValue::TeletexString(TeletexString::try_from("Teletex").unwrap()));
        dn.push(DnType::OrganizationalUnitName, DnValue::PrintableString("Printable".try_into().unwrap()));
        dn.push(DnType::CustomDnType(OU_AGAIN.to_vec()), DnValue::Ia5String("ia5@x".try_into().unwrap()));
        let id = Identity::from_der(&sign(&params, &ca())).unwrap();
        assert_eq!(id.common_names, ["Zürich-服务"]);
        assert_eq!(id.organizations, ["Ünïcode 🦀", "Teletex"]);
        assert_eq!(id.organizational_units, ["Printable", "ia5@x"]);
    }

    #[test]
    fn bmp_string_issuer_cn_decodes() {
        let ca = ca_named(DnValue::BmpString(BmpString::try_from("Wurzel-CA Ä").unwrap()));
        let id = Identity::from_der(&sign(&params_with_cn("leaf"), &ca)).unwrap();
        assert_eq!(id.issuer_common_name(), Some("Wurzel-CA Ä"));
        assert_eq!(id.issuer, "CN=Wurzel-CA Ä,O=Acme");
    }

    #[test]
    fn teletex_string_is_read_as_latin1() {
        let mut params = bare_params();
        params.distinguished_name.push(DnType::OrganizationName, DnValue::TeletexString(TeletexString::try_from("caf_Q9").unwrap()));
        let mut der = sign(&params, &ca());
        patch(&mut der, b"caf_Q9", b"caf\xe9Q9");
        assert_eq!(Identity::from_der(&der).unwrap().organizations, ["caféQ9"]);
    }

    #[test]
    fn undecodable_subject_cn_is_an_error() {
        let mut der = sign(&params_with_cn("BADUTF8"), &ca());
        patch(&mut der, b"BADUTF8", b"BAD\xffTF8");
        assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject CN")));
    }

    #[test]
    fn unsupported_string_type_for_cn_is_an_error() {
        for tag in [0x1b /* GeneralString */, 0x19 /* GraphicString */, 0x04 /* OCTET STRING */] {
            let mut der = sign(&params_with_cn("GENSTR"), &ca());
            patch(&mut der, b"\x0c\x06GENSTR", &[&[tag, 0x06][..], b"GENSTR"].concat());
            assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject CN")), "tag {tag:#x}");
        }
    }

    #[test]
    fn context_specific_or_constructed_cn_is_never_text() {
        for tag in [0x8c /* [12] IMPLICIT */, 0x2c /* constructed UTF8String */] {
            let mut der = sign(&params_with_cn("CTXSTR"), &ca());
            patch(&mut der, b"\x0c\x06CTXSTR", &[&[tag, 0x06][..], b"CTXSTR"].concat());
            assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject CN")), "tag {tag:#x}");
        }
    }

    #[test]
    fn undecodable_subject_o_and_ou_are_errors() {
        // BMPString with a lone high surrogate.
        let mut params = bare_params();
        params.distinguished_name.push(DnType::OrganizationName, DnValue::BmpString(BmpString::try_from("OX").unwrap()));
        let mut der = sign(&params, &ca());
        patch(&mut der, b"\x1e\x04\x00O\x00X", b"\x1e\x04\x00O\xd8\x00");
        assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject O")));

        // UniversalString with a code point above U+10FFFF.
        let mut params = bare_params();
        params.distinguished_name.push(DnType::OrganizationalUnitName, DnValue::UniversalString(UniversalString::try_from("UX").unwrap()));
        let mut der = sign(&params, &ca());
        patch(&mut der, b"\x00\x00\x00U\x00\x00\x00X", b"\x00\x00\x00U\x00\x11\x00\x00");
        assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject OU")));
    }

    #[test]
    fn non_ascii_printable_string_is_an_error() {
        let mut der = sign(&params_with_cn(DnValue::PrintableString("PRTXYZ".try_into().unwrap())), &ca());
        // Valid UTF-8 ("é"), so x509-parser's lenient PrintableString path accepts it.
        patch(&mut der, b"PRTXYZ", b"PRT\xc3\xa9Z");
        assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("subject CN")));
    }

    #[test]
    fn undecodable_issuer_cn_is_an_error() {
        let ca = ca_named("ISSUERCN".into());
        let mut der = sign(&params_with_cn("leaf"), &ca);
        patch(&mut der, b"ISSUERCN", b"ISSU\xffRCN");
        assert_eq!(Identity::from_der(&der), Err(CertError::UndecodableField("issuer CN")));
    }

    #[test]
    fn undecodable_attribute_we_do_not_read_shows_as_hex_in_the_subject() {
        let mut params = params_with_cn("leaf");
        params.distinguished_name.push(DnType::CountryName, "ZZ");
        let mut der = sign(&params, &ca());
        patch(&mut der, b"\x0c\x02ZZ", b"\x1b\x02ZZ");
        let id = Identity::from_der(&der).unwrap();
        assert_eq!(id.subject, "C=#1b025a5a,CN=leaf");
        assert_eq!(id.common_name(), Some("leaf"));
    }

    #[test]
    fn decode_directory_string_rules() {
        fn any(class: Class, constructed: bool, tag: Tag, data: &[u8]) -> Any<'_> {
            Any::new(Header::new(class, constructed, tag, Length::Definite(data.len())), data)
        }
        let u = Class::Universal;
        let ok = |tag, data| decode_directory_string(&any(u, false, tag, data));
        assert_eq!(ok(Tag::Utf8String, "grüß".as_bytes()).as_deref(), Some("grüß"));
        assert_eq!(ok(Tag::Utf8String, b"\xc3"), None);
        assert_eq!(ok(Tag::Utf8String, b"").as_deref(), Some(""));
        assert_eq!(ok(Tag::PrintableString, b"a*b@c_").as_deref(), Some("a*b@c_"));
        assert_eq!(ok(Tag::PrintableString, b"\x80"), None);
        assert_eq!(ok(Tag::Ia5String, b"x@y").as_deref(), Some("x@y"));
        assert_eq!(ok(Tag::Ia5String, "é".as_bytes()), None);
        assert_eq!(ok(Tag::NumericString, b"0123 45").as_deref(), Some("0123 45"));
        assert_eq!(ok(Tag::VisibleString, b"vis").as_deref(), Some("vis"));
        assert_eq!(ok(Tag::BmpString, b"\x00A\x00\xe9").as_deref(), Some("Aé"));
        assert_eq!(ok(Tag::BmpString, b"\x00A\x00"), None, "odd length");
        assert_eq!(ok(Tag::BmpString, b"\xdc\x00"), None, "lone low surrogate");
        assert_eq!(ok(Tag::BmpString, b"\xd8\x3e\xdd\x80").as_deref(), Some("🦀"));
        assert_eq!(ok(Tag::UniversalString, b"\x00\x01\xf9\x80").as_deref(), Some("🦀"));
        assert_eq!(ok(Tag::UniversalString, b"\x00\x00\x00"), None, "not a multiple of 4");
        assert_eq!(ok(Tag::UniversalString, b"\x00\x00\xd8\x00"), None, "surrogate");
        assert_eq!(ok(Tag::TeletexString, b"\xe9\xff").as_deref(), Some("éÿ"));
        assert_eq!(ok(Tag::GeneralString, b"x"), None);
        assert_eq!(ok(Tag::OctetString, b"x"), None);
        assert_eq!(decode_directory_string(&any(Class::ContextSpecific, false, Tag::Utf8String, b"x")), None);
        assert_eq!(decode_directory_string(&any(Class::Private, false, Tag::Utf8String, b"x")), None);
        assert_eq!(decode_directory_string(&any(u, true, Tag::Utf8String, b"x")), None);
    }

    // ---- RFC 4514 formatting ---------------------------------------------------

    #[test]
    fn subject_values_are_escaped_per_rfc4514() {
        let cases = [
            ("a,b+c;d", r"a\,b\+c\;d"),
            ("<x>", r"\<x\>"),
            ("q\"uo\\te", r#"q\"uo\\te"#),
            ("#lead", r"\#lead"),
            ("mid#dle", "mid#dle"),
            (" both ", r"\ both\ "),
            (" ", r"\ "),
            ("in side", "in side"),
            ("line\r\nbreak\0", r"line\0D\0Abreak\00"),
            ("tab\tdel\u{7f}c1\u{85}", r"tab\09del\7Fc1\C2\85"),
            ("ümlaut", "ümlaut"),
            ("a=b", "a=b"),
        ];
        for (value, escaped) in cases {
            let id = Identity::from_der(&sign(&params_with_cn(value), &ca())).unwrap();
            assert_eq!(id.subject, format!("CN={escaped}"), "value {value:?}");
            assert_eq!(id.common_names, [value], "the typed field keeps the raw value");
        }
    }

    #[test]
    fn unknown_attribute_types_are_dotted_oids_with_hex_values() {
        let mut params = params_with_cn("leaf");
        params.distinguished_name.push(DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), "a@b");
        params.distinguished_name.push(DnType::CustomDnType(vec![2, 999, 3]), "x");
        let id = Identity::from_der(&sign(&params, &ca())).unwrap();
        assert_eq!(id.subject, "2.999.3=#0c0178,1.2.840.113549.1.9.1=#0c03614062,CN=leaf");
    }

    #[test]
    fn multi_valued_rdns_are_joined_with_plus() {
        fn attr(oid: &'static [u8], tag: Tag, value: &'static [u8]) -> AttributeTypeAndValue<'static> {
            AttributeTypeAndValue::new(
                Oid::new(Cow::Borrowed(oid)),
                Any::new(Header::new(Class::Universal, false, tag, Length::Definite(value.len())), value),
            )
        }
        let name = X509Name::new(
            vec![
                RelativeDistinguishedName::new(vec![attr(OID_O, Tag::Utf8String, b"Org")]),
                RelativeDistinguishedName::new(vec![
                    attr(OID_CN, Tag::Utf8String, b"a+b"),
                    attr(OID_OU, Tag::PrintableString, b"unit"),
                    attr(&[0x2a, 0x03], Tag::Utf8String, b"z"),
                ]),
            ],
            &[],
        );
        assert_eq!(rfc4514(&name), r"CN=a\+b+OU=unit+1.2.3=#0c017a,O=Org");
        let attrs = NameAttributes::read(&name, NameRole::Subject).unwrap();
        assert_eq!(attrs.common_names, ["a+b"]);
        assert_eq!(attrs.organizational_units, ["unit"]);
        assert_eq!(attrs.organizations, ["Org"]);
    }

    #[test]
    fn oid_dotted_forms() {
        assert_eq!(oid_dotted(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(oid_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
        assert_eq!(oid_dotted(&[0x09, 0x92, 0x26]), "0.9.2342");
        assert_eq!(oid_dotted(&[0x88, 0x37, 0x03]), "2.999.3");
        assert_eq!(oid_dotted(&[]), "OID.");
        assert_eq!(oid_dotted(&[0x2a, 0x86]), "OID.2a86", "truncated arc");
        assert_eq!(oid_dotted(&[0x2a, 0x80, 0x01]), "OID.2a8001", "non-minimal arc");
        assert_eq!(oid_dotted(&[0xff; 12]), format!("OID.{}", "ff".repeat(12)), "overflow");
    }

    #[test]
    fn der_encoding_rebuilds_headers() {
        let long = vec![b'a'; 200];
        let any = Any::new(Header::new(Class::Universal, false, Tag::Utf8String, Length::Definite(200)), &long);
        let enc = der_encoding(&any);
        assert_eq!(enc[..3], [0x0c, 0x81, 200]);
        assert_eq!(enc.len(), 203);
        let any = Any::new(Header::new(Class::ContextSpecific, true, Tag(40), Length::Definite(1)), b"x");
        assert_eq!(der_encoding(&any), [0xbf, 0x28, 0x01, b'x']);
        let any = Any::new(Header::new(Class::Private, false, Tag(200), Length::Definite(0)), b"");
        assert_eq!(der_encoding(&any), [0xdf, 0x81, 0x48, 0x00]);
    }

    // ---- subject alternative names -----------------------------------------

    #[test]
    fn duplicate_san_extension_is_an_error() {
        let mut params = params_with_cn("dup");
        params.subject_alt_names = vec![SanType::DnsName("a.test".try_into().unwrap())];
        params.custom_extensions = vec![CustomExtension::from_oid_content(SAN_OID, tlv(0x30, &tlv(0x82, b"b.test")))];
        let err = Identity::from_der(&sign(&params, &ca())).unwrap_err();
        assert!(matches!(err, CertError::NotACertificate(ref m) if m.contains("subjectAltName")), "{err}");
    }

    #[test]
    fn unparsable_san_extension_is_an_error() {
        // A universal INTEGER where a context-tagged GeneralName must be.
        assert_eq!(with_raw_san(&[tlv(0x02, b"\x01")]), Err(CertError::UndecodableField("subjectAltName")));
        // Not even a SEQUENCE.
        let mut params = params_with_cn("raw-san");
        params.custom_extensions = vec![CustomExtension::from_oid_content(SAN_OID, tlv(0x04, b"x"))];
        assert_eq!(Identity::from_der(&sign(&params, &ca())), Err(CertError::UndecodableField("subjectAltName")));
    }

    #[test]
    fn raw_san_entries_are_read_in_order() {
        let id = with_raw_san(&[
            tlv(0x86, b"spiffe://t/a"),
            tlv(0x82, b"MiXeD.Example"),
            tlv(0x86, b"spiffe://t/b"),
            tlv(0x87, &[192, 0, 2, 1]),
            tlv(0x81, b"x@y.test"),
            tlv(0x87, &[0; 16]),
        ])
        .unwrap();
        assert_eq!(id.uri_sans, ["spiffe://t/a", "spiffe://t/b"]);
        assert_eq!(id.dns_sans, ["mixed.example"]);
        assert_eq!(id.email_sans, ["x@y.test"]);
        assert_eq!(id.ip_sans, [IpAddr::from([192, 0, 2, 1]), IpAddr::from([0u8; 16])]);
    }

    #[test]
    fn ip_san_of_a_wrong_length_is_an_error() {
        for len in [0usize, 3, 5, 8, 15, 17, 32] {
            assert_eq!(with_raw_san(&[tlv(0x87, &vec![1; len])]), Err(CertError::UndecodableField("IP SAN")), "length {len}");
        }
    }

    #[test]
    fn non_ascii_or_invalid_utf8_sans_are_errors() {
        for (tag, field) in [(0x81, "email SAN"), (0x82, "DNS SAN"), (0x86, "URI SAN")] {
            assert_eq!(with_raw_san(&[tlv(tag, "ü.test".as_bytes())]), Err(CertError::UndecodableField(field)));
            assert_eq!(with_raw_san(&[tlv(tag, b"\xff.test")]), Err(CertError::UndecodableField(field)));
        }
    }

    #[test]
    fn other_general_name_kinds_are_skipped() {
        // otherName (UPN-like), directoryName, registeredID, then a URI.
        let other_name = tlv(0xa0, &[tlv(0x06, &[0x2b, 0x06, 0x01]), tlv(0xa0, &tlv(0x0c, b"upn"))].concat());
        let dir_name = tlv(0xa4, &tlv(0x30, &tlv(0x31, &tlv(0x30, &[tlv(0x06, OID_CN), tlv(0x0c, b"dn")].concat()))));
        let registered_id = tlv(0x88, &[0x2a, 0x03]);
        let id = with_raw_san(&[other_name, dir_name, registered_id, tlv(0x86, b"spiffe://t/x")]).unwrap();
        assert_eq!(id.uri_sans, ["spiffe://t/x"]);
        assert!(id.dns_sans.is_empty() && id.email_sans.is_empty() && id.ip_sans.is_empty());
    }

    #[test]
    fn unknown_general_name_tag_is_an_error() {
        assert_eq!(with_raw_san(&[tlv(0x89, b"??")]), Err(CertError::UndecodableField("subjectAltName")));
    }

    #[test]
    fn empty_san_sequence_means_no_sans() {
        let id = with_raw_san(&[]).unwrap();
        assert!(id.uri_sans.is_empty() && id.dns_sans.is_empty());
    }

    // ---- DER framing ---------------------------------------------------------

    #[test]
    fn trailing_bytes_after_der_are_rejected() {
        let f = fixture();
        for tail in [&b"\x00"[..], b"junk", &f.ca_der] {
            let mut der = f.leaf_der.clone();
            der.extend_from_slice(tail);
            let err = Identity::from_der(&der).unwrap_err();
            assert!(matches!(err, CertError::NotACertificate(ref m) if m.contains("trailing")), "{err}");
        }
    }

    #[test]
    fn every_truncation_of_der_is_an_error() {
        let der = &fixture().leaf_der;
        for len in 0..der.len() {
            assert!(matches!(Identity::from_der(&der[..len]), Err(CertError::NotACertificate(_))), "prefix of {len} bytes");
        }
    }

    #[test]
    fn empty_and_garbage_inputs_are_errors() {
        assert!(matches!(Identity::from_der(b""), Err(CertError::NotACertificate(_))));
        assert!(matches!(Identity::from_der(b"\x30\x00"), Err(CertError::NotACertificate(_))));
        assert!(matches!(Identity::from_der(b"hello world"), Err(CertError::NotACertificate(_))));
        assert_eq!(Identity::from_pem(b""), Err(CertError::NoPemCertificate));
        assert_eq!(Identity::from_pem(b"hello world"), Err(CertError::NoPemCertificate));
    }

    // ---- PEM -------------------------------------------------------------------

    #[test]
    fn pem_matches_der() {
        let f = fixture();
        let from_pem = Identity::from_pem(f.leaf_pem.as_bytes()).unwrap();
        assert_eq!(from_pem, Identity::from_der(&f.leaf_der).unwrap());
        assert_eq!(from_pem.sha256, ring_sha256_hex(&f.leaf_der), "hash of the DER, not the PEM text");
        assert_eq!(Identity::from_pem_or_der(f.leaf_pem.as_bytes()).unwrap(), from_pem);
        assert_eq!(Identity::from_pem_or_der(&f.leaf_der).unwrap(), from_pem);
    }

    #[test]
    fn pem_with_leading_junk_other_blocks_and_crlf() {
        let f = fixture();
        let key_block = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        let text =
            format!("Subject: whatever\nsome junk -----BEGIN nothing\n{key_block}\n{}{}", f.leaf_pem, f.ca_pem).replace('\n', "\r\n");
        let id = Identity::from_pem(text.as_bytes()).unwrap();
        assert_eq!(id.sha256, ring_sha256_hex(&f.leaf_der), "the first CERTIFICATE block is the leaf");
        assert_eq!(id.common_name(), Some("payments-api"));
    }

    #[test]
    fn pem_chain_yields_the_first_certificate() {
        let f = fixture();
        let chain = format!("{}{}", f.ca_pem, f.leaf_pem);
        assert_eq!(Identity::from_pem(chain.as_bytes()).unwrap().sha256, ring_sha256_hex(&f.ca_der));
    }

    #[test]
    fn broken_first_block_does_not_fall_back_to_the_issuer() {
        let f = fixture();
        // Corrupt base64 in the leaf, followed by the intact CA certificate.
        let broken_leaf = f.leaf_pem.replacen("MII", "M!I", 1);
        assert_ne!(broken_leaf, f.leaf_pem);
        let chain = format!("{broken_leaf}{}", f.ca_pem);
        assert_eq!(Identity::from_pem(chain.as_bytes()), Err(CertError::NoPemCertificate));

        // Unterminated leaf block, then the CA.
        let unterminated = f.leaf_pem.replace("-----END CERTIFICATE-----", "");
        let chain = format!("{unterminated}{}", f.ca_pem);
        assert_eq!(Identity::from_pem(chain.as_bytes()), Err(CertError::NoPemCertificate));
        assert_eq!(Identity::from_pem(unterminated.as_bytes()), Err(CertError::NoPemCertificate));
    }

    #[test]
    fn pem_block_needs_a_matching_end_line() {
        let f = fixture();
        let wrong_end = f.leaf_pem.replace("-----END CERTIFICATE-----", "-----END PRIVATE KEY-----");
        assert_eq!(Identity::from_pem(wrong_end.as_bytes()), Err(CertError::NoPemCertificate));
        let trailing_space = f.leaf_pem.replace("-----END CERTIFICATE-----", "-----END CERTIFICATE-----  \t");
        assert!(Identity::from_pem(trailing_space.as_bytes()).is_ok());
    }

    #[test]
    fn pem_that_only_has_other_block_types() {
        for label in ["CERTIFICATE REQUEST", "TRUSTED CERTIFICATE", "X509 CRL", "PRIVATE KEY"] {
            let text = format!("-----BEGIN {label}-----\nMAA=\n-----END {label}-----\n");
            assert_eq!(Identity::from_pem(text.as_bytes()), Err(CertError::NoPemCertificate), "{label}");
        }
    }

    #[test]
    fn pem_whose_contents_are_not_a_certificate() {
        let text = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert!(matches!(Identity::from_pem(text.as_bytes()), Err(CertError::NotACertificate(_))));
        let empty = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        assert!(matches!(Identity::from_pem(empty.as_bytes()), Err(CertError::NotACertificate(_))));
    }

    #[test]
    fn pem_with_invalid_utf8_is_handled() {
        let f = fixture();
        let mut text = b"\xff\xfe junk\n".to_vec();
        text.extend_from_slice(f.leaf_pem.as_bytes());
        assert!(Identity::from_pem(&text).is_ok(), "non-UTF-8 text before the block is skipped");
        let mut inside = f.leaf_pem.clone().into_bytes();
        let at = inside.iter().position(|&b| b == b'\n').unwrap() + 1;
        inside.insert(at, 0xff);
        assert_eq!(Identity::from_pem(&inside), Err(CertError::NoPemCertificate));
    }

    // ---- never panic -----------------------------------------------------------

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = Identity::from_der(&bytes);
            let _ = Identity::from_pem(&bytes);
            let _ = Identity::from_pem_or_der(&bytes);
        }

        #[test]
        fn arbitrary_text_in_a_pem_block_never_panics(body in "[A-Za-z0-9+/=\r\n -]{0,600}") {
            let text = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
            let _ = Identity::from_pem(text.as_bytes());
        }

        #[test]
        fn mutated_certificates_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut der = fixture().leaf_der.clone();
            for (at, byte) in edits {
                let i = at.index(der.len());
                der[i] = byte;
            }
            if truncate {
                der.truncate(cut.index(der.len()));
            }
            if let Ok(id) = Identity::from_der(&der) {
                prop_assert_eq!(id.sha256, ring_sha256_hex(&der));
            }
            let pem = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64(&der)
            );
            let _ = Identity::from_pem(pem.as_bytes());
        }
    }

    /// Minimal standard base64 (with padding) for building PEM in tests.
    fn base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn test_base64_helper_round_trips_through_pem() {
        let f = fixture();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64(&f.leaf_der));
        assert_eq!(Identity::from_pem(pem.as_bytes()).unwrap().sha256, ring_sha256_hex(&f.leaf_der));
    }
}
