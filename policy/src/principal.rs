//! The caller's name as the upstream receives it in `x-mtls-authz-principal`.
//!
//! A backend that reads this header trusts it to name the caller, so two
//! different callers must never produce the same value and one value must
//! never read as two. A bare name cannot promise either: a CN that spells a
//! SPIFFE ID looks exactly like the URI SAN it imitates, a comma in a CN makes
//! list-splitting header parsers see two principals, and certificates without
//! a URI SAN or CN would all be named by the same empty subject. So the value
//! says which field it comes from, and its characters are restricted so that
//! header parsers leave it in one piece:
//!
//! ```text
//! principal   = kind "=" value
//! kind        = "uri" / "cn" / "dns" / "subject" / "sha256"
//! value       = 1*( safe / pct-encoded )
//! safe        = %x21 / %x23-24 / %x26-2A / %x2D-3A / %x3C-5B / %x5D-7E
//!               ; visible ASCII except DQUOTE "%" "+" "," ";" "\"
//! pct-encoded = "%" 2( DIGIT / %x41-46 )
//!               ; one per byte of the UTF-8 encoding, upper-case hex
//! ```
//!
//! The kind is the first that applies: `uri` the first URI SAN, `cn` the
//! subject's only CN, `dns` the first DNS SAN (lower-cased, as the engine
//! keeps it), `subject` the subject DN in RFC 4514 form, `sha256` the
//! certificate's fingerprint (64 lower-case hex digits) when it has no name
//! at all. A field that is empty is skipped: an empty name names nobody.
//! A backend splits the value at the first `=` and percent-decodes the rest
//! (every `%` in the value starts an escape, so decoding is exact and `+`
//! never stands for a space).
//!
//! [`PrincipalFormat::Legacy`] keeps the bare name for backends that were
//! written against it; it has the ambiguities above.

use std::borrow::Cow;

use crate::identity::Identity;
use crate::model::PrincipalFormat;

/// The request header the filter puts the principal in.
pub const HEADER: &str = "x-mtls-authz-principal";

const HEX: &[u8; 16] = b"0123456789ABCDEF";

impl Identity {
    /// The value of `x-mtls-authz-principal` for this caller, exactly as the
    /// filter sends it upstream (the module documentation has the grammar).
    ///
    /// Every place that shows the principal (the filter's header and log
    /// line, `mtls-authz explain`) calls this, so they cannot drift apart.
    pub fn upstream_principal(&self, format: PrincipalFormat) -> Cow<'_, str> {
        match format {
            PrincipalFormat::Typed => Cow::Owned(self.typed_principal()),
            PrincipalFormat::Legacy => header_value(self.display_name()),
        }
    }

    fn typed_principal(&self) -> String {
        let present = |s: &String| !s.is_empty();
        let (kind, value) = if let Some(uri) = self.uri_sans.first().filter(|s| present(s)) {
            ("uri", uri.as_str())
        } else if let Some(cn) = self.common_name().filter(|s| !s.is_empty()) {
            ("cn", cn)
        } else if let Some(dns) = self.dns_sans.first().filter(|s| present(s)) {
            ("dns", dns.as_str())
        } else if !self.subject.is_empty() {
            ("subject", self.subject.as_str())
        } else {
            ("sha256", self.sha256.as_str())
        };
        let mut out = String::with_capacity(kind.len() + 1 + value.len());
        out.push_str(kind);
        out.push('=');
        for &b in value.as_bytes() {
            if is_safe(b) {
                out.push(char::from(b));
            } else {
                push_percent(&mut out, b);
            }
        }
        out
    }
}

/// The bytes a typed value carries as they are. `%` is excluded so that the
/// encoding is reversible; `,` `;` `"` `\` because header parsers split or
/// unquote on them; `+` because form decoders read it as a space.
fn is_safe(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b'%' | b'+' | b',' | b';' | b'\\')
}

fn push_percent(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// A header value an upstream can trust to be exactly what the filter meant.
///
/// Visible ASCII passes through. Percent-escaped (`%XX`, upper-case hex, per
/// byte of UTF-8) are: control characters (CR, LF, NUL, ...), DEL, every
/// non-ASCII byte, `%` itself (so the escaping is reversible and `caf%C3%A9`
/// cannot pose as `café`), and a leading or trailing space (HTTP trims those,
/// which would make `" admin"` arrive as `"admin"`).
///
/// This is the whole escaping of [`PrincipalFormat::Legacy`], and the filter's
/// escaping for its other headers. Returns `Cow::Borrowed` when nothing needs
/// escaping, the usual case, so the request path does not allocate for it.
pub fn header_value(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let last = bytes.len().saturating_sub(1);
    let needs = |i: usize, b: u8| match b {
        b'%' => true,
        b' ' => i == 0 || i == last,
        0x21..=0x7e => false,
        _ => true,
    };
    if !bytes.iter().enumerate().any(|(i, &b)| needs(i, b)) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for (i, &b) in bytes.iter().enumerate() {
        if needs(i, b) {
            push_percent(&mut out, b);
        } else {
            out.push(char::from(b));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn typed(id: &Identity) -> String {
        id.upstream_principal(PrincipalFormat::Typed).into_owned()
    }

    fn legacy(id: &Identity) -> String {
        id.upstream_principal(PrincipalFormat::Legacy).into_owned()
    }

    fn with_cn(cn: &str) -> Identity {
        Identity { subject: format!("CN={cn}"), common_names: vec![cn.into()], sha256: FINGERPRINT.into(), ..Identity::default() }
    }

    /// Percent-decode a typed value the way the README tells a backend to.
    fn parse(header: &str) -> (&str, String) {
        let (kind, value) = header.split_once('=').unwrap();
        let mut bytes = Vec::new();
        let mut rest = value.as_bytes();
        while let [first, tail @ ..] = rest {
            if *first == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(*first);
                rest = tail;
            }
        }
        (kind, String::from_utf8(bytes).unwrap())
    }

    fn assert_grammar(header: &str) {
        let (kind, value) = header.split_once('=').unwrap();
        assert!(["uri", "cn", "dns", "subject", "sha256"].contains(&kind), "{header}");
        assert!(!value.is_empty(), "{header}");
        let bytes = value.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = &bytes[i + 1..i + 3];
                assert!(hex.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)), "{header}");
                i += 3;
            } else {
                assert!(is_safe(bytes[i]), "{header}: byte {:#x}", bytes[i]);
                i += 1;
            }
        }
    }

    #[test]
    fn the_first_uri_san_is_the_principal() {
        let id = Identity {
            uri_sans: vec!["spiffe://shop.test/ns/prod/sa/order".into(), "spiffe://shop.test/ns/prod/sa/other".into()],
            dns_sans: vec!["order.shop.test".into()],
            ..with_cn("order-service")
        };
        assert_eq!(typed(&id), "uri=spiffe://shop.test/ns/prod/sa/order");
    }

    #[test]
    fn a_cn_that_spells_a_spiffe_id_is_not_that_uri_san() {
        let real = Identity { uri_sans: vec!["spiffe://shop.test/ns/prod/sa/order".into()], ..Identity::default() };
        let impostor = with_cn("spiffe://shop.test/ns/prod/sa/order");
        assert_eq!(typed(&impostor), "cn=spiffe://shop.test/ns/prod/sa/order");
        assert_ne!(typed(&impostor), typed(&real));
        assert_eq!(legacy(&impostor), legacy(&real), "the legacy form cannot tell them apart");
    }

    #[test]
    fn commas_semicolons_and_quotes_cannot_split_the_value() {
        let id = with_cn("order-service, spiffe://shop.test/ns/prod/sa/admin");
        assert_eq!(typed(&id), "cn=order-service%2C%20spiffe://shop.test/ns/prod/sa/admin");
        let id = with_cn(r#"a;b="c\d""#);
        assert_eq!(typed(&id), "cn=a%3Bb=%22c%5Cd%22");
        for header in [typed(&with_cn("x, y")), typed(&with_cn("x;y")), typed(&with_cn("\"x\""))] {
            assert!(!header.contains([',', ';', '"', ' ', '\\']), "{header}");
        }
    }

    #[test]
    fn non_ascii_controls_spaces_and_percent_are_escaped_per_utf8_byte() {
        assert_eq!(typed(&with_cn("zoë")), "cn=zo%C3%AB");
        assert_eq!(typed(&with_cn("caf%C3%A9")), "cn=caf%25C3%25A9", "an escape in the name cannot pose as an encoded character");
        assert_eq!(typed(&with_cn("a b")), "cn=a%20b");
        assert_eq!(typed(&with_cn(" admin ")), "cn=%20admin%20");
        assert_eq!(typed(&with_cn("x\r\nx-mtls-authz-rule: admin\0\x7f")), "cn=x%0D%0Ax-mtls-authz-rule:%20admin%00%7F");
        assert_eq!(typed(&with_cn("a+b")), "cn=a%2Bb", "'+' is not read as a space by form decoders");
        assert_eq!(typed(&with_cn("日本")), "cn=%E6%97%A5%E6%9C%AC");
    }

    #[test]
    fn uri_characters_stay_readable() {
        let id = with_cn("user@host:8443/a.b-c_d~e!$&'()*=?#[]{}|^`<>");
        assert_eq!(typed(&id), "cn=user@host:8443/a.b-c_d~e!$&'()*=?#[]{}|^`<>");
    }

    #[test]
    fn an_empty_subject_with_a_dns_san_is_named_by_the_dns_san() {
        let one =
            Identity { dns_sans: vec!["api.shop.test".into(), "b.shop.test".into()], sha256: FINGERPRINT.into(), ..Identity::default() };
        let other = Identity { dns_sans: vec!["evil.shop.test".into()], sha256: FINGERPRINT.into(), ..Identity::default() };
        assert_eq!(typed(&one), "dns=api.shop.test");
        assert_eq!(typed(&other), "dns=evil.shop.test");
        assert_eq!(legacy(&one), "", "the legacy form names both callers with the same empty string");
        assert_eq!(legacy(&other), "");
    }

    #[test]
    fn several_cns_fall_back_to_the_dns_san_then_the_subject() {
        let two_cns = Identity {
            subject: "CN=bob,CN=alice".into(),
            common_names: vec!["alice".into(), "bob".into()],
            sha256: FINGERPRINT.into(),
            ..Identity::default()
        };
        assert_eq!(typed(&two_cns), "subject=CN=bob%2CCN=alice");
        let with_dns = Identity { dns_sans: vec!["alice.shop.test".into()], ..two_cns.clone() };
        assert_eq!(typed(&with_dns), "dns=alice.shop.test");
    }

    #[test]
    fn a_subject_without_a_cn_is_the_subject() {
        let id = Identity { subject: "O=Acme\\, Inc.,OU=payments".into(), organizations: vec!["Acme, Inc.".into()], ..Identity::default() };
        assert_eq!(typed(&id), "subject=O=Acme%5C%2C%20Inc.%2COU=payments");
        assert_eq!(parse(&typed(&id)), ("subject", "O=Acme\\, Inc.,OU=payments".to_owned()));
    }

    #[test]
    fn no_names_at_all_is_the_fingerprint_never_an_empty_value() {
        let id = Identity { sha256: FINGERPRINT.into(), ..Identity::default() };
        assert_eq!(typed(&id), format!("sha256={FINGERPRINT}"));
        // Empty names are skipped, not reported as an empty value.
        let empty =
            Identity { uri_sans: vec![String::new()], common_names: vec![String::new()], dns_sans: vec![String::new()], ..id.clone() };
        assert_eq!(typed(&empty), format!("sha256={FINGERPRINT}"));
    }

    #[test]
    fn legacy_is_the_escaped_display_name() {
        assert_eq!(legacy(&with_cn("order-service")), "order-service");
        assert_eq!(legacy(&with_cn("zoë")), "zo%C3%AB");
        assert_eq!(legacy(&with_cn("a, b")), "a, b");
        assert!(matches!(with_cn("order-service").upstream_principal(PrincipalFormat::Legacy), Cow::Borrowed(_)));
    }

    #[test]
    fn real_certificates_are_named_by_the_field_they_carry() {
        let make = |cn: Option<&str>, sans: Vec<SanType>| {
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            if let Some(cn) = cn {
                params.distinguished_name.push(DnType::CommonName, cn);
            }
            params.subject_alt_names = sans;
            let pem = params.self_signed(&KeyPair::generate().unwrap()).unwrap().pem();
            Identity::from_pem(pem.as_bytes()).unwrap()
        };
        let dns_only = make(None, vec![SanType::DnsName("API.Shop.Test".try_into().unwrap())]);
        assert_eq!(dns_only.subject, "");
        assert_eq!(typed(&dns_only), "dns=api.shop.test");
        let nameless = make(None, vec![]);
        assert_eq!(typed(&nameless), format!("sha256={}", nameless.sha256));
        assert_eq!(nameless.sha256.len(), 64);
        let comma = make(Some("payments, admin"), vec![]);
        assert_eq!(typed(&comma), "cn=payments%2C%20admin");
    }

    #[test]
    fn header_values_cannot_inject_or_be_trimmed() {
        assert!(matches!(header_value("spiffe://shop.test/ns/prod/sa/order"), Cow::Borrowed(_)));
        assert!(matches!(header_value("CN=a b,O=c"), Cow::Borrowed(_)));
        assert_eq!(header_value(""), "");
        assert_eq!(header_value("a\r\nx-mtls-authz-principal: admin"), "a%0D%0Ax-mtls-authz-principal: admin");
        assert_eq!(header_value("nul\0"), "nul%00");
        assert_eq!(header_value("café"), "caf%C3%A9");
        assert_eq!(header_value("caf%C3%A9"), "caf%25C3%25A9");
        assert_eq!(header_value(" admin "), "%20admin%20");
        assert_eq!(header_value(" "), "%20");
        assert_eq!(header_value("tab\there\x7f"), "tab%09here%7F");
    }

    fn any_identity() -> impl Strategy<Value = Identity> {
        let names = || prop::collection::vec(any::<String>(), 0..3);
        (names(), names(), names(), any::<String>(), "[0-9a-f]{64}").prop_map(|(uri_sans, common_names, dns_sans, subject, sha256)| {
            Identity { uri_sans, common_names, dns_sans, subject, sha256, ..Identity::default() }
        })
    }

    proptest! {
        #[test]
        fn typed_values_follow_the_grammar_and_decode_to_the_name(id in any_identity()) {
            let header = typed(&id);
            assert_grammar(&header);
            let (kind, value) = parse(&header);
            let first = |names: &[String]| names.first().is_some_and(|s| !s.is_empty());
            let expected_kind = if first(&id.uri_sans) {
                "uri"
            } else if id.common_names.len() == 1 && first(&id.common_names) {
                "cn"
            } else if first(&id.dns_sans) {
                "dns"
            } else if !id.subject.is_empty() {
                "subject"
            } else {
                "sha256"
            };
            prop_assert_eq!(kind, expected_kind);
            let expected = match kind {
                "uri" => id.uri_sans[0].clone(),
                "cn" => id.common_names[0].clone(),
                "dns" => id.dns_sans[0].clone(),
                "subject" => id.subject.clone(),
                _ => id.sha256.clone(),
            };
            prop_assert_eq!(value, expected);
        }
    }
}
