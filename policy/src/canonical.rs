//! Request path canonicalisation: one meaning per path, or no decision at all.
//!
//! Authorization bypasses in proxies come from the proxy and the backend reading
//! one path two ways (`/a/../b`, `%2F`, `;x`, `//`). This module accepts only
//! paths with a single obvious reading and returns their decoded form; every
//! other path is refused with the reason, and the engine denies it. The query
//! is cut off first (policies are about the resource, not its parameters),
//! after checking it holds only visible ASCII; a raw `#` is refused, since
//! clients never send a fragment and some backends cut the path there.
//!
//! What counts as "one reading" depends on what is known of the backend: the
//! policy's `path_reading` ([`crate::reading`]). Reading a path takes two
//! steps: [`decode`] checks the raw target and percent-decodes it once, as a
//! backend receives it; [`Decoded::read`] turns that into the names the rules
//! are matched against, as the backend resolves them. [`canonicalize_with`]
//! does both.
//!
//! Envoy's `normalize_path`, `merge_slashes` and
//! `path_with_escaped_slashes_action` make most of these rare before the filter
//! sees them; this module keeps the filter safe where they are off.

use std::borrow::Cow;
use std::fmt;

use crate::bestfit;
use unicode_normalization::UnicodeNormalization;

use crate::reading::{
    hfs_ignorable, EncodedDelimiters, EncodedSlash, Merge, NameError, PathParameters, PathReading, Platform, TrailingSlash, Unicode,
};

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
    /// `//`: backends disagree on what an empty segment means.
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
    /// A raw `#`: clients never send a fragment, and a backend that cuts the
    /// path there (or decodes and normalises it) reads another path.
    Fragment,
    /// A control character, space or non-ASCII byte in the query, which an
    /// embedding outside Envoy might pass on unchecked.
    QueryCharacter,
    /// A trailing `/`, whose meaning depends on the backend
    /// (`path_reading.trailing_slash`).
    TrailingSlash,
    /// A character that Windows best-fit conversion turns into a delimiter,
    /// a dot, a colon or a space (`¥` into `\` under code page 932).
    BestFit,
    /// A `:` naming an NTFS alternate stream or a drive, on a Windows backend.
    NtfsStream,
    /// An 8.3 short name (`intern~1`) on a Windows backend: it stands for a
    /// long name only the file system knows.
    ShortName,
}

impl PathRejection {
    /// Every rejection, in declaration order: what filter/constants.json lists
    /// for the e2e suites and bench, which match reasons by [`PathRejection::code`].
    pub const ALL: [PathRejection; 22] = [
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
        PathRejection::Fragment,
        PathRejection::QueryCharacter,
        PathRejection::TrailingSlash,
        PathRejection::BestFit,
        PathRejection::NtfsStream,
        PathRejection::ShortName,
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
            PathRejection::Fragment => "path.fragment",
            PathRejection::QueryCharacter => "path.query_character",
            PathRejection::TrailingSlash => "path.trailing_slash",
            PathRejection::BestFit => "path.best_fit",
            PathRejection::NtfsStream => "path.ntfs_stream",
            PathRejection::ShortName => "path.short_name",
        }
    }

    /// A short, stable reason for logs, metrics and 403 bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            PathRejection::Empty => "path is empty",
            PathRejection::NoLeadingSlash => "path does not start with '/'",
            PathRejection::EmptySegment => "path has an empty segment ('//')",
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
            PathRejection::Fragment => "path has a raw '#' (a fragment)",
            PathRejection::QueryCharacter => "query has a control character, space or non-ASCII byte",
            PathRejection::TrailingSlash => "path ends in '/'",
            PathRejection::BestFit => "path has a character that Windows best-fit turns into a delimiter (e.g. U+00A5 into '\\')",
            PathRejection::NtfsStream => "path has a ':' naming an NTFS stream or drive",
            PathRejection::ShortName => "path has a Windows 8.3 short name (e.g. 'intern~1')",
        }
    }
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path with one reading, as the rules see it: starts with `/`, no query,
/// no empty, `.` or `..` segment, percent-decoded, each segment the name the
/// backend resolves ([`PathReading::name`]), and free of `\`, `;`, NUL or
/// control characters. An encoded `/` kept inside a segment
/// ([`EncodedSlash::InSegment`]) is written `%2F`, and is then the only `%`
/// the path has; otherwise a `%` is a character of a name
/// ([`EncodedDelimiters::DecodeOnce`]). Under [`TrailingSlash::Distinct`] a
/// path ending in `/` has a last, empty segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath<'a> {
    text: Cow<'a, str>,
    /// Other names a declared backend may resolve the request to (suffix
    /// matching, Windows best fit): the request is allowed only when each of
    /// them is allowed too, and denied when a deny rule meets one. Empty for most paths.
    alternatives: Vec<String>,
    /// Names some backend may resolve the request to, for deny rules only:
    /// the most-merging case fold, the split reading of an in-segment `%2F`,
    /// and under an unknown platform or Unicode handling the NFKC, HFS+ and
    /// best-fit spellings. A deny rule that meets one denies the request.
    deny_only: Vec<String>,
}

impl<'a> CanonicalPath<'a> {
    /// The path as the rules see it, e.g. `/api/payment/create`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The segments; none for `/`.
    pub fn segments(&self) -> Segments<'_> {
        segments_of(&self.text)
    }

    /// Other readings that must be allowed too (and that deny rules meet).
    pub fn alternatives(&self) -> &[String] {
        &self.alternatives
    }

    /// Readings only deny rules are matched against.
    pub fn deny_readings(&self) -> &[String] {
        &self.deny_only
    }
}

/// The segments of a path text that starts with `/`; none for `/`.
pub(crate) fn segments_of(text: &str) -> Segments<'_> {
    let body = text.get(1..).unwrap_or("");
    if body.is_empty() {
        Segments::empty()
    } else {
        Segments::new(body)
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

/// Characters allowed raw in a path segment: RFC 3986 `pchar` without `;`,
/// plus `%` for escapes, plus `|`, `[` and `]`, which browsers send
/// unencoded and no backend reads as a delimiter in a path. Everything else
/// must be percent-encoded or is refused. All of them are ASCII.
fn allowed_raw(b: u8) -> bool {
    ALLOWED_RAW[usize::from(b)]
}

/// [`allowed_raw`] as a table: every byte of every request path is looked up
/// here, and one load is cheaper than the chain of comparisons the match
/// compiles to.
static ALLOWED_RAW: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'%'
                    | b'|'
                    | b'['
                    | b']'
            );
        i += 1;
    }
    table
};

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A decoded name as a client would send it: every byte that may not stand
/// raw in a segment (and `%`) percent-encoded. The validator reads a
/// pattern's literal through [`canonicalize_with`] this way, so a literal
/// that no accepted path can spell is refused when the policy loads.
pub(crate) fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if allowed_raw(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The byte a `%XX` escape starting at `bytes[i]` stands for, if both digits are hex.
pub(crate) fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = bytes.get(i + 1).copied().and_then(hex)?;
    let lo = bytes.get(i + 2).copied().and_then(hex)?;
    Some(hi << 4 | lo)
}

/// Canonicalise a request target (`:path`, query allowed) under the strict
/// reading, which knows nothing of the backend. Allocates only when the path
/// contains percent-escapes.
pub fn canonicalize(target: &str) -> Result<CanonicalPath<'_>, PathRejection> {
    canonicalize_with(target, &PathReading::default())
}

/// Canonicalise a request target under what the policy knows of its backend.
pub fn canonicalize_with<'a>(target: &'a str, reading: &PathReading) -> Result<CanonicalPath<'a>, PathRejection> {
    decode(target, reading)?.read(reading)
}

/// A path as a backend that decodes once receives it: checked, decoded, path
/// parameters stripped when the reading says so, and a trailing `/` kept as a
/// last empty segment unless the reading refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Segments joined by `/`, an in-segment `/` written `%2F`.
    text: Cow<'a, str>,
    /// Whether the path ended in `/` (then `text` does too).
    trailing_slash: bool,
    /// Whether an encoded `/` stays in its segment, written `%2F` in `text`.
    in_segment: bool,
}

impl<'a> Decoded<'a> {
    /// The decoded path, an in-segment `/` written `%2F`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The decoded segments, each as the backend receives it (an in-segment
    /// `/` as itself); a path ending in `/` has a last, empty one.
    pub fn segments(&self) -> Vec<String> {
        segments_of(&self.text).map(|s| if self.in_segment { s.replace(ENCODED_SLASH, "/") } else { s.to_owned() }).collect()
    }

    /// The names the rules are matched against, as the backend resolves them.
    pub fn read(self, reading: &PathReading) -> Result<CanonicalPath<'a>, PathRejection> {
        let non_ascii = !self.text.is_ascii();
        let in_segment_slash = self.in_segment && self.text.contains(ENCODED_SLASH);
        if !reading.rewrites_names() && !reading.suffix_patterns && !non_ascii && !in_segment_slash {
            return Ok(self.finish(self.text.clone(), Vec::new(), Vec::new(), reading));
        }
        let trailing = self.trailing_slash;
        let primary = rename_segments(&self.text, trailing, reading, Merge::Least)?;
        let mut alternatives: Vec<String> = Vec::new();
        let mut deny_only: Vec<String> = Vec::new();
        // Spellings the backend itself may turn the path into.
        if non_ascii && reading.may_best_fit() {
            for spelling in best_fit_spellings(&self.text) {
                let read = rename_segments(&spelling, trailing, reading, Merge::Least)?;
                // A Windows backend on ANSI APIs reads it so; under an unknown platform, maybe one does.
                let into = if reading.platform == Platform::Windows { &mut alternatives } else { &mut deny_only };
                push_new(into, read, &primary);
            }
        }
        if non_ascii && reading.unicode == Unicode::Any {
            let normalised: String = segments_text(&self.text, trailing, |s| s.nfkc().collect());
            push_new(&mut deny_only, rename_segments(&normalised, trailing, reading, Merge::Least)?, &primary);
        }
        if non_ascii && reading.platform == Platform::Any && self.text.chars().any(hfs_ignorable) {
            // A name of ignorables alone is no name to HFS+ (or a dot segment, with dots).
            let count = segments_of(&self.text).count();
            for (i, segment) in segments_of(&self.text).enumerate() {
                let name: String = segment.chars().filter(|c| !hfs_ignorable(*c)).collect();
                if name.is_empty() && !(trailing && i + 1 == count) {
                    return Err(PathRejection::EmptySegment);
                }
                if name == "." || name == ".." {
                    return Err(PathRejection::DotSegment);
                }
            }
            let stripped: String = self.text.chars().filter(|c| !hfs_ignorable(*c)).collect();
            push_new(&mut deny_only, rename_segments(&stripped, trailing, reading, Merge::Least)?, &primary);
        }
        if in_segment_slash {
            // A backend that hands the name to a file system splits it there.
            push_new(&mut deny_only, primary.replace(ENCODED_SLASH, "/").replace(ENCODED_SLASH_FOLDED, "/"), &primary);
        }
        if reading.suffix_patterns {
            let read: Vec<String> = std::iter::once(&primary).chain(&alternatives).cloned().collect();
            for path in read {
                for suffix in suffix_readings(&path, trailing)? {
                    push_new(&mut alternatives, suffix, &primary);
                }
            }
            for path in deny_only.clone() {
                for suffix in suffix_readings(&path, trailing)? {
                    push_new(&mut deny_only, suffix, &primary);
                }
            }
        }
        if reading.folds_case() {
            // What the most-merging comparison some backend makes meets, for deny rules.
            for path in std::iter::once(&primary).chain(&alternatives).cloned().collect::<Vec<_>>() {
                let most = rename_segments(&path, trailing, reading, Merge::Most)?;
                push_new(&mut deny_only, most, &primary);
            }
        }
        Ok(self.finish(Cow::Owned(primary), alternatives, deny_only, reading))
    }

    fn finish(&self, text: Cow<'a, str>, alternatives: Vec<String>, deny_only: Vec<String>, reading: &PathReading) -> CanonicalPath<'a> {
        // SameAsWithout: the rules see the path without its trailing '/'.
        let without = self.trailing_slash && reading.trailing_slash == TrailingSlash::SameAsWithout;
        let strip = |paths: Vec<String>| -> Vec<String> {
            if without {
                paths.into_iter().map(|e| e.strip_suffix('/').unwrap_or(&e).to_owned()).collect()
            } else {
                paths
            }
        };
        let text = match text {
            Cow::Borrowed(t) if without => Cow::Borrowed(t.strip_suffix('/').unwrap_or(t)),
            Cow::Owned(t) if without => Cow::Owned(t.strip_suffix('/').unwrap_or(&t).to_owned()),
            text => text,
        };
        CanonicalPath { text, alternatives: strip(alternatives), deny_only: strip(deny_only) }
    }
}

/// Add `path` to `list` unless it is the primary reading or already there.
fn push_new(list: &mut Vec<String>, path: String, primary: &str) {
    if path != primary && !list.contains(&path) {
        list.push(path);
    }
}

/// The path with `f` applied to each name (a trailing `/` kept).
fn segments_text(text: &str, trailing_slash: bool, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let count = segments_of(text).count();
    for (i, segment) in segments_of(text).enumerate() {
        out.push('/');
        if !(trailing_slash && i + 1 == count) {
            out.push_str(&f(segment));
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// How an encoded `/` kept inside a segment is written in a decoded path.
const ENCODED_SLASH: &str = "%2F";
/// The same after case folding.
const ENCODED_SLASH_FOLDED: &str = "%2f";

/// At most this many readings of one path by suffix matching (one per `.` in
/// the last segment); a path with more is refused as too long.
const MAX_SUFFIX_READINGS: usize = 16;

/// The path with each segment replaced by the name the backend resolves.
fn rename_segments(text: &str, trailing_slash: bool, reading: &PathReading, merge: Merge) -> Result<String, PathRejection> {
    let mut out = String::with_capacity(text.len());
    let count = segments_of(text).count();
    for (i, segment) in segments_of(text).enumerate() {
        out.push('/');
        if trailing_slash && i + 1 == count {
            break;
        }
        let name = reading.name(segment, merge).map_err(|e| match e {
            NameError::Empty => PathRejection::EmptySegment,
            NameError::Dot => PathRejection::DotSegment,
            NameError::Stream => PathRejection::NtfsStream,
            NameError::ShortName => PathRejection::ShortName,
        })?;
        // Normalisation can make a delimiter of a character that was none
        // (U+037E is ';' under NFC): the name the backend resolves must still
        // be one the path could have spelled.
        if name.len() != segment.len() || name != segment {
            let once = reading.encoded_delimiters == EncodedDelimiters::DecodeOnce;
            let escapes = once || reading.encoded_slash == EncodedSlash::InSegment;
            let bad =
                |c: char| matches!(c, '/' | '\\' | ';') || c.is_control() || (c == '%' && !escapes) || (matches!(c, '?' | '#') && !once);
            if name.chars().any(bad) {
                return Err(PathRejection::LookalikeDelimiter);
            }
        }
        out.push_str(&name);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Spring's suffix pattern matching: `/a/name.x.y` may be served by the
/// handler of `/a/name` or `/a/name.x`, one reading per `.` in the last name
/// (not a leading one; with a trailing `/`, the name before it).
fn suffix_readings(path: &str, trailing_slash: bool) -> Result<Vec<String>, PathRejection> {
    let (base, slash) = match path.strip_suffix('/') {
        Some(base) if trailing_slash => (base, "/"),
        _ => (path, ""),
    };
    let cut = base.rfind('/').map_or(0, |i| i + 1);
    let (dir, last) = base.split_at(cut);
    let mut readings = Vec::new();
    for (i, _) in last.match_indices('.').filter(|(i, _)| *i > 0) {
        if readings.len() == MAX_SUFFIX_READINGS {
            return Err(PathRejection::TooLong);
        }
        readings.push(format!("{dir}{}{slash}", &last[..i]));
    }
    Ok(readings)
}

/// The path as each Windows ANSI code page best-fits it: one spelling per
/// code page that changes it.
fn best_fit_spellings(text: &str) -> Vec<String> {
    let mut spellings: Vec<String> = Vec::new();
    for bit in 0..bestfit::CODE_PAGES.len() {
        let mask = 1u32 << bit;
        let mut changed = false;
        let spelled: String = text
            .chars()
            .map(|c| match bestfit::best_fit_ascii(c).find(|(_, pages)| pages & mask != 0) {
                Some((byte, _)) => {
                    changed = true;
                    char::from(byte)
                }
                None => c,
            })
            .collect();
        if changed && !spellings.contains(&spelled) {
            spellings.push(spelled);
        }
    }
    spellings
}

/// Check a request target and decode its path once: the first step of
/// [`canonicalize_with`], and what tools show as "the path the backend
/// receives". Allocates only when the path has escapes or stripped parameters.
pub fn decode<'a>(target: &'a str, reading: &PathReading) -> Result<Decoded<'a>, PathRejection> {
    decode_with(target, reading, true)
}

/// [`decode`]; `shortcut` takes the path as its own decoding when it has
/// nothing to decode (off only in the test that holds the shortcut to the
/// full checks).
fn decode_with<'a>(target: &'a str, reading: &PathReading, shortcut: bool) -> Result<Decoded<'a>, PathRejection> {
    let (path, query) = match target.bytes().position(|b| b == b'?' || b == b'#') {
        Some(i) => (target.get(..i).unwrap_or(target), target.get(i..).unwrap_or("")),
        None => (target, ""),
    };
    if query.bytes().any(|b| b == b'#') {
        return Err(PathRejection::Fragment);
    }
    if query.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(PathRejection::QueryCharacter);
    }
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
        return Ok(Decoded { text: Cow::Borrowed(path), trailing_slash: false, in_segment: false });
    }
    let trailing_slash = path.ends_with('/');
    if trailing_slash && reading.trailing_slash == TrailingSlash::Refuse {
        return Err(if path.ends_with("//") { PathRejection::EmptySegment } else { PathRejection::TrailingSlash });
    }
    let body = if trailing_slash { &path[1..path.len() - 1] } else { &path[1..] };
    let mut segments = 0usize;
    let mut stripped = false;
    let mut escaped = false;
    let mut trailing_dot = false;
    let mut rest = Segments::new(body).peekable();
    while let Some(segment) = rest.next() {
        segments += 1;
        if segments > MAX_SEGMENTS {
            return Err(PathRejection::TooLong);
        }
        let (name, parameters) = split_parameters(segment, reading);
        if let Some(parameters) = parameters {
            check_parameters(parameters.as_bytes())?;
            // Servlet containers disagree on a last segment with several
            // parameters: Tomcat strips them all, Jetty 9.4 only the last
            // (`/cart;a=1;b=2` is `cart;a=1` to it). Elsewhere they agree.
            if rest.peek().is_none() && !trailing_slash && parameters.contains(';') {
                return Err(PathRejection::PathParameter);
            }
            stripped = true;
        }
        escaped |= check_raw_segment(name.as_bytes(), reading)?;
        trailing_dot |= name.ends_with('.');
    }
    let text = if shortcut && !escaped && !stripped {
        // Nothing to decode: the path is its own decoding, and of the checks
        // on a decoded path only the trailing dot can fail. The raw checks
        // refused dot segments, and every character they let through is ASCII
        // (a space, a `%2F` or a non-ASCII character only arrives encoded).
        if trailing_dot && reading.platform == Platform::Any {
            return Err(PathRejection::TrailingDotOrSpace);
        }
        Cow::Borrowed(path)
    } else {
        let mut out = Vec::with_capacity(path.len());
        for segment in Segments::new(body) {
            out.push(b'/');
            let (name, _) = split_parameters(segment, reading);
            decode_segment(name.as_bytes(), &mut out)?;
        }
        if trailing_slash {
            out.push(b'/');
        }
        let text = Cow::Owned(String::from_utf8(out).map_err(|_| PathRejection::InvalidUtf8)?);
        check_decoded_segments(&text, trailing_slash, reading)?;
        text
    };
    let in_segment = reading.encoded_slash == EncodedSlash::InSegment;
    Ok(Decoded { text, trailing_slash, in_segment })
}

/// A raw segment and its `;` parameters, when the reading strips them.
fn split_parameters<'s>(segment: &'s str, reading: &PathReading) -> (&'s str, Option<&'s str>) {
    if reading.path_parameters == PathParameters::Refuse {
        return (segment, None);
    }
    match segment.find(';') {
        Some(i) => (&segment[..i], segment.get(i + 1..)),
        None => (segment, None),
    }
}

/// Path parameters are dropped, but still only the characters a path may
/// hold: a parameter cannot smuggle a control character or a broken escape.
fn check_parameters(parameters: &[u8]) -> Result<(), PathRejection> {
    let mut i = 0;
    while i < parameters.len() {
        match parameters[i] {
            b'%' => {
                let b = escaped_byte(parameters, i).ok_or(PathRejection::InvalidPercentEncoding)?;
                if b < 0x20 || b == 0x7f {
                    return Err(if b == 0 { PathRejection::Nul } else { PathRejection::InvalidCharacter });
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathRejection::Backslash),
            b';' => {}
            b if !allowed_raw(b) => return Err(PathRejection::InvalidCharacter),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Percent-decode one checked raw segment onto `out`. An encoded `/` (only
/// accepted under [`EncodedSlash::InSegment`]) stays `%2F`.
fn decode_segment(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathRejection> {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            // check_raw_segment guaranteed two hex digits follow.
            match escaped_byte(raw, i).ok_or(PathRejection::InvalidPercentEncoding)? {
                b'/' => out.extend_from_slice(ENCODED_SLASH.as_bytes()),
                b => out.push(b),
            }
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(())
}

/// Checks on the decoded path that raw checks cannot see: dot segments that
/// decoding produced (`%2e%2e`), trailing dots and spaces, control
/// characters, and the non-ASCII characters that some backend turns into a
/// delimiter: Unicode look-alikes and Windows best-fit characters.
fn check_decoded_segments(decoded: &str, trailing_slash: bool, reading: &PathReading) -> Result<(), PathRejection> {
    let body = decoded.get(1..).unwrap_or("");
    let body = if trailing_slash { body.strip_suffix('/').unwrap_or(body) } else { body };
    for segment in Segments::new(body) {
        if segment == "." || segment == ".." {
            return Err(PathRejection::DotSegment);
        }
        if reading.platform == Platform::Any && segment.ends_with(['.', ' ']) {
            return Err(PathRejection::TrailingDotOrSpace);
        }
        // A name holding an encoded '/' (in_segment) is a path to a backend
        // that hands it to a file system: its parts must be names too.
        if reading.encoded_slash == EncodedSlash::InSegment && segment.contains(ENCODED_SLASH) {
            for part in segment.split(ENCODED_SLASH) {
                if part.is_empty() {
                    return Err(PathRejection::EmptySegment);
                }
                if part == "." || part == ".." {
                    return Err(PathRejection::DotSegment);
                }
            }
        }
    }
    if !decoded.is_ascii() {
        // C1 controls (U+0080..U+009F, e.g. NEL) arrive only encoded, as %C2%85.
        if decoded.chars().any(char::is_control) {
            return Err(PathRejection::InvalidCharacter);
        }
        if matches!(reading.unicode, Unicode::Any | Unicode::Nfkc) && decoded.chars().any(is_lookalike_delimiter) {
            return Err(PathRejection::LookalikeDelimiter);
        }
        if reading.may_best_fit() && decoded.chars().any(bestfit::best_fits_to_delimiter) {
            return Err(PathRejection::BestFit);
        }
    }
    Ok(())
}

/// Non-ASCII characters whose compatibility decomposition (NFKD, the first
/// half of NFKC) contains ASCII punctuation or a space: fullwidth `／`, `︰`
/// (two dots), `℀` (`a/c`), the Greek question mark (`;`), a no-break space,
/// U+FE70 (a space and a combining mark). A backend or file system that
/// normalises Unicode would read a different path, so such paths are
/// refused unless the policy says its backend never normalises
/// ([`Unicode::AsSent`], [`Unicode::Nfc`]). Derived from Unicode data, not a
/// hand list; the fuzz target holds it to the same definition.
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

/// Check one raw segment (its parameters cut off); `Ok(true)` when it holds
/// a percent-escape, i.e. must be decoded.
fn check_raw_segment(seg: &[u8], reading: &PathReading) -> Result<bool, PathRejection> {
    if seg.is_empty() {
        return Err(PathRejection::EmptySegment);
    }
    if seg == b"." || seg == b".." {
        return Err(PathRejection::DotSegment);
    }
    let mut escaped = false;
    let mut i = 0;
    while i < seg.len() {
        let b = seg[i];
        if b == b'%' {
            check_decoded_byte(escaped_byte(seg, i).ok_or(PathRejection::InvalidPercentEncoding)?, reading)?;
            escaped = true;
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
    Ok(escaped)
}

fn check_decoded_byte(b: u8, reading: &PathReading) -> Result<(), PathRejection> {
    let once = reading.encoded_delimiters == EncodedDelimiters::DecodeOnce;
    let in_segment = reading.encoded_slash == EncodedSlash::InSegment;
    match b {
        b'/' if in_segment => Ok(()),
        b'/' => Err(PathRejection::EncodedSlash),
        b'\\' => Err(PathRejection::Backslash),
        0 => Err(PathRejection::Nul),
        // With %2F kept inside names, a decoded '%' would make "%2F" mean two things.
        b'%' if once && !in_segment => Ok(()),
        b'%' => Err(PathRejection::EncodedPercent),
        b';' => Err(PathRejection::PathParameter),
        b'?' | b'#' if once => Ok(()),
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

/// The methods a policy usually names, which it need not copy.
const KNOWN_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// `method` as a policy keeps it: a static name when it is one of the usual
/// methods, else a copy.
pub fn method_name(method: &str) -> std::borrow::Cow<'static, str> {
    match KNOWN_METHODS.iter().find(|&&known| known == method) {
        Some(&known) => std::borrow::Cow::Borrowed(known),
        None => std::borrow::Cow::Owned(method.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_methods_are_borrowed_and_others_copied_with_the_same_text() {
        for m in ["GET", "TRACE", "PROPFIND", "M-SEARCH"] {
            let name = method_name(m);
            assert_eq!(name, m);
            assert_eq!(matches!(name, std::borrow::Cow::Borrowed(_)), KNOWN_METHODS.contains(&m), "{m}");
        }
    }

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
        assert!(matches!(canonicalize("/a/b").unwrap().text, Cow::Borrowed(_)));
    }

    #[test]
    fn the_query_is_cut_off() {
        assert_eq!(ok("/api/payment/query?x=1"), "/api/payment/query");
        assert_eq!(ok("/api/payment/create?/query"), "/api/payment/create");
        assert_eq!(ok("/a?"), "/a");
        assert_eq!(rejected("?x"), PathRejection::NoLeadingSlash);
    }

    #[test]
    fn a_raw_fragment_is_refused_not_cut_off() {
        // Go's FileServer and wsgiref + normpath read this as /api/payment/admin/x.
        for p in ["/api/payment/query#/../admin/x", "/a#frag", "/a#x?y", "/a?x=1#y", "/a#", "#"] {
            assert_eq!(rejected(p), PathRejection::Fragment, "{p}");
        }
    }

    #[test]
    fn the_query_holds_only_visible_ascii() {
        for p in ["/a?x=\u{1}", "/a?x y", "/a?x=\t", "/a?x=\u{7f}", "/a?x=\u{e9}", "/a?\r\nX-Injected: 1"] {
            assert_eq!(rejected(p), PathRejection::QueryCharacter, "{p:?}");
        }
        assert_eq!(ok("/a?x=%00&y=%C3%A9&z=a+b"), "/a", "escapes are the query's business");
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
        for p in ["//a", "/a//b", "/a/b//", "//"] {
            assert_eq!(rejected(p), PathRejection::EmptySegment, "{p}");
        }
        assert_eq!(rejected("/a/b/"), PathRejection::TrailingSlash);
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

    fn with(json: &str) -> PathReading {
        let policy = format!(r#"{{"version": 1, "default_action": "deny", "path_reading": {json}, "rules": []}}"#);
        crate::Policy::from_json(&policy).unwrap().path_reading
    }

    fn read(p: &str, reading: &PathReading) -> Result<(String, Vec<String>), PathRejection> {
        canonicalize_with(p, reading).map(|c| (c.as_str().to_owned(), c.alternatives().to_vec()))
    }

    fn read_ok(p: &str, reading: &PathReading) -> String {
        read(p, reading).unwrap().0
    }

    #[test]
    fn browsers_unencoded_brackets_and_bars_are_accepted() {
        assert_eq!(ok("/search/a|b"), "/search/a|b");
        assert_eq!(ok("/x[0]/y"), "/x[0]/y");
        for p in ["/a<b", "/a>b", "/a\"b", "/a{b", "/a}b", "/a`b", "/a^b"] {
            assert_eq!(rejected(p), PathRejection::InvalidCharacter, "{p}");
        }
    }

    #[test]
    fn windows_best_fit_delimiters_are_refused_unless_the_backend_is_not_windows() {
        for p in [
            "/api/payment/query/..%C2%A5..%C2%A5admin/x", // U+00A5 -> '\\' under 932
            "/a/%E2%82%A9b",                              // U+20A9 -> '\\' under 949
            "/a/x%EF%BC%9Ay",                             // U+FF1A -> ':'
            "/a/x%E3%80%80",                              // U+3000 -> ' '
            "/a/%C2%B4x",                                 // U+00B4 -> '/' under 1253
        ] {
            assert!(matches!(rejected(p), PathRejection::BestFit | PathRejection::LookalikeDelimiter), "{p}");
        }
        assert_eq!(rejected("/api/payment/query/..%C2%A5..%C2%A5admin/x"), PathRejection::BestFit);
        let posix = with(r#"{"platform": "posix", "unicode": "as_sent"}"#);
        assert_eq!(read_ok("/a/%C2%A5100", &posix), "/a/\u{a5}100");
        assert_eq!(read_ok("/a/x%E3%80%80y", &posix), "/a/x\u{3000}y", "the ideographic space");
        assert_eq!(read_ok("/a/x%C2%B4", &posix), "/a/x\u{b4}", "the acute accent");
        assert_eq!(read_ok("/a/x%E2%80%A6", &posix), "/a/x\u{2026}", "the ellipsis");
        assert_eq!(rejected("/a/x%E2%80%A6"), PathRejection::LookalikeDelimiter);
        assert_eq!(read("/a/%C2%A5", &with(r#"{"platform": "windows"}"#)), Err(PathRejection::BestFit));
    }

    #[test]
    fn the_fuzzers_fe70_is_a_lookalike_by_the_one_definition() {
        // U+FE70's compatibility decomposition starts with a space: NFKC turns
        // `/x/%EF%B9%B0` into a segment with a leading space.
        assert_eq!(rejected("/docs/public/%EF%B9%B0/i/a/x"), PathRejection::LookalikeDelimiter);
        let as_sent = with(r#"{"unicode": "as_sent"}"#);
        assert_eq!(read_ok("/docs/public/%EF%B9%B0/i/a/x", &as_sent), "/docs/public/\u{fe70}/i/a/x");
    }

    #[test]
    fn trailing_slashes_read_as_the_backend_routes_them() {
        let same = with(r#"{"trailing_slash": "same_as_without"}"#);
        assert_eq!(read_ok("/admin/login/", &same), "/admin/login");
        assert_eq!(read_ok("/admin/login", &same), "/admin/login");
        assert_eq!(read_ok("/", &same), "/");
        assert_eq!(read("/admin//", &same), Err(PathRejection::EmptySegment));
        assert_eq!(read("/admin/../", &same), Err(PathRejection::DotSegment));
        assert_eq!(read("/admin/%2e/", &same), Err(PathRejection::DotSegment));
        let distinct = with(r#"{"trailing_slash": "distinct"}"#);
        let c = canonicalize_with("/admin/login/", &distinct).unwrap();
        assert_eq!(c.segments().collect::<Vec<_>>(), ["admin", "login", ""]);
        assert_eq!(read_ok("/api/%61/", &distinct), "/api/a/");
        assert_eq!(decode("/api/%61/", &distinct).unwrap().segments(), ["api", "a", ""]);
    }

    #[test]
    fn servlet_path_parameters_are_stripped_when_the_policy_says_so() {
        let strip = with(r#"{"path_parameters": "strip"}"#);
        assert_eq!(read_ok("/shop;jsessionid=A1B2/cart", &strip), "/shop/cart");
        assert_eq!(read("/shop/cart;jsessionid=A1B2;x=y", &strip), Err(PathRejection::PathParameter), "Jetty keeps all but the last");
        assert_eq!(read_ok("/shop;a=1;b=2/cart", &strip), "/shop/cart", "every container strips these");
        let strip_slash = with(r#"{"path_parameters": "strip", "trailing_slash": "same_as_without"}"#);
        assert_eq!(read_ok("/shop/cart;a=1;b=2/", &strip_slash), "/shop/cart");
        assert_eq!(read_ok("/shop/cart;jsessionid=A1B2?q=1", &strip), "/shop/cart");
        assert_eq!(read("/..;/admin", &strip), Err(PathRejection::DotSegment), "Tomcat reads ..; as ..");
        assert_eq!(read("/a/;x/b", &strip), Err(PathRejection::EmptySegment));
        assert_eq!(read("/a;x%00/b", &strip), Err(PathRejection::Nul));
        assert_eq!(read("/a;x\\y/b", &strip), Err(PathRejection::Backslash));
        assert_eq!(read("/a%3Bx/b", &strip), Err(PathRejection::PathParameter), "an encoded ';' is a name character to some");
    }

    #[test]
    fn encoded_slashes_stay_inside_their_segment_when_the_policy_says_so() {
        let keep = with(r#"{"encoded_slash": "in_segment"}"#);
        let c = canonicalize_with("/api/v4/projects/group%2Fproject/issues", &keep).unwrap();
        assert_eq!(c.segments().collect::<Vec<_>>(), ["api", "v4", "projects", "group%2Fproject", "issues"]);
        assert_eq!(decode("/api/v4/projects/group%2fproject", &keep).unwrap().segments(), ["api", "v4", "projects", "group/project"]);
        assert_eq!(read("/a%2F..%2Fb", &keep), Err(PathRejection::DotSegment), "a file-serving backend resolves it");
        assert_eq!(
            read("/a/%252F", &with(r#"{"encoded_slash": "in_segment", "encoded_delimiters": "decode_once"}"#)),
            Err(PathRejection::EncodedPercent)
        );
        assert_eq!(rejected("/api/v4/projects/group%2Fproject"), PathRejection::EncodedSlash);
    }

    #[test]
    fn encoded_delimiters_decode_once_into_names_when_the_policy_says_so() {
        let once = with(r#"{"encoded_delimiters": "decode_once"}"#);
        assert_eq!(read_ok("/wiki/C%23_(programming_language)", &once), "/wiki/C#_(programming_language)");
        assert_eq!(read_ok("/wiki/100%25_(album)", &once), "/wiki/100%_(album)");
        assert_eq!(read_ok("/wiki/Why%3F", &once), "/wiki/Why?");
        assert_eq!(read_ok("/a/%252e%252e", &once), "/a/%2e%2e", "decoded once, as the backend does");
        assert_eq!(read("/a/%2F", &once), Err(PathRejection::EncodedSlash));
        assert_eq!(rejected("/wiki/C%23_(programming_language)"), PathRejection::EncodedDelimiter);
        assert_eq!(rejected("/wiki/100%25_(album)"), PathRejection::EncodedPercent);
    }

    #[test]
    fn trailing_dots_are_names_on_posix_and_stripped_on_windows() {
        let posix = with(r#"{"platform": "posix"}"#);
        assert_eq!(read_ok("/wiki/Washington,_D.C.", &posix), "/wiki/Washington,_D.C.");
        let windows = with(r#"{"platform": "windows"}"#);
        assert_eq!(read_ok("/Docs/Internal./x", &windows), "/docs/internal/x");
        assert_eq!(read_ok("/docs/internal::$INDEX_ALLOCATION/secret", &windows), "/docs/internal/secret");
        assert_eq!(read("/docs/intern~1/secret", &windows), Err(PathRejection::ShortName));
        assert_eq!(read("/docs/secret.txt:hidden", &windows), Err(PathRejection::NtfsStream));
        assert_eq!(read("/docs/.../x", &windows), Err(PathRejection::EmptySegment));
    }

    #[test]
    fn windows_best_fit_letters_are_a_second_reading() {
        let windows = with(r#"{"platform": "windows", "unicode": "as_sent"}"#);
        // U+FF49 FULLWIDTH SMALL LETTER I best-fits to 'i' under the single-byte code pages.
        let (path, extra) = read("/docs/%EF%BD%89nternal/x", &windows).unwrap();
        assert_eq!(path, "/docs/\u{ff49}nternal/x");
        assert!(extra.contains(&"/docs/internal/x".to_owned()), "{extra:?}");
    }

    #[test]
    fn unicode_normalising_backends_are_judged_on_the_normal_form() {
        let nfc = with(r#"{"unicode": "nfc"}"#);
        assert_eq!(read_ok("/docs/cafe%CC%81", &nfc), "/docs/caf\u{e9}");
        let nfkc = with(r#"{"unicode": "nfkc"}"#);
        assert_eq!(read_ok("/docs/%EF%BD%89nternal", &nfkc), "/docs/internal");
        assert_eq!(read("/docs%EF%BC%8Finternal", &nfkc), Err(PathRejection::LookalikeDelimiter));
        let mac = with(r#"{"platform": "macos"}"#);
        assert_eq!(read_ok("/docs/inter%E2%80%8Cnal/secret", &mac), "/docs/internal/secret");
        assert_eq!(read_ok("/docs/%EF%BB%BFInternal/secret", &mac), "/docs/internal/secret");
        assert_eq!(read_ok("/docs/Internal./x", &mac), "/docs/internal./x", "APFS keeps trailing dots");
    }

    #[test]
    fn a_name_normalisation_turns_into_a_delimiter_is_refused() {
        // Found by the canonicalize fuzz target: U+037E GREEK QUESTION MARK is ';' under NFC too.
        let nfc = with(r#"{"unicode": "nfc", "platform": "posix", "case": "insensitive"}"#);
        assert_eq!(read("/%CD%BEdss", &nfc), Err(PathRejection::LookalikeDelimiter));
        assert_eq!(
            read("/docs/internal%CD%BE/x", &with(r#"{"unicode": "nfc", "platform": "posix"}"#)),
            Err(PathRejection::LookalikeDelimiter)
        );
        assert_eq!(read_ok("/docs/caf%C3%A9", &nfc), "/docs/caf\u{e9}");
    }

    #[test]
    fn case_insensitive_backends_are_judged_on_the_folded_name() {
        let ci = with(r#"{"case": "insensitive"}"#);
        assert_eq!(read_ok("/Docs/ADM%C4%B1N", &ci), "/docs/admin", "dotless i");
        assert_eq!(read_ok("/doc%C5%BF/x", &ci), "/docs/x", "long s");
        // Allow rules see what every case-insensitive backend equates; deny rules also what any does.
        let deny = |p: &str| canonicalize_with(p, &ci).unwrap().deny_readings().to_vec();
        assert_eq!(read_ok("/%E2%84%AAey", &ci), "/\u{212A}ey", "the Kelvin sign is not k to NTFS or .NET");
        assert_eq!(deny("/%E2%84%AAey"), ["/key"], "but is to Java");
        assert_eq!(read_ok("/STRA%E1%BA%9EE", &ci), "/stra\u{1E9E}e");
        assert_eq!(deny("/STRA%E1%BA%9EE"), ["/strasse"], "capital sharp s, folded to a fixed point");
        assert!(deny("/docs/x").is_empty(), "ASCII has one fold");
    }

    #[test]
    fn unknown_backends_add_the_normalised_spellings_for_deny_rules() {
        let strict = PathReading::default();
        let deny = |p: &str| canonicalize_with(p, &strict).unwrap().deny_readings().to_vec();
        assert_eq!(read_ok("/docs/%EF%BD%89nternal/x", &strict), "/docs/\u{ff49}nternal/x");
        assert!(deny("/docs/%EF%BD%89nternal/x").contains(&"/docs/internal/x".to_owned()), "fullwidth i: NFKC and best fit");
        assert!(deny("/docs/%E2%85%B0nternal/x").contains(&"/docs/internal/x".to_owned()), "small roman numeral one: NFKC");
        assert_eq!(deny("/docs/inter%E2%80%8Cnal/x"), ["/docs/internal/x"], "ZWNJ: HFS+ ignores it");
        assert_eq!(deny("/docs/%EF%BB%BFinternal/x"), ["/docs/internal/x"], "BOM");
        // Found by the canonicalize fuzz target: a name of ignorables alone is no name on HFS+.
        assert_eq!(read("/ab/%EF%BB%BF", &strict), Err(PathRejection::EmptySegment));
        assert_eq!(read("/%E2%80%8C", &strict), Err(PathRejection::EmptySegment));
        assert_eq!(read("/ab/%E2%80%8C..%E2%80%8C/x", &strict), Err(PathRejection::DotSegment));
        assert_eq!(deny("/docs/caf%C3%A9"), ["/docs/cafe"], "é best-fits to e under 932");
        assert!(deny("/docs/%E6%97%A5").is_empty(), "日 has no other spelling");
        let as_sent = with(r#"{"unicode": "as_sent", "platform": "posix"}"#);
        assert!(canonicalize_with("/docs/%EF%BD%89nternal/x", &as_sent).unwrap().deny_readings().is_empty());
    }

    #[test]
    fn an_in_segment_slash_is_split_for_deny_rules_and_its_parts_must_be_names() {
        let keep = with(r#"{"encoded_slash": "in_segment"}"#);
        let c = canonicalize_with("/files/private%2Fsecret.txt", &keep).unwrap();
        assert_eq!(c.deny_readings(), ["/files/private/secret.txt"]);
        for p in ["/files/x%2F..%2Fprivate", "/files/%2Fx", "/files/x%2F", "/files/x%2F.%2Fy"] {
            assert!(matches!(read(p, &keep), Err(PathRejection::DotSegment | PathRejection::EmptySegment)), "{p}: {:?}", read(p, &keep));
        }
    }

    #[test]
    fn token_trimming_and_suffix_matching_read_the_name_the_matcher_uses() {
        let trim = with(r#"{"trim_whitespace": true}"#);
        let trim_posix = with(r#"{"trim_whitespace": true, "platform": "posix"}"#);
        assert_eq!(read_ok("/docs/%20internal/secret", &trim), "/docs/internal/secret");
        assert_eq!(read("/docs/%20/secret", &trim), Err(PathRejection::TrailingDotOrSpace), "a Windows backend strips it");
        assert_eq!(read("/docs/%20/secret", &trim_posix), Err(PathRejection::EmptySegment));
        assert_eq!(read("/docs/%20../secret", &trim_posix), Err(PathRejection::DotSegment));
        let suffix = with(r#"{"suffix_patterns": true}"#);
        assert_eq!(read("/docs/internal.json", &suffix), Ok(("/docs/internal.json".into(), vec!["/docs/internal".into()])));
        assert_eq!(read("/a/v.tar.gz", &suffix).unwrap().1, ["/a/v", "/a/v.tar"]);
        assert_eq!(read("/a/.hidden", &suffix).unwrap().1, Vec::<String>::new(), "a leading dot is part of the name");
        assert_eq!(read(&format!("/a/x{}", ".y".repeat(17)), &suffix), Err(PathRejection::TooLong));
        let suffix_slash = with(r#"{"suffix_patterns": true, "trailing_slash": "same_as_without"}"#);
        assert_eq!(read("/docs/internal.json/", &suffix_slash), Ok(("/docs/internal.json".into(), vec!["/docs/internal".into()])));
        let suffix_distinct = with(r#"{"suffix_patterns": true, "trailing_slash": "distinct"}"#);
        assert_eq!(read("/docs/internal.json/", &suffix_distinct).unwrap().1, ["/docs/internal/"]);
    }

    #[test]
    fn every_refusal_an_option_lifts_names_it() {
        use crate::reading::accepted_by;
        for (path, option) in [
            ("/admin/login/", "trailing_slash"),
            ("/app;jsessionid=1/x", "path_parameters"),
            ("/projects/a%2Fb", "encoded_slash"),
            ("/wiki/C%23", "encoded_delimiters"),
            ("/wiki/100%25", "encoded_delimiters"),
            ("/wiki/Washington,_D.C.", "platform"),
            ("/a/x%E2%80%A6", "unicode"),
            ("/a/%C2%A5", "platform"),
        ] {
            let hint = accepted_by(rejected(path)).unwrap_or_default();
            assert!(hint.contains(option), "{path}: {hint}");
        }
        assert_eq!(accepted_by(rejected("/a/../b")), None, "a dot segment has no reading any option accepts");
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

    proptest::proptest! {
        /// A path with nothing to decode is taken as its own decoding,
        /// skipping the checks on a decoded path: the shortcut must decide
        /// exactly what those checks decide, under every reading.
        #[test]
        fn the_no_escape_shortcut_agrees_with_the_full_checks(
            path in "(/([a-zA-Z.;~ ]|%2[eEfF]|%41|%C3%A9|%EF%BC%8F|%E2%80%8B|\\.\\.|\\.){0,4}){1,4}/?(\\?[a-z=_]{0,6})?",
            reading in 0usize..12,
        ) {
            let reading = with([
                "{}",
                r#"{"platform": "posix"}"#,
                r#"{"platform": "windows"}"#,
                r#"{"platform": "macos", "unicode": "nfc"}"#,
                r#"{"trailing_slash": "distinct"}"#,
                r#"{"trailing_slash": "same_as_without"}"#,
                r#"{"path_parameters": "strip"}"#,
                r#"{"encoded_slash": "in_segment", "platform": "posix"}"#,
                r#"{"encoded_delimiters": "decode_once", "case": "insensitive"}"#,
                r#"{"unicode": "as_sent", "platform": "posix"}"#,
                r#"{"suffix_patterns": true}"#,
                r#"{"trim_whitespace": true, "path_parameters": "strip"}"#,
            ][reading]);
            proptest::prop_assert_eq!(decode_with(&path, &reading, true), decode_with(&path, &reading, false), "{}", path);
        }
    }
}
