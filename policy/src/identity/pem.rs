//! The first `CERTIFICATE` block of a PEM document, as DER.

use super::CertError;

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----";
const PEM_ANY_END: &[u8] = b"-----END ";

/// The DER bytes of the first `CERTIFICATE` block.
pub(super) fn first_pem_certificate(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let start = find(pem, PEM_BEGIN).ok_or(CertError::NoPemCertificate)?;
    let block = pem.get(start..).ok_or(CertError::NoPemCertificate)?;

    // x509-parser's reader ends a block at the first line starting with "-----END ",
    // whatever its label; insist that line closes a CERTIFICATE (as OpenSSL does).
    let mut lines = block.split(|&b| b == b'\n').skip(1);
    let end_line = lines.find(|line| line.starts_with(PEM_ANY_END)).ok_or(CertError::NoPemCertificate)?;
    if trim_ascii_end(end_line) != PEM_END {
        return Err(CertError::NoPemCertificate);
    }

    // Decoding starts at our BEGIN line, so the reader cannot wander off to
    // another block: any error here is about the first certificate block.
    let (_, decoded) = x509_parser::pem::parse_x509_pem(block).map_err(|_| CertError::NoPemCertificate)?;
    if decoded.label != "CERTIFICATE" {
        return Err(CertError::NoPemCertificate);
    }
    Ok(decoded.contents)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_ascii_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., last] = bytes {
        if last.is_ascii_whitespace() {
            bytes = rest;
        } else {
            break;
        }
    }
    bytes
}
