//! Subject alternative names: every URI, DNS, email and IP SAN.

use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

use super::CertError;

/// The SANs an [`Identity`](super::Identity) keeps, in certificate order.
#[derive(Default)]
pub(super) struct Sans {
    pub(super) uri: Vec<String>,
    pub(super) dns: Vec<String>,
    pub(super) email: Vec<String>,
    pub(super) ip: Vec<IpAddr>,
}

impl Sans {
    /// Every URI, DNS, email and IP SAN. A duplicated or unparsable subjectAltName
    /// extension, or an entry of those kinds that cannot be read, is an error. Other
    /// kinds of names (otherName, directoryName, registeredID …) have no place in an
    /// [`Identity`] and are skipped.
    pub(super) fn read(cert: &X509Certificate<'_>) -> Result<Sans, CertError> {
        let mut sans = Sans::default();
        let ext = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext,
            Ok(None) => return Ok(sans),
            Err(X509Error::DuplicateExtensions) => return Err(CertError::NotACertificate("more than one subjectAltName extension".into())),
            Err(_) => return Err(CertError::UndecodableField("subjectAltName")),
        };
        for name in &ext.value.general_names {
            match name {
                GeneralName::URI(s) => sans.uri.push(ia5(s, "URI SAN")?.to_owned()),
                GeneralName::DNSName(s) => {
                    sans.dns.push(ia5(s, "DNS SAN")?.to_ascii_lowercase());
                }
                GeneralName::RFC822Name(s) => sans.email.push(ia5(s, "email SAN")?.to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        IpAddr::from(v4)
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        IpAddr::from(v6)
                    } else {
                        return Err(CertError::UndecodableField("IP SAN"));
                    };
                    sans.ip.push(ip);
                }
                GeneralName::Invalid(tag, _) => {
                    return Err(CertError::UndecodableField(match tag.0 {
                        1 => "email SAN",
                        2 => "DNS SAN",
                        6 => "URI SAN",
                        7 => "IP SAN",
                        _ => "subjectAltName",
                    }));
                }
                GeneralName::OtherName(..)
                | GeneralName::X400Address(_)
                | GeneralName::DirectoryName(_)
                | GeneralName::EDIPartyName(_)
                | GeneralName::RegisteredID(_) => {}
            }
        }
        Ok(sans)
    }
}

/// SAN strings are IA5String: x509-parser checks UTF-8, we also insist on ASCII.
fn ia5<'s>(s: &'s str, field: &'static str) -> Result<&'s str, CertError> {
    if s.is_ascii() {
        Ok(s)
    } else {
        Err(CertError::UndecodableField(field))
    }
}
