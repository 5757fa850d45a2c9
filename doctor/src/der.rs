//! Just enough DER to tell private-key formats apart and to re-wrap a SEC1 EC
//! key as PKCS#8 (the only form ring loads).
//!
//! A full ASN.1 library would be overkill for three fixed structures, and a
//! reader this small is easy to make total: every function returns `None` on
//! malformed input instead of panicking, so a truncated key file is reported,
//! never a crash.

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
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tag: nothing we read uses them
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None; // indefinite length, or absurdly long
        }
        let (len_bytes, rest) = (rest.get(..n)?, rest.get(n..)?);
        let len = len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    let value = rest.get(..len)?;
    let rest = rest.get(len..)?;
    Some((Tlv { tag, value }, rest))
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

/// Encode one element (definite length, single-byte tag).
pub fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len().saturating_add(6));
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(&significant);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let value = vec![7u8; len];
            let enc = encode(OCTET_STRING, &value);
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
