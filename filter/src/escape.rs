//! Making certificate and request content safe to put in headers and logs.
//!
//! A certificate is signed by a trusted CA, but its *content* is still chosen
//! by whoever asked for it: a CN can hold CR/LF, NUL, quotes or non-ASCII. The
//! filter copies such values into a request header and into log lines, so both
//! get an escaping that is lossless, unambiguous and cannot break out of its
//! field. Both return `Cow::Borrowed` when nothing needs escaping, which is the
//! usual case, so the request path does not allocate for it.

use std::borrow::Cow;
use std::fmt::Write as _;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A header value an upstream can trust to be exactly what the filter meant.
///
/// Visible ASCII passes through. Percent-escaped (`%XX`, upper-case hex, per
/// byte of UTF-8) are: control characters (CR, LF, NUL, ...), DEL, every
/// non-ASCII byte, `%` itself (so the escaping is reversible and `caf%C3%A9`
/// cannot pose as `café`), and a leading or trailing space (HTTP trims those,
/// which would make `" admin"` arrive as `"admin"`).
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

fn push_percent(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

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
    fn plain_header_values_are_borrowed() {
        assert!(matches!(header_value("spiffe://shop.test/ns/prod/sa/order"), Cow::Borrowed(_)));
        assert!(matches!(header_value("CN=a b,O=c"), Cow::Borrowed(_)));
        assert_eq!(header_value(""), "");
    }

    #[test]
    fn header_values_cannot_inject_or_be_trimmed() {
        assert_eq!(header_value("a\r\nx-mtls-authz-principal: admin"), "a%0D%0Ax-mtls-authz-principal: admin");
        assert_eq!(header_value("nul\0"), "nul%00");
        assert_eq!(header_value("café"), "caf%C3%A9");
        assert_eq!(header_value("caf%C3%A9"), "caf%25C3%25A9");
        assert_eq!(header_value(" admin "), "%20admin%20");
        assert_eq!(header_value(" "), "%20");
        assert_eq!(header_value("tab\there\x7f"), "tab%09here%7F");
    }

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
