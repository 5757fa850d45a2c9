//! Distinguished names: the CN, O and OU a policy can name (strictly
//! decoded), and the RFC 4514 string form for display.

use std::fmt::Write as _;

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::X509Name;

use super::CertError;
use crate::hex;

// DER contents of the attribute-type OIDs we read or name.
pub(super) const OID_CN: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
pub(super) const OID_O: &[u8] = &[0x55, 0x04, 0x0a]; // 2.5.4.10
pub(super) const OID_OU: &[u8] = &[0x55, 0x04, 0x0b]; // 2.5.4.11

/// The attribute types RFC 4514 section 3 gives short names to.
const RFC4514_SHORT_NAMES: &[(&[u8], &str)] = &[
    (OID_CN, "CN"),
    (&[0x55, 0x04, 0x07], "L"),  // 2.5.4.7
    (&[0x55, 0x04, 0x08], "ST"), // 2.5.4.8
    (OID_O, "O"),
    (OID_OU, "OU"),
    (&[0x55, 0x04, 0x06], "C"),      // 2.5.4.6
    (&[0x55, 0x04, 0x09], "STREET"), // 2.5.4.9
    // 0.9.2342.19200300.100.1.25
    (&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19], "DC"),
    // 0.9.2342.19200300.100.1.1
    (&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01], "UID"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NameRole {
    Subject,
    Issuer,
}

/// The CN, O and OU values of a name, in certificate order.
#[derive(Default)]
pub(super) struct NameAttributes {
    pub(super) common_names: Vec<String>,
    pub(super) organizations: Vec<String>,
    pub(super) organizational_units: Vec<String>,
}

impl NameAttributes {
    /// For the issuer only CNs are kept (and decoded): nothing else of it is part
    /// of an [`Identity`].
    pub(super) fn read(name: &X509Name<'_>, role: NameRole) -> Result<NameAttributes, CertError> {
        let subject = role == NameRole::Subject;
        let mut out = NameAttributes::default();
        for attr in name.iter_attributes() {
            let (list, field) = match attr.attr_type().as_bytes() {
                OID_CN if subject => (&mut out.common_names, "subject CN"),
                OID_CN => (&mut out.common_names, "issuer CN"),
                OID_O if subject => (&mut out.organizations, "subject O"),
                OID_OU if subject => (&mut out.organizational_units, "subject OU"),
                _ => continue,
            };
            let value = decode_directory_string(attr.attr_value()).ok_or(CertError::UndecodableField(field))?;
            list.push(value);
        }
        Ok(out)
    }
}

/// Decode an attribute value to text, or `None` when it is not a (well-formed)
/// string type we know how to read.
///
/// - UTF8String: strict UTF-8.
/// - PrintableString, IA5String, NumericString, VisibleString: ASCII. Characters
///   outside PrintableString's narrow set (`*`, `@`, `_` …) are common in the wild
///   and accepted; bytes above 0x7F have no meaning in these types and are not.
/// - BMPString: UTF-16BE (a valid surrogate pair is accepted, a lone one is not).
/// - UniversalString: UTF-32BE.
/// - TeletexString: read as Latin-1, as most software does.
///
/// Anything else (other tags, non-universal class, constructed encodings) is `None`.
pub(super) fn decode_directory_string(value: &Any<'_>) -> Option<String> {
    let header = &value.header;
    if header.class() != Class::Universal || header.is_constructed() {
        return None;
    }
    let data = value.data;
    match header.tag() {
        Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_owned),
        Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            if data.is_ascii() {
                Some(data.iter().map(|&b| char::from(b)).collect())
            } else {
                None
            }
        }
        Tag::BmpString => {
            let units = data.chunks_exact(2);
            if !units.remainder().is_empty() {
                return None;
            }
            let units = units.map(|u| Some(u16::from_be_bytes(<[u8; 2]>::try_from(u).ok()?))).collect::<Option<Vec<u16>>>()?;
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        Tag::UniversalString => {
            let units = data.chunks_exact(4);
            if !units.remainder().is_empty() {
                return None;
            }
            units.map(|u| char::from_u32(u32::from_be_bytes(<[u8; 4]>::try_from(u).ok()?))).collect()
        }
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

/// RFC 4514 string form of a name: RDNs in reverse order separated by `,`,
/// multi-valued RDNs joined by `+`, known types by short name, values escaped.
/// Other types appear as dotted OIDs with `#`-hex values, as are values that are not
/// decodable strings. Never fails: this is for display, the typed fields are the
/// fail-closed ones.
pub(super) fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().collect::<Vec<_>>().into_iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attr.attr_type();
            let short: Option<&str> = RFC4514_SHORT_NAMES.iter().find(|(bytes, _)| *bytes == oid.as_bytes()).map(|&(_, short)| short);
            let text = short.and_then(|_| decode_directory_string(attr.attr_value()));
            match (short, text) {
                (Some(short), Some(text)) => {
                    out.push_str(short);
                    out.push('=');
                    escape_rfc4514_value(&mut out, &text);
                }
                (short, _) => {
                    match short {
                        Some(short) => out.push_str(short),
                        None => out.push_str(&oid_dotted(oid.as_bytes())),
                    }
                    out.push_str("=#");
                    out.push_str(&hex::lower(&der_encoding(attr.attr_value())));
                }
            }
        }
    }
    out
}

/// Escape an attribute value per RFC 4514 section 2.4. Control characters are
/// escaped too (as `\XX` per UTF-8 byte), so the string is safe to log.
fn escape_rfc4514_value(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push('\\');
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
}

/// Dotted-decimal form of an OID's DER contents, or `OID.<hex>` when the encoding
/// is malformed or an arc does not fit in 64 bits.
pub(super) fn oid_dotted(bytes: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in bytes {
        if !in_arc && b == 0x80 {
            return format!("OID.{}", hex::lower(bytes)); // non-minimal encoding
        }
        acc = match acc.checked_mul(128).and_then(|v| v.checked_add(u64::from(b & 0x7f))) {
            Some(v) => v,
            None => return format!("OID.{}", hex::lower(bytes)), // arc overflows u64
        };
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
            in_arc = false;
        } else {
            in_arc = true;
        }
    }
    if in_arc {
        return format!("OID.{}", hex::lower(bytes));
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return "OID.".to_owned();
    };
    // The first subidentifier packs two arcs: 40 * a + b, with a in 0..=2.
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first.saturating_sub(40)),
        _ => (2, first.saturating_sub(80)),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    out
}

/// Re-create the DER encoding (identifier, length, contents) of a parsed value.
pub(super) fn der_encoding(value: &Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let data = value.data;
    let mut out = Vec::with_capacity(data.len().saturating_add(12));
    let class_bits = (header.class() as u8) << 6;
    let constructed_bit = if header.is_constructed() { 0x20 } else { 0 };
    let tag = header.tag().0;
    match u8::try_from(tag) {
        Ok(low) if low < 31 => out.push(class_bits | constructed_bit | low),
        _ => {
            out.push(class_bits | constructed_bit | 0x1f);
            push_base128(&mut out, u64::from(tag));
        }
    }
    match u8::try_from(data.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let len_bytes = (data.len() as u64).to_be_bytes();
            let significant: Vec<u8> = len_bytes.iter().copied().skip_while(|&b| b == 0).collect();
            // At most 8 bytes, so the fallback is never taken.
            out.push(0x80 | u8::try_from(significant.len()).unwrap_or(8));
            out.extend_from_slice(&significant);
        }
    }
    out.extend_from_slice(data);
    out
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut groups = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        groups.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    out.extend(groups.iter().rev());
}
