//! Hex: how the engine writes bytes, serial numbers and SHA-256 fingerprints,
//! and how it reads serials and fingerprints back from text (policies, the
//! CLI's identity files), so both sides of a comparison have one spelling.

use std::fmt::Write as _;

/// Lower-case hex, two digits a byte.
pub fn lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The SHA-256 of `bytes`, in lower-case hex (64 digits).
pub fn sha256(bytes: &[u8]) -> String {
    lower(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// A serial number's DER content bytes as lower-case hex without leading
/// zeros; "0" for zero or empty.
pub fn serial(raw: &[u8]) -> String {
    without_leading_zeros(&lower(raw))
}

/// Serial numbers as lower-case hex without separators or leading zeros, so
/// `01:A2`, `01a2` and `1A2` name the same certificate.
pub fn canonical_serial(text: &str) -> Result<String, String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{text}' is not a hexadecimal serial number (colons allowed, e.g. \"01:a2:ff\")"));
    }
    Ok(without_leading_zeros(&hex.to_ascii_lowercase()))
}

/// SHA-256 fingerprints as 64 lower-case hex digits; colons are allowed on input.
pub fn canonical_sha256(text: &str) -> Result<String, String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{text}' is not a SHA-256 fingerprint (64 hex digits, colons allowed)"));
    }
    Ok(hex)
}

fn without_leading_zeros(hex: &str) -> String {
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_read_from_a_certificate_and_from_text_agree() {
        for (raw, text) in [(&[0x00, 0x0a, 0xff][..], "00:0A:ff"), (&[0x01, 0xa2][..], "1A2"), (&[0x00][..], "00"), (&[][..], "0")] {
            assert_eq!(serial(raw), canonical_serial(text).unwrap(), "{raw:?} {text}");
        }
        assert_eq!(serial(&[0x00, 0x0a, 0xff]), "aff");
        assert_eq!(serial(&[]), "0");
        assert!(canonical_serial("").is_err());
        assert!(canonical_serial("0x12").is_err());
    }

    #[test]
    fn fingerprints_are_64_lower_case_digits() {
        let digest = sha256(b"");
        assert_eq!(digest, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let colons: Vec<String> = digest.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_ascii_uppercase()).collect();
        assert_eq!(canonical_sha256(&colons.join(":")).unwrap(), digest);
        assert!(canonical_sha256(&digest[..62]).is_err());
        assert_eq!(lower(&[0x00, 0xab]), "00ab");
    }
}
