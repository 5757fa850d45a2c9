//! Request path canonicalisation: one meaning per path, or no decision at all.
//!
//! Authorization bypasses in proxies come from the proxy and the backend reading
//! one path two ways (`/a/../b`, `%2F`, `;x`, `//`). This module accepts only
//! paths with a single obvious reading and returns their decoded form; every
//! other path is refused with the reason, and the engine denies it. The query
//! and fragment are cut off first: policies are about the resource, not its
//! parameters.
//!
//! Envoy's `normalize_path`, `merge_slashes` and
//! `path_with_escaped_slashes_action` make most of these rare before the filter
//! sees them; this module keeps the filter safe where they are off.

use std::borrow::Cow;
use std::fmt;

/// Paths with more segments than this are refused (keeps matching bounded).
pub const MAX_SEGMENTS: usize = 128;
/// Paths longer than this (bytes, before the query) are refused.
pub const MAX_PATH_LEN: usize = 8192;

/// Why a path has no single safe reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// The path is empty.
    Empty,
    /// It does not start with `/` (authority-form, `*`, or a relative path).
    NoLeadingSlash,
    /// `//` or a trailing `/`: backends disagree on what an empty segment means.
    EmptySegment,
    /// A `.` or `..` segment, raw or percent-encoded.
    DotSegment,
    /// `%2F`: an encoded `/` that a backend may decode into a separator.
    EncodedSlash,
    /// A raw or encoded `\`, which some backends treat as `/`.
    Backslash,
    /// A raw or encoded NUL byte.
    Nul,
    /// `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// `%25`: an encoded `%`, the start of double encoding.
    EncodedPercent,
    /// A raw or encoded `;`: path parameters that backends strip per segment.
    PathParameter,
    /// An encoded `?` or `#`, which a decoding backend may split on.
    EncodedDelimiter,
    /// Decoded bytes that are not UTF-8, e.g. overlong `%c0%af`.
    InvalidUtf8,
    /// A control character, space, or a character not allowed raw in a path.
    InvalidCharacter,
    /// More than [`MAX_SEGMENTS`] segments or [`MAX_PATH_LEN`] bytes.
    TooLong,
    /// A segment ending in `.` or a space, which Windows-style backends strip
    /// (`/internal./x` is served as `/internal/x`).
    TrailingDotOrSpace,
    /// A character that Unicode compatibility normalisation (NFKC) turns into
    /// punctuation or a space (fullwidth `／`, `︰` for `..`), or a slash
    /// look-alike such as the division slash `∕`.
    LookalikeDelimiter,
}

impl PathRejection {
    /// Every rejection, in declaration order: what filter/constants.json lists
    /// for the e2e suites and bench, which match reasons by [`PathRejection::code`].
    pub const ALL: [PathRejection; 16] = [
        PathRejection::Empty,
        PathRejection::NoLeadingSlash,
        PathRejection::EmptySegment,
        PathRejection::DotSegment,
        PathRejection::EncodedSlash,
        PathRejection::Backslash,
        PathRejection::Nul,
        PathRejection::InvalidPercentEncoding,
        PathRejection::EncodedPercent,
        PathRejection::PathParameter,
        PathRejection::EncodedDelimiter,
        PathRejection::InvalidUtf8,
        PathRejection::InvalidCharacter,
        PathRejection::TooLong,
        PathRejection::TrailingDotOrSpace,
        PathRejection::LookalikeDelimiter,
    ];

    /// A stable machine name (`path.dot_segment`), the [`Reason::code`] of the
    /// refusal this becomes: tools and tests name a reason by its code, so
    /// rewording [`PathRejection::as_str`] changes no key. A new variant goes
    /// into [`PathRejection::ALL`] too.
    ///
    /// [`Reason::code`]: crate::decide::Reason::code
    pub fn code(self) -> &'static str {
        match self {
            PathRejection::Empty => "path.empty",
            PathRejection::NoLeadingSlash => "path.no_leading_slash",
            PathRejection::EmptySegment => "path.empty_segment",
            PathRejection::DotSegment => "path.dot_segment",
            PathRejection::EncodedSlash => "path.encoded_slash",
            PathRejection::Backslash => "path.backslash",
            PathRejection::Nul => "path.nul",
            PathRejection::InvalidPercentEncoding => "path.invalid_percent_encoding",
            PathRejection::EncodedPercent => "path.encoded_percent",
            PathRejection::PathParameter => "path.path_parameter",
            PathRejection::EncodedDelimiter => "path.encoded_delimiter",
            PathRejection::InvalidUtf8 => "path.invalid_utf8",
            PathRejection::InvalidCharacter => "path.invalid_character",
            PathRejection::TooLong => "path.too_long",
            PathRejection::TrailingDotOrSpace => "path.trailing_dot_or_space",
            PathRejection::LookalikeDelimiter => "path.lookalike_delimiter",
        }
    }

    /// A short, stable reason for logs, metrics and 403 bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            PathRejection::Empty => "path is empty",
            PathRejection::NoLeadingSlash => "path does not start with '/'",
            PathRejection::EmptySegment => "path has an empty segment ('//' or a trailing '/')",
            PathRejection::DotSegment => "path has a '.' or '..' segment",
            PathRejection::EncodedSlash => "path has an encoded '/' (%2F)",
            PathRejection::Backslash => "path has a backslash",
            PathRejection::Nul => "path has a NUL byte",
            PathRejection::InvalidPercentEncoding => "path has invalid percent-encoding",
            PathRejection::EncodedPercent => "path has an encoded '%' (double encoding)",
            PathRejection::PathParameter => "path has a ';' path parameter",
            PathRejection::EncodedDelimiter => "path has an encoded '?' or '#'",
            PathRejection::InvalidUtf8 => "path decodes to invalid UTF-8",
            PathRejection::InvalidCharacter => "path has a character that is not allowed in a path",
            PathRejection::TooLong => "path is too long",
            PathRejection::TrailingDotOrSpace => "path has a segment ending in '.' or a space",
            PathRejection::LookalikeDelimiter => "path has a look-alike of '/', '.' or another delimiter (e.g. fullwidth)",
        }
    }
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path with one reading: starts with `/`, no query, no fragment, no empty,
/// `.` or `..` segments, percent-decoded, and free of `/`, `\`, `;`, `%`, NUL
/// or control characters inside any segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath<'a> {
    decoded: Cow<'a, str>,
}

impl<'a> CanonicalPath<'a> {
    /// The decoded path, e.g. `/api/payment/create`.
    pub fn as_str(&self) -> &str {
        &self.decoded
    }

    /// The decoded segments; none for `/`.
    pub fn segments(&self) -> Segments<'_> {
        let body = self.decoded.get(1..).unwrap_or("");
        if body.is_empty() {
            Segments::empty()
        } else {
            Segments::new(body)
        }
    }
}

/// Iterator over the segments of a [`CanonicalPath`]; cheap to clone.
///
/// `text.split('/')`, searching bytes: `'/'` is ASCII, so every split point is
/// a character boundary. `str::split` with a `char` pattern goes through the
/// general character searcher, which was the largest single cost of a
/// decision (measured natively with `perf record`). [`canonicalize`] splits
/// with it too.
#[derive(Debug, Clone)]
pub struct Segments<'p> {
    rest: Option<&'p str>,
}

impl<'p> Segments<'p> {
    /// The parts of `text` between slashes, as `text.split('/')` gives them.
    fn new(text: &'p str) -> Segments<'p> {
        Segments { rest: Some(text) }
    }

    fn empty() -> Segments<'p> {
        Segments { rest: None }
    }
}

impl<'p> Iterator for Segments<'p> {
    type Item = &'p str;
    fn next(&mut self) -> Option<&'p str> {
        let text = self.rest?;
        match text.bytes().position(|b| b == b'/') {
            Some(i) => {
                self.rest = text.get(i + 1..);
                text.get(..i)
            }
            None => {
                self.rest = None;
                Some(text)
            }
        }
    }
}

/// Characters allowed raw in a path segment (RFC 3986 `pchar` without `;`,
/// plus `%` for escapes). Everything else must be percent-encoded or is refused.
fn allowed_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@' | b'%'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` escape starting at `bytes[i]` stands for, if both digits are hex.
pub(crate) fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = bytes.get(i + 1).copied().and_then(hex)?;
    let lo = bytes.get(i + 2).copied().and_then(hex)?;
    Some(hi << 4 | lo)
}

/// The request target without query or fragment.
pub fn strip_query_and_fragment(target: &str) -> &str {
    // Bytes, not chars: both delimiters are ASCII, so the cut is a character boundary.
    match target.bytes().position(|b| b == b'?' || b == b'#') {
        Some(i) => target.get(..i).unwrap_or(target),
        None => target,
    }
}

/// Canonicalise a request target (`:path`, query allowed). Allocates only when
/// the path contains percent-escapes.
pub fn canonicalize(target: &str) -> Result<CanonicalPath<'_>, PathRejection> {
    let path = strip_query_and_fragment(target);
    if path.is_empty() {
        return Err(if target.is_empty() { PathRejection::Empty } else { PathRejection::NoLeadingSlash });
    }
    let bytes = path.as_bytes();
    if bytes[0] != b'/' {
        return Err(PathRejection::NoLeadingSlash);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathRejection::TooLong);
    }
    if path == "/" {
        return Ok(CanonicalPath { decoded: Cow::Borrowed(path) });
    }
    let mut segments = 0usize;
    for segment in Segments::new(&path[1..]) {
        segments += 1;
        if segments > MAX_SEGMENTS {
            return Err(PathRejection::TooLong);
        }
        check_raw_segment(segment.as_bytes())?;
    }
    if !bytes.contains(&b'%') {
        check_decoded_segments(path)?;
        return Ok(CanonicalPath { decoded: Cow::Borrowed(path) });
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            // check_raw_segment guaranteed two hex digits follow.
            out.push(escaped_byte(bytes, i).ok_or(PathRejection::InvalidPercentEncoding)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| PathRejection::InvalidUtf8)?;
    check_decoded_segments(&decoded)?;
    Ok(CanonicalPath { decoded: Cow::Owned(decoded) })
}

/// Checks on the decoded path that raw checks cannot see: dot segments that
/// decoding produced (`%2e%2e`), trailing dots and spaces, and Unicode
/// look-alikes of delimiters.
fn check_decoded_segments(decoded: &str) -> Result<(), PathRejection> {
    for segment in Segments::new(decoded.get(1..).unwrap_or("")) {
        if segment == "." || segment == ".." {
            return Err(PathRejection::DotSegment);
        }
        if segment.ends_with(['.', ' ']) {
            return Err(PathRejection::TrailingDotOrSpace);
        }
    }
    if !decoded.is_ascii() {
        // C1 controls (U+0080..U+009F, e.g. NEL) arrive only encoded, as %C2%85.
        if decoded.chars().any(char::is_control) {
            return Err(PathRejection::InvalidCharacter);
        }
        if decoded.chars().any(is_lookalike_delimiter) {
            return Err(PathRejection::LookalikeDelimiter);
        }
    }
    Ok(())
}

/// Non-ASCII characters whose compatibility decomposition (NFKD, the first
/// half of NFKC) contains ASCII punctuation or a space: fullwidth `／`, `︰`
/// (two dots), `℀` (`a/c`), the Greek question mark (`;`), a no-break space.
/// A backend or file system that normalises Unicode would read a different
/// path, so such paths are refused. Derived from Unicode data, not a hand list.
fn is_lookalike_delimiter(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    // Slash look-alikes with no decomposition, which confusable-folding code still maps to '/'.
    if matches!(c, '\u{2215}' | '\u{2044}' | '\u{29F8}' | '\u{1735}') {
        return true;
    }
    let mut hit = false;
    unicode_normalization::char::decompose_compatible(c, |d| {
        if d.is_ascii() && !d.is_ascii_alphanumeric() {
            hit = true;
        }
    });
    hit
}

fn check_raw_segment(seg: &[u8]) -> Result<(), PathRejection> {
    if seg.is_empty() {
        return Err(PathRejection::EmptySegment);
    }
    if seg == b"." || seg == b".." {
        return Err(PathRejection::DotSegment);
    }
    let mut i = 0;
    while i < seg.len() {
        let b = seg[i];
        if b == b'%' {
            check_decoded_byte(escaped_byte(seg, i).ok_or(PathRejection::InvalidPercentEncoding)?)?;
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(PathRejection::Backslash),
            b';' => return Err(PathRejection::PathParameter),
            0 => return Err(PathRejection::Nul),
            _ if !allowed_raw(b) => return Err(PathRejection::InvalidCharacter),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn check_decoded_byte(b: u8) -> Result<(), PathRejection> {
    match b {
        b'/' => Err(PathRejection::EncodedSlash),
        b'\\' => Err(PathRejection::Backslash),
        0 => Err(PathRejection::Nul),
        b'%' => Err(PathRejection::EncodedPercent),
        b';' => Err(PathRejection::PathParameter),
        b'?' | b'#' => Err(PathRejection::EncodedDelimiter),
        0x01..=0x1f | 0x7f => Err(PathRejection::InvalidCharacter),
        _ => Ok(()),
    }
}

/// Whether `method` is a canonical HTTP method: 1–32 upper-case letters, `-` or `_`.
/// Lower-case `post` is refused rather than guessed at: backends disagree on it.
pub fn is_canonical_method(method: &str) -> bool {
    !method.is_empty() && method.len() <= 32 && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        canonicalize(p).unwrap().as_str().to_owned()
    }

    fn rejected(p: &str) -> PathRejection {
        canonicalize(p).unwrap_err()
    }

    #[test]
    fn plain_paths_pass_unchanged_and_unallocated() {
        assert_eq!(ok("/api/payment/create"), "/api/payment/create");
        assert_eq!(ok("/"), "/");
        assert!(matches!(canonicalize("/a/b").unwrap().decoded, Cow::Borrowed(_)));
    }

    #[test]
    fn query_and_fragment_are_cut_off() {
        assert_eq!(ok("/api/payment/query?x=1"), "/api/payment/query");
        assert_eq!(ok("/api/payment/create?/query"), "/api/payment/create");
        assert_eq!(ok("/a#frag"), "/a");
        assert_eq!(ok("/a#x?y"), "/a");
        assert_eq!(rejected("?x"), PathRejection::NoLeadingSlash);
    }

    #[test]
    fn unreserved_escapes_are_decoded_so_deny_rules_still_see_them() {
        assert_eq!(ok("/api/payment/%61dmin"), "/api/payment/admin");
        assert_eq!(ok("/a/my%20file"), "/a/my file");
        assert_eq!(ok("/caf%C3%A9"), "/caf\u{e9}");
    }

    #[test]
    fn dot_segments_are_refused_raw_and_encoded() {
        for p in ["/a/../b", "/a/./b", "/a/..", "/..", "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/%2e/b", "/a/.%2e/b", "/a/."] {
            assert_eq!(rejected(p), PathRejection::DotSegment, "{p}");
        }
        assert_eq!(ok("/a/..b/.c"), "/a/..b/.c", "dots inside a name are just characters");
    }

    #[test]
    fn empty_segments_are_refused() {
        for p in ["//a", "/a//b", "/a/b/", "/a/b//"] {
            assert_eq!(rejected(p), PathRejection::EmptySegment, "{p}");
        }
    }

    #[test]
    fn escaped_separators_and_double_encoding_are_refused() {
        assert_eq!(rejected("/a%2Fb"), PathRejection::EncodedSlash);
        assert_eq!(rejected("/a%2fb"), PathRejection::EncodedSlash);
        assert_eq!(rejected("/a%5Cb"), PathRejection::Backslash);
        assert_eq!(rejected("/a\\b"), PathRejection::Backslash);
        assert_eq!(rejected("/a%252fb"), PathRejection::EncodedPercent);
        assert_eq!(rejected("/a%00"), PathRejection::Nul);
        assert_eq!(rejected("/a%3Fb"), PathRejection::EncodedDelimiter);
        assert_eq!(rejected("/a%23b"), PathRejection::EncodedDelimiter);
    }

    #[test]
    fn broken_escapes_and_overlong_utf8_are_refused() {
        assert_eq!(rejected("/a%"), PathRejection::InvalidPercentEncoding);
        assert_eq!(rejected("/a%2"), PathRejection::InvalidPercentEncoding);
        assert_eq!(rejected("/a%zz"), PathRejection::InvalidPercentEncoding);
        assert_eq!(rejected("/a%c0%af"), PathRejection::InvalidUtf8);
        assert_eq!(rejected("/a%ff"), PathRejection::InvalidUtf8);
    }

    #[test]
    fn path_parameters_are_refused() {
        assert_eq!(rejected("/a;x/b"), PathRejection::PathParameter);
        assert_eq!(rejected("/a/b;/../c"), PathRejection::PathParameter);
        assert_eq!(rejected("/a%3bx"), PathRejection::PathParameter);
    }

    #[test]
    fn odd_characters_and_forms_are_refused() {
        assert_eq!(rejected(""), PathRejection::Empty);
        assert_eq!(rejected("*"), PathRejection::NoLeadingSlash);
        assert_eq!(rejected("example.com:443"), PathRejection::NoLeadingSlash);
        assert_eq!(rejected("http://host/a"), PathRejection::NoLeadingSlash);
        assert_eq!(rejected("/a b"), PathRejection::InvalidCharacter);
        assert_eq!(rejected("/a\tb"), PathRejection::InvalidCharacter);
        assert_eq!(rejected("/a\u{e9}"), PathRejection::InvalidCharacter);
        assert_eq!(rejected("/a%0d%0a"), PathRejection::InvalidCharacter);
        // Found by the canonicalize fuzz target: a C1 control (NEL) encoded as UTF-8.
        assert_eq!(rejected("/api/payment/admin%C2%85"), PathRejection::InvalidCharacter);
        assert_eq!(rejected(&"/a".repeat(MAX_SEGMENTS + 1)), PathRejection::TooLong);
        assert_eq!(rejected(&format!("/{}", "a".repeat(MAX_PATH_LEN))), PathRejection::TooLong);
    }

    #[test]
    fn segments_split_like_str_split() {
        for text in ["", "a", "a/b", "/a", "a/", "//", "a//b/", "café/ü/x", "/"] {
            let ours: Vec<&str> = Segments::new(text).collect();
            let std: Vec<&str> = text.split('/').collect();
            assert_eq!(ours, std, "{text:?}");
        }
        assert_eq!(Segments::empty().next(), None);
    }

    #[test]
    fn segments_iterate_decoded_parts() {
        let p = canonicalize("/a/%62/c").unwrap();
        assert_eq!(p.segments().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(canonicalize("/").unwrap().segments().count(), 0);
    }

    #[test]
    fn trailing_dots_and_spaces_are_refused() {
        for p in ["/docs/internal./x", "/docs/internal%20/x", "/a.", "/a/b%2E", "/a..."] {
            assert_eq!(rejected(p), PathRejection::TrailingDotOrSpace, "{p}");
        }
        assert_eq!(ok("/a.b/c.d"), "/a.b/c.d");
    }

    #[test]
    fn unicode_lookalikes_of_delimiters_are_refused() {
        // Found by the canonicalize fuzz target: U+FE30 (NFKC '..'), U+2048 ('?!'),
        // U+037E (';'), U+2100 ('a/c'), and a no-break space.
        for p in [
            "/docs%EF%BC%8Finternal",
            "/a/%EF%BC%8E%EF%BC%8E/b",
            "/a%EF%B9%92",
            "/docs/public/%EF%B8%B0/internal/x",
            "/docs/internal%E2%81%88/x",
            "/docs/internal%CD%BE/x",
            "/docs/%E2%84%80/x",
            "/docs/internal%C2%A0/x",
            "/a%E2%88%95b",
        ] {
            assert_eq!(rejected(p), PathRejection::LookalikeDelimiter, "{p}");
        }
        assert_eq!(ok("/caf%C3%A9"), "/caf\u{e9}");
    }

    #[test]
    fn methods_must_be_upper_case_tokens() {
        assert!(is_canonical_method("GET"));
        assert!(is_canonical_method("M-SEARCH"));
        assert!(!is_canonical_method("get"));
        assert!(!is_canonical_method("Post"));
        assert!(!is_canonical_method(""));
        assert!(!is_canonical_method("GET "));
    }

    #[test]
    fn all_lists_every_rejection_in_declaration_order() {
        // A variant inserted anywhere but at the end shifts the discriminants
        // after it, so leaving it out of ALL fails here.
        for (i, p) in PathRejection::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?} is not at its declaration position in PathRejection::ALL");
            assert!(p.code().starts_with("path."), "{p:?}: {:?} is not under path.", p.code());
        }
    }
}
