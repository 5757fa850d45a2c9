//! A caller's identity written as JSON fields instead of a certificate.
//!
//! The identity-fields format exists so that policy tests can be committed
//! without certificates, and therefore without private keys. It names every
//! field a policy can match on, with the policy's own field names:
//!
//! ```json
//! {"cn": "order-service", "o": ["shop"], "ou": ["payments"],
//!  "uri_san": ["spiffe://shop.test/ns/prod/sa/order"], "dns_san": [], "email_san": [],
//!  "ip_san": ["10.0.0.7"], "issuer_cn": "Shop Internal CA", "serial": "1a2b", "sha256": "ab…"}
//! ```
//!
//! Every field is optional; a missing one is simply absent from the identity.
//! List fields also take a single string, and `cn`/`issuer_cn` also take a
//! list (a certificate with two CNs matches no `cn` rule, and tests should be
//! able to say so). `subject`, `issuer`, `not_before` and `not_after` are
//! accepted for display only, so the `identity` object printed by
//! `explain --format json` reads back as an identity file.
//!
//! Values are normalised exactly as certificate parsing normalises them (DNS
//! names lower-cased, serial and fingerprint as bare lower-case hex), because
//! a test that passes on hand-written fields must pass on the real certificate.

//!
//! It lives in the engine because the CLI (`test`, `explain --identity`,
//! `matrix --identity`) and the browser playground (typed fields) read it, and
//! both must turn the same text into the same [`Identity`].

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::hex::{canonical_serial, canonical_sha256};
use crate::timefmt::parse_rfc3339;
use crate::Identity;

/// The JSON identity-fields object, as written.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFields {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    cn: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    o: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    ou: Vec<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    issuer_cn: Vec<String>,
    #[serde(default, deserialize_with = "serial")]
    serial: Option<String>,
    #[serde(default, deserialize_with = "strings")]
    uri_san: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    dns_san: Vec<String>,
    #[serde(default, deserialize_with = "strings")]
    email_san: Vec<String>,
    #[serde(default, deserialize_with = "ip_addresses")]
    ip_san: Vec<IpAddr>,
    #[serde(default, deserialize_with = "timestamp")]
    not_before: Option<i64>,
    #[serde(default, deserialize_with = "timestamp")]
    not_after: Option<i64>,
    #[serde(default, deserialize_with = "sha256")]
    sha256: Option<String>,
}

impl IdentityFields {
    /// The identity the engine sees, and the validity window as far as the fields state it
    /// (`not_before`, `not_after`: display only, the engine ignores them).
    pub fn into_identity(self) -> (Identity, Option<i64>, Option<i64>) {
        let identity = Identity {
            subject: self.subject.unwrap_or_default(),
            common_names: self.cn,
            organizations: self.o,
            organizational_units: self.ou,
            issuer: self.issuer.unwrap_or_default(),
            issuer_common_names: self.issuer_cn,
            serial: self.serial.unwrap_or_default(),
            uri_sans: self.uri_san,
            dns_sans: self.dns_san.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
            email_sans: self.email_san,
            ip_sans: self.ip_san,
            not_before: self.not_before.unwrap_or(0),
            not_after: self.not_after.unwrap_or(0),
            sha256: self.sha256.unwrap_or_default(),
        };
        (identity, self.not_before, self.not_after)
    }
}

/// A string, a list of strings, or null (no values).
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Strings;
    impl<'de> Visitor<'de> for Strings {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Strings)
}

fn ip_addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    strings(d)?.iter().map(|s| s.parse::<IpAddr>().map_err(|_| de::Error::custom(format!("'{s}' is not an IP address")))).collect()
}

/// Canonical serial, as the policy language and certificate parsing write it.
fn serial<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => canonical_serial(&text).map(Some).map_err(de::Error::custom),
    }
}

/// Lower-case hex, 64 digits, colons allowed on input.
fn sha256<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => canonical_sha256(&text).map(Some).map_err(de::Error::custom),
    }
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("'{text}' is not an RFC 3339 UTC time like 2030-01-31T12:00:00Z"))),
    }
}

impl IdentityFields {
    /// Where these written fields differ from the certificate's: one
    /// `field: written …, the certificate has …` line per field.
    ///
    /// A case that names a real certificate and also writes its identity is
    /// run on the fields by `mtls-authz test` and on the certificate by
    /// `--certs` and the end-to-end suite; this keeps the two equal. Every
    /// name field a principal matches (CN, O, OU, issuer CN, SANs) must be
    /// written as the certificate has it, an absent one meaning "none", so
    /// the fields decide as the certificate does. The serial, fingerprint
    /// and display fields are compared only when written: a freshly
    /// generated PKI gives them new values on every run (so does the
    /// validity window, never compared).
    pub fn differences(&self, cert: &Identity) -> Vec<String> {
        let w = self.clone().into_identity().0;
        let mut out = Vec::new();
        let mut list = |name: &str, wrote: bool, mine: &[String], theirs: &[String]| {
            if wrote && mine != theirs {
                out.push(format!("{name}: written {mine:?}, the certificate has {theirs:?}"));
            }
        };
        let one = std::slice::from_ref;
        list("subject", self.subject.is_some(), one(&w.subject), one(&cert.subject));
        list("cn", true, &w.common_names, &cert.common_names);
        list("o", true, &w.organizations, &cert.organizations);
        list("ou", true, &w.organizational_units, &cert.organizational_units);
        list("issuer", self.issuer.is_some(), one(&w.issuer), one(&cert.issuer));
        list("issuer_cn", true, &w.issuer_common_names, &cert.issuer_common_names);
        list("serial", self.serial.is_some(), one(&w.serial), one(&cert.serial));
        list("uri_san", true, &w.uri_sans, &cert.uri_sans);
        list("dns_san", true, &w.dns_sans, &cert.dns_sans);
        list("email_san", true, &w.email_sans, &cert.email_sans);
        let ips = |v: &[std::net::IpAddr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        list("ip_san", true, &ips(&w.ip_sans), &ips(&cert.ip_sans));
        list("sha256", self.sha256.is_some(), one(&w.sha256), one(&cert.sha256));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_a_principal_can_name_can_be_written() {
        let value = |field: &str| match field {
            "ip_san" => "\"10.0.0.1\"",
            "serial" => "\"1a\"",
            "sha256" => "\"ab00000000000000000000000000000000000000000000000000000000000000\"",
            _ => "\"x\"",
        };
        for field in crate::identity::MATCH_FIELDS {
            let json = format!("{{\"{field}\": {}}}", value(field));
            assert!(fields(&json).is_ok(), "{json}: {:?}", fields(&json));
        }
    }

    #[derive(Debug)]
    struct Fields {
        identity: Identity,
        not_before: Option<i64>,
    }

    fn fields(json: &str) -> Result<Fields, String> {
        serde_json::from_str::<IdentityFields>(json)
            .map(|f| {
                let (identity, not_before, _) = f.into_identity();
                Fields { identity, not_before }
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_normalised_like_certificate_parsing() {
        let c = fields(
            r#"{"cn": "a", "o": "shop", "dns_san": ["API.Shop.Test"], "serial": "00:1A:2b",
                         "sha256": "AB:CD:ef:0123456789012345678901234567890123456789012345678901234567"}"#,
        )
        .unwrap();
        assert_eq!(c.identity.common_names, ["a"]);
        assert_eq!(c.identity.organizations, ["shop"]);
        assert_eq!(c.identity.dns_sans, ["api.shop.test"]);
        assert_eq!(c.identity.serial, "1a2b");
        assert_eq!(c.identity.sha256.len(), 64);
        assert!(c.identity.sha256.starts_with("abcdef"));
        assert_eq!(c.not_before, None);
    }

    #[test]
    fn two_common_names_are_expressible() {
        let c = fields(r#"{"cn": ["a", "b"]}"#).unwrap();
        assert_eq!(c.identity.common_name(), None);
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        for (json, why) in [
            (r#"{"common_name": "a"}"#, "unknown field `common_name`"),
            (r#"{"ip_san": ["10.0.0.300"]}"#, "not an IP address"),
            (r#"{"serial": "xyz"}"#, "hexadecimal serial"),
            (r#"{"sha256": "abc"}"#, "SHA-256"),
            (r#"{"o": 3}"#, "a string or a list of strings"),
            (r#"{"not_after": "tomorrow"}"#, "RFC 3339"),
        ] {
            let err = fields(json).unwrap_err();
            assert!(err.contains(why), "{json}: {err}");
        }
    }
}
