//! Just enough DER to tell private-key formats apart and to re-wrap a SEC1 EC
//! key as PKCS#8 (the only form ring loads), over asn1-rs (the ASN.1 layer
//! x509-parser reads certificates with).
//!
//! Every function returns `None` on malformed input instead of panicking, so
//! a truncated key file is reported, never a crash.

use x509_parser::asn1_rs::{Any, Class, FromDer, Header, Length, Tag, ToDer};

/// One tag-length-value element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (single-byte tags only: all that keys use).
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
}

pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
/// `[0]` constructed, explicit: SEC1 `parameters`.
pub const CONTEXT_0: u8 = 0xa0;

/// Read one element from the front of `input`; the rest follows it.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let &tag = input.first()?;
    // Keys use neither multi-byte tags (`Tlv::tag` is one octet) nor lengths
    // of more than four octets: both are refused as malformed.
    if tag & 0x1f == 0x1f || input.get(1).is_some_and(|&len| len > 0x84) {
        return None;
    }
    // DER: a definite length, and the value must be all there.
    let (rest, any) = Any::from_der(input).ok()?;
    Some((Tlv { tag, value: any.data }, rest))
}

/// Read exactly one element of kind `tag` that fills all of `input`.
pub fn read_only(input: &[u8], tag: u8) -> Option<Tlv<'_>> {
    match read(input)? {
        (tlv, []) if tlv.tag == tag => Some(tlv),
        _ => None,
    }
}

/// The elements inside a constructed value, in order; `None` if any is malformed.
pub fn children(value: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let (tlv, next) = read(rest)?;
        out.push(tlv);
        rest = next;
    }
    Some(out)
}

/// Encode one element (definite length, single-byte tag); `None` only if the
/// encoder refuses (a value over 4 GiB).
pub fn encode(tag: u8, value: &[u8]) -> Option<Vec<u8>> {
    let class = Class::try_from(tag >> 6).ok()?;
    let header = Header::new(class, tag & 0x20 != 0, Tag(u32::from(tag & 0x1f)), Length::Definite(value.len()));
    Any::new(header, value).to_der_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; len];
            let enc = encode(OCTET_STRING, &value).unwrap();
            let tlv = read_only(&enc, OCTET_STRING).unwrap();
            assert_eq!(tlv.value.len(), len);
        }
    }

    #[test]
    fn malformed_input_is_none() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[0x30]), None);
        assert_eq!(read(&[0x30, 0x05, 1, 2]), None, "truncated");
        assert_eq!(read(&[0x30, 0x80]), None, "indefinite");
        assert_eq!(read(&[0x1f, 0x01, 0x00]), None, "multi-byte tag");
        assert_eq!(read_only(&[0x02, 0x01, 0x00, 0x00], INTEGER), None, "trailing bytes");
        assert_eq!(children(&[0x02, 0x01]), None);
    }
}
