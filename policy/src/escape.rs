//! Making certificate and request content safe to put in headers and logs.
//! The engine owns it because the outcome of a decision ([`crate::outcome`])
//! is made of such values, and the CLI must show the very bytes the filter sends.
//!
//! A certificate is signed by a trusted CA, but its *content* is still chosen
//! by whoever asked for it: a CN can hold CR/LF, NUL, quotes or non-ASCII. The
//! filter copies such values into request headers and into log lines, so both
//! get an escaping that is lossless, unambiguous and cannot break out of its
//! field. The principal header itself is rendered by the engine
//! ([`crate::Identity::upstream_principal`]), so that the CLI shows
//! the very bytes the upstream gets. Both escapings return `Cow::Borrowed` when
//! nothing needs escaping, the usual case, so the request path does not
//! allocate for it.

use std::borrow::Cow;
use std::fmt::Write as _;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A header value an upstream can trust to be exactly what the filter meant.
/// The engine owns this escaping because the legacy principal format is made
/// of it, and `mtls-authz explain` must print exactly what the filter sends.
pub use crate::principal::header_value;

/// The longest untrusted value (in bytes) a log field shows; the rest is
/// summarised, so a 60 KiB path cannot turn one deny into a 240 KiB log line.
pub const LOG_FIELD_MAX: usize = 256;

/// The body of a double-quoted log field: printable ASCII as is, `"` and `\`
/// backslash-escaped, every other byte as `\xNN`. A value can therefore never
/// end its quotes early, start a new line, or fake another `key=value` pair.
/// Values longer than [`LOG_FIELD_MAX`] bytes are cut and marked with their length.
/// Takes bytes because request headers are not promised to be UTF-8.
pub fn log_field(bytes: &[u8]) -> Cow<'_, str> {
    let clean = bytes.len() <= LOG_FIELD_MAX && bytes.iter().all(|&b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    if clean {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return Cow::Borrowed(text);
        }
    }
    let shown = bytes.get(..LOG_FIELD_MAX).unwrap_or(bytes);
    let mut out = String::with_capacity(shown.len() + 16);
    for &b in shown {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    if shown.len() < bytes.len() {
        // Writing to a String cannot fail.
        let _ = write!(out, "...({} bytes)", bytes.len());
    }
    Cow::Owned(out)
}

/// Operator-written text (policy error messages) for one log line: control
/// characters, including Unicode line separators, are shown escaped so that
/// one message stays one line; everything else, including non-ASCII names, is kept.
pub fn log_text(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_stay_in_their_quotes() {
        assert!(matches!(log_field(b"/api/payment/create?x=1"), Cow::Borrowed(_)));
        assert_eq!(log_field(b"a\" rule=forged reason=\"x"), "a\\\" rule=forged reason=\\\"x");
        assert_eq!(log_field(b"x\nmtls-authz: allow"), "x\\x0Amtls-authz: allow");
        assert_eq!(log_field(b"back\\slash"), "back\\\\slash");
        assert_eq!(log_field("é".as_bytes()), "\\xC3\\xA9");
        assert_eq!(log_field(b"\xff\x00"), "\\xFF\\x00");
    }

    #[test]
    fn long_log_fields_are_cut() {
        let long = "a".repeat(LOG_FIELD_MAX + 10);
        let shown = log_field(long.as_bytes());
        assert!(shown.starts_with(&"a".repeat(LOG_FIELD_MAX)));
        assert!(shown.ends_with(&format!("...({} bytes)", LOG_FIELD_MAX + 10)));
    }

    #[test]
    fn log_text_keeps_one_line() {
        assert_eq!(log_text("unknown field 'é'"), "unknown field 'é'");
        assert_eq!(log_text("a\nb\u{2028}c\r"), "a\\nb\\u{2028}c\\r");
    }
}
