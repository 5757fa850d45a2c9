//! Request paths: arbitrary strings into `canonicalize` and
//! `query_overrides_method`.
//!
//! Checks on every input:
//! 1. nothing panics;
//! 2. an accepted path has the shape `CanonicalPath` documents (leading `/`,
//!    no empty, `.` or `..` segment, no segment ending in `.` or a space, none
//!    of `\ ; % ? #`, NUL or a control character), and its segments rebuild it;
//! 3. an accepted path keeps that shape under Unicode NFKC (computed here with
//!    the `unicode-normalization` crate, independently of the engine's own
//!    list of look-alikes): a backend that normalises reads the same segments;
//! 4. accept/refuse and the decoded path agree with a second, deliberately
//!    naive reading of the documented rules (decode everything, then look);
//! 5. `query_overrides_method` agrees with a naive reading of `?_method=`;
//! 6. under a `path_reading` drawn from the input, an accepted path keeps the
//!    promised shape, and relaxing the strict reading never changes what a
//!    backend receives for a path strict mode accepts (only the names the
//!    rules meet, by the declared folding and normalisation).
//!
//! Idempotence is only asserted where it means something: a path without `%`
//! comes back as itself (minus query and fragment), and an accepted path,
//! percent-encoded again byte by byte, canonicalises to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_authz_policy::bestfit::best_fits_to_delimiter;
use mtls_authz_policy::canonical::{decode, MAX_PATH_LEN, MAX_SEGMENTS};
use mtls_authz_policy::overrides::query_overrides_method;
use mtls_authz_policy::reading::{Case, EncodedDelimiters, EncodedSlash, PathParameters, PathReading, Platform, TrailingSlash, Unicode};
use mtls_authz_policy::{canonicalize, canonicalize_with, PathRejection};
use unicode_normalization::UnicodeNormalization;

/// The documented look-alike rule: a non-ASCII character whose compatibility
/// decomposition (NFKD) holds ASCII punctuation or a space (so NFKC would turn
/// it into a delimiter, `.`, or whitespace a backend may trim), plus the slash
/// confusables the engine names that have no decomposition (DIVISION SLASH,
/// FRACTION SLASH, BIG SOLIDUS, PHILIPPINE SINGLE PUNCTUATION).
fn lookalike(c: char) -> bool {
    !c.is_ascii()
        && (matches!(c, '\u{2215}' | '\u{2044}' | '\u{29F8}' | '\u{1735}')
            || std::iter::once(c).nfkd().any(|n| n.is_ascii() && !n.is_ascii_alphanumeric()))
}

/// The code points HFS+ ignores in names (git's list for `.git` look-alikes).
fn hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}')
}

/// RFC 3986 pchar minus `;`, plus the `|`, `[` and `]` browsers send raw, as
/// the README describes what may appear raw.
fn raw_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@|[]".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The reference: `Some(decoded)` when the path has one safe reading.
fn reference(target: &str) -> Option<String> {
    // A raw '#' is refused wherever it is; the query must be visible ASCII.
    if target.contains('#') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !query.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        return None;
    }
    if path == "/" {
        return Some("/".into());
    }
    let mut decoded_segments = Vec::new();
    for raw in path[1..].split('/') {
        let bytes = raw.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            } else if raw_ok(bytes[i]) {
                out.push(bytes[i]);
                i += 1;
            } else {
                return None;
            }
        }
        let seg = String::from_utf8(out).ok()?;
        if seg.is_empty() || seg == "." || seg == ".." {
            return None;
        }
        // Windows-style backends strip a trailing dot or space.
        if seg.ends_with(['.', ' ']) {
            return None;
        }
        if seg.chars().any(lookalike) {
            return None;
        }
        // HFS+ ignores zero-width joiners, direction marks and the BOM: a
        // name of nothing else is empty or a dot segment there.
        let hfs: String = seg.chars().filter(|c| !hfs_ignorable(*c)).collect();
        if hfs.is_empty() || hfs == "." || hfs == ".." {
            return None;
        }
        // Windows best fit into a delimiter, a dot, ':' or a space: the
        // generated table is data shared with the engine; the rule is this one.
        if seg.chars().any(best_fits_to_delimiter) {
            return None;
        }
        if seg.bytes().any(|b| matches!(b, b'/' | b'\\' | b'%' | b';' | b'?' | b'#')) {
            return None;
        }
        // CanonicalPath promises no control characters; `char::is_control` is
        // C0, DEL and C1 (U+0080..=U+009F: NEL, U+0085, is whitespace and a
        // line break to Python's str.strip() and str.splitlines()).
        if seg.chars().any(char::is_control) {
            return None;
        }
        decoded_segments.push(seg);
    }
    if decoded_segments.len() > MAX_SEGMENTS {
        return None;
    }
    Some(format!("/{}", decoded_segments.join("/")))
}

/// Percent-encode every byte that may not stand raw (and `%` itself).
fn encode(decoded: &str) -> String {
    let mut out = String::new();
    for &b in decoded.as_bytes() {
        if b == b'/' || raw_ok(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn check_shape(input: &str, decoded: &str) {
    assert!(decoded.starts_with('/'), "{input:?} -> {decoded:?}: no leading '/'");
    if decoded != "/" {
        assert!(!decoded.ends_with('/'), "{input:?} -> {decoded:?}: trailing '/'");
    }
    assert!(!decoded.contains("//"), "{input:?} -> {decoded:?}: empty segment");
    for seg in decoded[1..].split('/').filter(|_| decoded != "/") {
        assert!(seg != "." && seg != "..", "{input:?} -> {decoded:?}: dot segment");
        assert!(!seg.ends_with(['.', ' ']), "{input:?} -> {decoded:?}: segment ends in '.' or ' '");
    }
    // The same path as a backend that applies NFKC reads it.
    let normalised: String = decoded.nfkc().collect();
    let before: Vec<&str> = decoded.split('/').collect();
    let after: Vec<&str> = normalised.split('/').collect();
    assert_eq!(before.len(), after.len(), "{input:?} -> {decoded:?} has other segments after NFKC: {normalised:?}");
    for seg in after.iter().skip(1) {
        assert!(
            !seg.contains(['\\', '%', ';', '?', '#']) && *seg != "." && *seg != ".." && !seg.ends_with('.'),
            "{input:?} -> {decoded:?} reads differently after NFKC: {normalised:?}"
        );
    }
    for c in decoded.chars() {
        assert!(!matches!(c, '\\' | ';' | '%' | '?' | '#' | '\0'), "{input:?} -> {decoded:?}: has {c:?}");
        // The documented promise: no control characters inside any segment.
        // char::is_control covers C0, DEL and the C1 range U+0080..=U+009F.
        assert!(!c.is_control(), "{input:?} -> {decoded:?}: control character {c:?} in a canonical path");
    }
}

/// `?_method=` in the query (before any fragment), read the way PHP's
/// `parse_str` reads names: `+` is a space, `%XX` a byte (a `%` without two
/// hex digits is itself), then cut at NUL, leading spaces dropped, cut at `[`,
/// `.` and space read as `_`, compared ignoring ASCII case.
fn reference_overrides_method(target: &str) -> bool {
    let before_fragment = target.split('#').next().unwrap_or("");
    let Some((_, query)) = before_fragment.split_once('?') else { return false };
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or("").as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < name.len() {
            match (name[i], name.get(i + 1).and_then(|&b| hex(b)), name.get(i + 2).and_then(|&b| hex(b))) {
                (b'%', Some(hi), Some(lo)) => {
                    decoded.push(hi << 4 | lo);
                    i += 3;
                }
                (b'+', _, _) => {
                    decoded.push(b' ');
                    i += 1;
                }
                (b, _, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        let name: String = String::from_utf8_lossy(&decoded)
            .split('\0')
            .next()
            .unwrap_or("")
            .trim_start_matches(' ')
            .split('[')
            .next()
            .unwrap_or("")
            .replace(['.', ' '], "_");
        name.eq_ignore_ascii_case("_method")
    })
}

/// A `path_reading` drawn from two bytes: every option, every value.
fn reading_from(a: u8, b: u8) -> PathReading {
    PathReading {
        trailing_slash: [TrailingSlash::Refuse, TrailingSlash::SameAsWithout, TrailingSlash::Distinct][usize::from(a % 3)],
        path_parameters: if a & 4 != 0 { PathParameters::Strip } else { PathParameters::Refuse },
        encoded_slash: if a & 8 != 0 { EncodedSlash::InSegment } else { EncodedSlash::Refuse },
        encoded_delimiters: if a & 16 != 0 { EncodedDelimiters::DecodeOnce } else { EncodedDelimiters::Refuse },
        case: if a & 32 != 0 { Case::Insensitive } else { Case::Sensitive },
        suffix_patterns: a & 64 != 0,
        trim_whitespace: a & 128 != 0,
        platform: [Platform::Any, Platform::Posix, Platform::Windows, Platform::Macos][usize::from(b % 4)],
        unicode: [Unicode::Any, Unicode::AsSent, Unicode::Nfc, Unicode::Nfkc][usize::from((b >> 2) % 4)],
    }
}

/// The promises of a path accepted under any reading: the names the rules
/// meet hold no separator or escape but the `%2F` of an in-segment slash, no
/// control character, no dot segment, no empty segment but a distinct trailing one.
fn check_read_shape(input: &str, reading: &PathReading) {
    let Ok(path) = canonicalize_with(input, reading) else { return };
    let segments: Vec<&str> = path.segments().collect();
    let distinct = reading.trailing_slash == TrailingSlash::Distinct;
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        assert!(!seg.is_empty() || (distinct && last), "{input:?} under {reading:?}: empty segment in {segments:?}");
        assert!(*seg != "." && *seg != "..", "{input:?} under {reading:?}: dot segment in {segments:?}");
        assert!(!seg.contains(['\\', ';', '\0']), "{input:?} under {reading:?}: {seg:?}");
        assert!(!seg.chars().any(char::is_control), "{input:?} under {reading:?}: control character in {seg:?}");
        let without_slashes = seg.replace("%2F", "").replace("%2f", "");
        if reading.encoded_delimiters != EncodedDelimiters::DecodeOnce || reading.encoded_slash == EncodedSlash::InSegment {
            assert!(!without_slashes.contains('%'), "{input:?} under {reading:?}: a '%' in {seg:?}");
        }
    }
    // Strict mode accepts a subset, and relaxing it never changes what the backend receives.
    if let Ok(strict) = decode(input, &PathReading::default()) {
        match decode(input, reading) {
            Ok(relaxed) => assert_eq!(strict.segments(), relaxed.segments(), "{input:?}: {reading:?} decodes it differently"),
            Err(e) => panic!("{input:?} is accepted strictly but refused under {reading:?}: {e:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let [a, b, rest @ ..] = data {
        if let Ok(input) = std::str::from_utf8(rest) {
            check_read_shape(input, &reading_from(*a, *b));
        }
    }
    let Ok(input) = std::str::from_utf8(data) else { return };
    assert_eq!(
        query_overrides_method(input),
        reference_overrides_method(input),
        "query_overrides_method and the reference disagree on {input:?}"
    );
    let result = canonicalize(input);
    let expected = reference(input);
    match &result {
        Ok(path) => {
            let decoded = path.as_str();
            check_shape(input, decoded);
            let segments: Vec<&str> = path.segments().collect();
            assert!(segments.len() <= MAX_SEGMENTS);
            let rebuilt = if segments.is_empty() { "/".to_owned() } else { format!("/{}", segments.join("/")) };
            assert_eq!(rebuilt, decoded, "segments do not rebuild the path for {input:?}");
            let without_query = input.split('?').next().unwrap_or("");
            if !without_query.contains('%') {
                assert_eq!(decoded, without_query, "a path without '%' must come back unchanged");
            }
            let again = encode(decoded);
            if again.len() <= MAX_PATH_LEN {
                match canonicalize(&again) {
                    Ok(p) => assert_eq!(p.as_str(), decoded, "re-encoding {decoded:?} as {again:?} changed it"),
                    Err(e) => panic!("{input:?} -> {decoded:?}, but its re-encoding {again:?} is refused: {e:?}"),
                }
            }
        }
        Err(reason) => {
            assert!(!reason.as_str().is_empty());
            if input.is_empty() {
                assert_eq!(*reason, PathRejection::Empty);
            }
        }
    }
    assert_eq!(
        result.as_ref().ok().map(|p| p.as_str().to_owned()),
        expected,
        "canonicalize and the reference reading disagree on {input:?} (engine said {result:?})"
    );
});
