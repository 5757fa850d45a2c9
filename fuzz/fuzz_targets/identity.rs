//! Certificates: arbitrary bytes into `Identity::from_der`, `from_pem` and
//! `from_pem_or_der`.
//!
//! The filter parses whatever PEM Envoy hands it for the peer, and the CLI
//! whatever file it is given, so none of these may panic. When a parse
//! succeeds, the identity must hold what `Identity` documents: the fingerprint
//! is the SHA-256 of exactly the input (64 lower-case hex digits), the serial
//! is lower-case hex without leading zeros, DNS SANs are lower-case, the subject
//! and issuer DNs have their control characters escaped. The same
//! DER wrapped in PEM must give the same identity, and `from_pem_or_der` must
//! pick the reader the bytes ask for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_authz_policy::{Identity, PrincipalFormat};

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pem(der: &[u8]) -> Vec<u8> {
    let body = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

fn check(id: &Identity) {
    assert_eq!(id.sha256.len(), 64, "sha256 must be 64 hex digits: {:?}", id.sha256);
    assert!(is_lower_hex(&id.sha256), "sha256 must be lower-case hex: {:?}", id.sha256);
    assert!(!id.serial.is_empty() && is_lower_hex(&id.serial), "serial must be lower-case hex: {:?}", id.serial);
    assert!(id.serial == "0" || !id.serial.starts_with('0'), "serial has a leading zero: {:?}", id.serial);
    for d in &id.dns_sans {
        assert_eq!(*d, d.to_ascii_lowercase(), "DNS SANs are lower-cased");
    }
    for s in id.uri_sans.iter().chain(&id.dns_sans).chain(&id.email_sans) {
        assert!(s.is_ascii(), "SANs are IA5 (ASCII): {s:?}");
    }
    // The DN strings are for logs and headers: control characters are escaped.
    for dn in [&id.subject, &id.issuer] {
        assert!(!dn.chars().any(char::is_control), "DN with a raw control character: {dn:?}");
    }
    assert_eq!(id.common_name().is_some(), id.common_names.len() == 1);
    assert_eq!(id.issuer_common_name().is_some(), id.issuer_common_names.len() == 1);
    let _ = id.display_name();
    // The upstream's principal: a known kind, a non-empty value of visible
    // ASCII outside `" % + , ; \`, or %XX escapes (upper-case hex).
    let typed = id.upstream_principal(PrincipalFormat::Typed);
    let (kind, value) = typed.split_once('=').unwrap_or_default();
    assert!(["uri", "cn", "dns", "subject", "sha256"].contains(&kind), "principal kind: {typed:?}");
    assert!(!value.is_empty(), "empty principal value: {typed:?}");
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
            assert!(hex.len() == 2 && hex.iter().all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)), "bad escape: {typed:?}");
            i += 3;
        } else {
            assert!((0x21..=0x7e).contains(&b) && !b"\"%+,;\\".contains(&b), "unsafe byte {b:#x}: {typed:?}");
            i += 1;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let der = Identity::from_der(data);
    if let Ok(id) = &der {
        check(id);
        let digest = ring::digest::digest(&ring::digest::SHA256, data);
        assert_eq!(id.sha256, hex_lower(digest.as_ref()), "the fingerprint must cover exactly the input");
        let wrapped = Identity::from_pem(&pem(data));
        assert_eq!(wrapped.as_ref(), Ok(id), "the same DER as PEM must give the same identity");
    }

    let from_pem = Identity::from_pem(data);
    if let Ok(id) = &from_pem {
        check(id);
    }

    let either = Identity::from_pem_or_der(data);
    if let Ok(id) = &either {
        check(id);
    }
    let looks_like_pem = data.windows(11).any(|w| w == b"-----BEGIN ");
    assert_eq!(either, if looks_like_pem { from_pem } else { der }, "from_pem_or_der must pick the reader the bytes ask for");
});
