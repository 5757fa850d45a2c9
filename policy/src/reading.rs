//! How the backends behind a policy read a request path: the policy's
//! `path_reading` object.
//!
//! The engine decides on a path *as the backend will run it*. With no
//! `path_reading` it knows nothing about the backend, so it refuses every path
//! that some backend reads differently ([`crate::canonical`]). Each option here
//! states one fact about the backend; the engine then accepts the paths that
//! are unambiguous under that fact, and judges them on the name that backend
//! resolves. An option is only as safe as the fact: each variant's doc comment
//! says which backends it holds for, and the differential suite
//! (policy-tests/differential) checks those declarations against real ones.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// What a trailing `/` means to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrailingSlash {
    /// Unknown: `/a/b/` is refused. Some backends serve it as `/a/b`, some as
    /// a different route, some as a directory.
    #[default]
    Refuse,
    /// `/a/b/` is the same resource as `/a/b` and is judged as `/a/b`.
    /// Safe where one route answers both spellings, or one and not the
    /// other: Express and Koa (non-strict routing), Rails, Laravel, Flask
    /// (Werkzeug redirects `/a/b` to a route `/a/b/`, and 404s `/a/b/` for a
    /// route `/a/b`) and Django with `APPEND_SLASH` (which redirects `/a/b`
    /// to `/a/b/`). Not where `/a/b` and `/a/b/` are two different routes.
    SameAsWithout,
    /// `/a/b/` is its own route, distinct from `/a/b`: patterns may end in
    /// `/` (`/admin/login/`), and a pattern without one never matches a path
    /// with one. Safe for Django URL patterns without `APPEND_SLASH`,
    /// Go's `ServeMux`, Express with `strict: true`.
    Distinct,
}

/// What `;` inside a segment means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathParameters {
    /// Unknown: a raw `;` is refused (servlet containers strip what follows,
    /// other backends keep it as part of the name).
    #[default]
    Refuse,
    /// Each segment is matched without its `;…` parameters
    /// (`/shop;jsessionid=A1/cart` is `/shop/cart`), as servlet containers
    /// (Tomcat, Jetty) do before routing. The parameters are checked like any
    /// other raw characters. An encoded `%3B` is still refused, and so is a
    /// last segment with several parameters, which Tomcat strips entirely and
    /// Jetty 9.4 only in part (`/cart;a=1;b=2` is `cart;a=1` to it).
    Strip,
}

/// What an encoded `/` (`%2F`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodedSlash {
    /// Unknown: refused, since a backend that decodes the path before
    /// splitting it reads `a%2Fb` as two segments.
    #[default]
    Refuse,
    /// `%2F` is a character of the segment's name (GitLab's
    /// `/projects/group%2Fproject`): only a `*`, `**` or nothing matches such a
    /// segment. Safe only for backends that split the raw path and decode each
    /// segment (Express route parameters, Go's `EscapedPath`, Java's
    /// `getRawPath`), behind an Envoy with
    /// `path_with_escaped_slashes_action: KEEP_UNCHANGED`. Not for Python/WSGI,
    /// Java's `URI.getPath` or Go's `URL.Path`, which decode the whole path first.
    InSegment,
}

/// What `%23` (`#`), `%25` (`%`) and `%3F` (`?`) mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodedDelimiters {
    /// Unknown: refused, since a backend that decodes twice, or decodes before
    /// splitting off the query, reads another path.
    #[default]
    Refuse,
    /// Decoded once into a literal character of the name
    /// (`/wiki/C%23_(programming_language)`, `/wiki/100%25_(album)`). Safe for
    /// backends that decode the path exactly once after splitting off the
    /// query: Python's `http.server` and WSGI servers, Express, Java's `URI`,
    /// Go's `net/http`, Envoy.
    DecodeOnce,
}

/// Whether the backend compares names with or without case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// Names are compared exactly.
    #[default]
    Sensitive,
    /// Names are compared ignoring case, under Unicode, not only ASCII: `İ`
    /// and `ı` meet `i`, `ſ` meets `s`, the Kelvin sign meets `k` (Java's
    /// `equalsIgnoreCase`, .NET's `OrdinalIgnoreCase`, NTFS, HFS+, Express's
    /// default routing). Paths and patterns are both folded ([`fold_case`]), so
    /// a deny carve-out meets every spelling the backend treats as the same.
    Insensitive,
}

/// Which file system rules the backend applies to names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Unknown: refuse what any platform reads differently: a segment ending
    /// in `.` or a space (Windows strips them), characters that Windows
    /// best-fit turns into a delimiter.
    #[default]
    Any,
    /// Not Windows: a trailing `.` or space is part of the name
    /// (`/wiki/Washington,_D.C.`), and no ANSI code-page conversion happens.
    Posix,
    /// A Windows file-serving backend (IIS static files, ASP.NET on NTFS): names
    /// are judged as NTFS resolves them. Trailing dots and spaces are
    /// stripped; `::$DATA` and `::$INDEX_ALLOCATION` name the file or folder
    /// itself; any other `:` (an alternate stream) and 8.3 short names
    /// (`intern~1`) are refused, since no single long name can be known;
    /// best-fit spellings are judged as the ASCII they become, as well as
    /// spelled; case is folded.
    Windows,
    /// A macOS file-serving backend (HFS+/APFS): names are compared after NFC
    /// normalisation with the code points HFS+ ignores removed (zero-width
    /// joiners, direction marks, the byte-order mark), and case is folded.
    Macos,
}

/// Which Unicode normalisation the backend applies to names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unicode {
    /// Unknown: refuse characters that compatibility normalisation (NFKC)
    /// turns into a delimiter, a dot or a space ([`crate::canonical`]).
    #[default]
    Any,
    /// Never normalised: every code point is compared as sent, so the
    /// ideographic space, `´` or `…` are just characters of a name.
    AsSent,
    /// Names are compared after NFC (canonical equivalence: NFC-normalising
    /// applications, APFS). The NFD spelling of a denied name is denied.
    Nfc,
    /// Names are compared after NFKC (compatibility equivalence: fullwidth and
    /// mathematical letters meet ASCII ones). Look-alikes of delimiters are
    /// still refused.
    Nfkc,
}

/// The policy's `path_reading`: what it knows about how its backends read
/// paths. The default is the strict reading, which refuses every path some
/// backend reads differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PathReading {
    pub trailing_slash: TrailingSlash,
    pub path_parameters: PathParameters,
    pub encoded_slash: EncodedSlash,
    pub encoded_delimiters: EncodedDelimiters,
    pub case: Case,
    pub platform: Platform,
    pub unicode: Unicode,
    /// Spring MVC suffix pattern matching: `/docs/internal.json` may be served
    /// by the handler of `/docs/internal`. A deny rule that matches the path
    /// with its last extension(s) removed denies it too.
    pub suffix_patterns: bool,
    /// Spring's `AntPathMatcher` with `trimTokens`: each segment is matched
    /// with surrounding whitespace trimmed (`/%20internal` is `/internal`).
    pub trim_whitespace: bool,
}

/// HFS+ ignores these code points when it compares names (the list git checks
/// for `.git` look-alikes, CVE-2014-9390): ZWNJ, ZWJ, LRM, RLM, the
/// embedding and override marks, the deprecated format characters, and the BOM.
pub(crate) fn hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}')
}

/// How much a case-insensitive comparison merges. Backends disagree at the
/// edges (NTFS and .NET compare simple upper cases, one character to one;
/// Java's `equalsIgnoreCase` also compares lower cases, so `İ` meets `i` and
/// the Kelvin sign meets `k`; full case folding turns `ß` and `ẞ` into `ss`),
/// so an allow is judged on what every such backend equates and a deny on
/// what any of them does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Two names are equal when their characters have the same simple upper
    /// case: what every case-insensitive backend equates. Allow rules and
    /// placeholders are matched so.
    Least,
    /// Also what some backend equates: lower case of upper case per
    /// character, full mappings, to a fixed point, and `İ` as `i`. Deny rules
    /// are matched so too.
    Most,
}

/// The one character an iterator yields, if it yields exactly one.
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

/// [`Merge::Least`]: each character stands for its class under simple
/// (one-to-one) upper case, written in lower case where lower and upper case
/// are a pair (`É`→`é`, `ı`→`i`, `ſ`→`s`), as itself where they are not (the
/// Kelvin sign, `İ`, `ß`, `ẞ`, ligatures keep their own class).
pub fn fold_least(name: &str) -> Cow<'_, str> {
    if name.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| {
                if c.is_ascii() {
                    return c.to_ascii_lowercase();
                }
                let upper = single(c.to_uppercase()).unwrap_or(c);
                let lower = single(upper.to_lowercase()).unwrap_or(upper);
                if single(lower.to_uppercase()) == Some(upper) {
                    lower
                } else {
                    upper
                }
            })
            .collect(),
    )
}

/// [`Merge::Most`]: each character becomes the lower case of its upper case
/// (full mappings: `ß`→`ss`, `ﬁ`→`fi`), `İ` becomes `i`, repeated until
/// nothing changes (`ẞ`→`ß`→`ss`). That meets every pair a common
/// case-insensitive comparison meets: Java's `equalsIgnoreCase`
/// (`ı`→`I`→`i`, `ſ`→`S`→`s`, the Kelvin sign→`k`), NTFS's upcase table,
/// Unicode full case folding.
pub fn fold_most(name: &str) -> Cow<'_, str> {
    if name.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
        return Cow::Borrowed(name);
    }
    let once = |text: &str| -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else if c == '\u{130}' {
                out.push('i');
            } else {
                for u in c.to_uppercase() {
                    out.extend(u.to_lowercase());
                }
            }
        }
        out
    };
    let mut folded = once(name);
    // Each pass only lowers or expands; three reach the fixed point of every character.
    for _ in 0..3 {
        let again = once(&folded);
        if again == folded {
            break;
        }
        folded = again;
    }
    Cow::Owned(folded)
}

impl PathReading {
    /// Whether names are compared ignoring case: said outright, or implied by
    /// a platform whose file system does.
    pub fn folds_case(&self) -> bool {
        self.case == Case::Insensitive || matches!(self.platform, Platform::Windows | Platform::Macos)
    }

    /// Whether a name reaches the rules other than as decoded: the hot path
    /// skips [`PathReading::name`] when it does not.
    pub fn rewrites_names(&self) -> bool {
        self.folds_case()
            || self.trim_whitespace
            || matches!(self.platform, Platform::Windows | Platform::Macos)
            || matches!(self.unicode, Unicode::Nfc | Unicode::Nfkc)
    }

    /// Whether the backend may convert names to a Windows ANSI code page.
    pub fn may_best_fit(&self) -> bool {
        matches!(self.platform, Platform::Any | Platform::Windows)
    }

    /// The name a decoded segment is matched as, after the transformations
    /// that the backend always applies ([`PathReading::spelled`]), then case
    /// folding where the backend ignores case, merging as `merge` says. Also
    /// used on the policy's own literal segments, so both sides meet in one
    /// form. `Err` when the backend's name cannot be known ([`NameError`]).
    pub fn name<'a>(&self, decoded: &'a str, merge: Merge) -> Result<Cow<'a, str>, NameError> {
        let name = self.spelled(decoded)?;
        if !self.folds_case() {
            return Ok(name);
        }
        let folded = match merge {
            Merge::Least => fold_least(&name).into_owned(),
            Merge::Most => fold_most(&name).into_owned(),
        };
        if folded == *name {
            return Ok(name);
        }
        Ok(Cow::Owned(folded))
    }

    /// The name before case folding: whitespace trimmed, the platform's
    /// rules applied, Unicode normalised, as the reading says.
    pub fn spelled<'a>(&self, decoded: &'a str) -> Result<Cow<'a, str>, NameError> {
        let mut name = Cow::Borrowed(decoded);
        if self.trim_whitespace {
            // Java's String.trim: every character up to U+0020.
            let trimmed = name.trim_matches(|c: char| c <= ' ');
            if trimmed.len() != name.len() {
                name = Cow::Owned(trimmed.to_owned());
            }
        }
        match self.platform {
            Platform::Windows => name = Cow::Owned(windows_name(&name)?),
            Platform::Macos => {
                if name.chars().any(hfs_ignorable) {
                    name = Cow::Owned(name.chars().filter(|c| !hfs_ignorable(*c)).collect());
                }
                if !name.is_ascii() {
                    name = Cow::Owned(name.nfc().collect());
                }
            }
            Platform::Any | Platform::Posix => {}
        }
        if !name.is_ascii() {
            match self.unicode {
                Unicode::Nfc => name = Cow::Owned(name.nfc().collect()),
                Unicode::Nfkc => name = Cow::Owned(name.nfkc().collect()),
                Unicode::Any | Unicode::AsSent => {}
            }
        }
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name == "." || name == ".." {
            return Err(NameError::Dot);
        }
        Ok(name)
    }
}

/// Why a backend's name for a segment cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty once the backend's rules applied (`%20` trimmed).
    Empty,
    /// The name is `.` or `..` once the backend's rules applied (`..%20`).
    Dot,
    /// A `:` other than `::$DATA` / `::$INDEX_ALLOCATION`: an NTFS alternate
    /// stream (or a drive), whose file nobody can name from the path.
    Stream,
    /// An 8.3 short name (`intern~1`), which stands for a long name only the
    /// file system knows.
    ShortName,
}

/// The name NTFS resolves through the Win32 path rules: trailing dots and
/// spaces removed, a `::$DATA` or `::$INDEX_ALLOCATION` (or `:$I30:…`) stream
/// suffix naming the file or folder itself removed.
fn windows_name(segment: &str) -> Result<String, NameError> {
    let mut name = segment.trim_end_matches(['.', ' ']);
    if let Some(i) = name.find(':') {
        let (base, stream) = name.split_at(i);
        let stream = stream.to_ascii_uppercase();
        if !matches!(stream.as_str(), "::$DATA" | "::$INDEX_ALLOCATION" | ":$I30:$INDEX_ALLOCATION" | ":$DATA" | ":$I30") {
            return Err(NameError::Stream);
        }
        name = base.trim_end_matches(['.', ' ']);
    }
    if is_short_name(name) {
        return Err(NameError::ShortName);
    }
    Ok(name.to_owned())
}

/// The 8.3 short-name shape Windows generates: up to six characters, `~`, a
/// number, and an optional extension of up to three characters.
fn is_short_name(name: &str) -> bool {
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if ext.chars().count() <= 3 => stem,
        _ => name,
    };
    let Some((base, digits)) = stem.rsplit_once('~') else { return false };
    !base.is_empty() && base.chars().count() <= 6 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Which `path_reading` option would accept a path refused for `rejection`,
/// and what it assumes of the backend: said with every refusal it applies to.
pub fn accepted_by(rejection: crate::canonical::PathRejection) -> Option<&'static str> {
    use crate::canonical::PathRejection as R;
    Some(match rejection {
        R::TrailingSlash => {
            "path_reading.trailing_slash \"same_as_without\" (the backend serves /a/b/ as /a/b) or \"distinct\" (a trailing '/' is its own route)"
        }
        R::PathParameter => "path_reading.path_parameters \"strip\" (a servlet container removes ';params' from each segment before routing)",
        R::EncodedSlash => {
            "path_reading.encoded_slash \"in_segment\" (the backend splits the raw path and never decodes %2F into a separator)"
        }
        R::EncodedPercent | R::EncodedDelimiter => {
            "path_reading.encoded_delimiters \"decode_once\" (the backend decodes the path exactly once, after splitting off the query)"
        }
        R::TrailingDotOrSpace => {
            "path_reading.platform \"posix\" (the backend keeps trailing dots and spaces) or \"windows\" (judged as Windows strips them)"
        }
        R::LookalikeDelimiter => "path_reading.unicode \"as_sent\" (the backend never applies Unicode compatibility normalisation)",
        R::BestFit => "path_reading.platform \"posix\" (the backend never converts names to a Windows ANSI code page)",
        _ => return None,
    })
}

/// How a request target reads under a `path_reading`, for people and tools
/// (`mtls-authz path`, `explain`, the playground): what the backend
/// receives, the names the rules meet, or why there is no single reading and
/// what would give one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathReport {
    pub target: String,
    pub accepted: bool,
    /// The segments decoded once, as a backend that decodes once receives
    /// them (path parameters stripped where the reading strips them; a last
    /// empty segment for a trailing `/`). Absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<Vec<String>>,
    /// The names the rules are matched against. Absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// The path as the rules see it (`/a/b`). Absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Other names a declared backend may resolve (suffix matching, Windows
    /// best fit), as segments: each must be allowed too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Vec<String>>,
    /// Names only some backend resolves (the most-merging case fold, NFKC or
    /// best fit under an unknown backend, a split `%2F`), as segments: deny
    /// rules meet them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_readings: Vec<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalReport>,
}

/// Why a path was refused, and which option would accept it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefusalReport {
    /// The reason code, e.g. `path.trailing_slash`.
    pub code: &'static str,
    pub message: &'static str,
    /// The `path_reading` option that would accept the path and what it
    /// assumes of the backend; null when none would.
    pub accepted_by: Option<&'static str>,
}

impl PathReport {
    /// Read `target` the way the engine does under `reading`.
    pub fn new(target: &str, reading: &PathReading) -> PathReport {
        let split = |text: &str| crate::canonical::segments_of(text).map(str::to_owned).collect::<Vec<_>>();
        let read = crate::canonical::decode(target, reading).and_then(|d| {
            let decoded = d.segments();
            d.read(reading).map(|c| (decoded, c))
        });
        match read {
            Ok((decoded, canonical)) => PathReport {
                target: target.to_owned(),
                accepted: true,
                decoded: Some(decoded),
                segments: Some(canonical.segments().map(str::to_owned).collect()),
                path: Some(canonical.as_str().to_owned()),
                alternatives: canonical.alternatives().iter().map(|r| split(r)).collect(),
                deny_readings: canonical.deny_readings().iter().map(|r| split(r)).collect(),
                refusal: None,
            },
            Err(rejection) => PathReport {
                target: target.to_owned(),
                accepted: false,
                decoded: None,
                segments: None,
                path: None,
                alternatives: Vec::new(),
                deny_readings: Vec::new(),
                refusal: Some(RefusalReport { code: rejection.code(), message: rejection.as_str(), accepted_by: accepted_by(rejection) }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_says_what_the_backend_receives_and_what_the_rules_meet() {
        let reading = PathReading { trailing_slash: TrailingSlash::SameAsWithout, case: Case::Insensitive, ..PathReading::default() };
        let r = PathReport::new("/Admin/Login/?next=/x", &reading);
        assert!(r.accepted);
        assert_eq!(r.decoded.as_deref(), Some(&["Admin".to_owned(), "Login".to_owned(), String::new()][..]));
        assert_eq!(r.segments.as_deref(), Some(&["admin".to_owned(), "login".to_owned()][..]));
        assert_eq!(r.path.as_deref(), Some("/admin/login"));
        let refused = PathReport::new("/admin/login/", &PathReading::default());
        let why = refused.refusal.unwrap();
        assert_eq!((why.code, refused.accepted), ("path.trailing_slash", false));
        assert!(why.accepted_by.unwrap().contains("same_as_without"));
        let json = serde_json::to_string(&PathReport::new("/a", &PathReading::default())).unwrap();
        assert_eq!(json, r#"{"target":"/a","accepted":true,"decoded":["a"],"segments":["a"],"path":"/a"}"#);
    }

    #[test]
    fn the_most_merging_fold_meets_every_spelling_some_backend_equates() {
        assert_eq!(fold_most("admin"), "admin");
        assert!(matches!(fold_most("admin"), Cow::Borrowed(_)));
        assert_eq!(fold_most("ADMIN"), "admin");
        assert_eq!(fold_most("adm\u{131}n"), "admin", "dotless i (Java equalsIgnoreCase)");
        assert_eq!(fold_most("adm\u{130}n"), "admin", "dotted capital I (Java's lower case of it)");
        assert_eq!(fold_most("doc\u{17F}"), "docs", "long s");
        assert_eq!(fold_most("\u{212A}ey"), "key", "Kelvin sign");
        assert_eq!(fold_most("Stra\u{DF}e"), "strasse");
        assert_eq!(fold_most("STRA\u{1E9E}E"), "strasse", "capital sharp s, to a fixed point");
        assert_eq!(fold_most("\u{FB01}le"), "file", "ligature");
        assert_eq!(fold_most("\u{3A3}\u{3C2}"), "\u{3C3}\u{3C3}", "final sigma");
        assert_eq!(fold_most("caf\u{C9}"), "caf\u{E9}");
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            let once = fold_most(&s).into_owned();
            assert_eq!(fold_most(&once), once, "U+{:04X} folds to a fixed point", c as u32);
        }
    }

    #[test]
    fn the_least_merging_fold_meets_only_what_every_backend_equates() {
        assert_eq!(fold_least("ADMIN"), "admin");
        assert_eq!(fold_least("adm\u{131}n"), "admin", "dotless i: simple upper case I");
        assert_eq!(fold_least("doc\u{17F}"), "docs", "long s: simple upper case S");
        assert_eq!(fold_least("caf\u{C9}"), "caf\u{E9}");
        assert_eq!(fold_least("\u{3A3}\u{3C2}"), "\u{3C3}\u{3C3}");
        // NTFS and .NET keep these apart from the ASCII spelling.
        assert_eq!(fold_least("\u{212A}ey"), "\u{212A}ey", "Kelvin sign");
        assert_eq!(fold_least("\u{130}lker"), "\u{130}lker", "dotted capital I");
        assert_eq!(fold_least("stra\u{DF}e"), "stra\u{DF}e");
        assert_eq!(fold_least("STRA\u{1E9E}E"), "stra\u{1E9E}e");
        assert_eq!(fold_least("\u{FB01}ona"), "\u{FB01}ona");
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            let least = fold_least(&s).into_owned();
            assert_eq!(least.chars().count(), 1, "U+{:04X}: one character to one", c as u32);
            assert_eq!(fold_least(&least), least, "U+{:04X} folds to a fixed point", c as u32);
        }
    }

    #[test]
    fn windows_names_lose_trailing_dots_spaces_and_the_default_streams() {
        let w = PathReading { platform: Platform::Windows, ..PathReading::default() };
        assert_eq!(w.name("internal.", Merge::Least).unwrap(), "internal");
        assert_eq!(w.name("Internal. . ", Merge::Least).unwrap(), "internal");
        assert_eq!(w.name("internal::$INDEX_ALLOCATION", Merge::Least).unwrap(), "internal");
        assert_eq!(w.name("secret.txt::$data", Merge::Least).unwrap(), "secret.txt");
        assert_eq!(w.name("internal:$i30:$index_allocation", Merge::Least).unwrap(), "internal");
        assert_eq!(w.name("secret.txt:hidden", Merge::Least), Err(NameError::Stream));
        assert_eq!(w.name("c:", Merge::Least), Err(NameError::Stream));
        assert_eq!(w.name("intern~1", Merge::Least), Err(NameError::ShortName));
        assert_eq!(w.name("SECRET~12.TXT", Merge::Least), Err(NameError::ShortName));
        assert_eq!(w.name("a~b", Merge::Least).unwrap(), "a~b");
        assert_eq!(w.name("longername~1", Merge::Least).unwrap(), "longername~1", "more than six characters is no short name");
        assert_eq!(w.name("...", Merge::Least), Err(NameError::Empty));
        assert_eq!(w.name(".. ", Merge::Least), Err(NameError::Empty));
    }

    #[test]
    fn trimming_normalisation_and_macos_rules_give_the_backends_name() {
        let trim = PathReading { trim_whitespace: true, ..PathReading::default() };
        assert_eq!(trim.name(" internal", Merge::Least).unwrap(), "internal");
        assert_eq!(trim.name(" ", Merge::Least), Err(NameError::Empty));
        assert_eq!(trim.name(" .. ", Merge::Least), Err(NameError::Dot));
        let nfc = PathReading { unicode: Unicode::Nfc, ..PathReading::default() };
        assert_eq!(nfc.name("cafe\u{301}", Merge::Least).unwrap(), "caf\u{E9}");
        let nfkc = PathReading { unicode: Unicode::Nfkc, ..PathReading::default() };
        assert_eq!(nfkc.name("\u{FF41}dmin", Merge::Least).unwrap(), "admin");
        let mac = PathReading { platform: Platform::Macos, ..PathReading::default() };
        assert_eq!(mac.name("inter\u{200C}nal", Merge::Least).unwrap(), "internal");
        assert_eq!(mac.name("\u{FEFF}Internal", Merge::Least).unwrap(), "internal");
        assert_eq!(mac.name("Cafe\u{301}", Merge::Least).unwrap(), "caf\u{E9}");
        assert!(matches!(PathReading::default().name("x", Merge::Least).unwrap(), Cow::Borrowed(_)));
        assert!(!PathReading::default().rewrites_names());
        assert!(mac.rewrites_names() && nfc.rewrites_names() && trim.rewrites_names());
        assert!(!PathReading { platform: Platform::Posix, unicode: Unicode::AsSent, ..PathReading::default() }.rewrites_names());
    }
}
