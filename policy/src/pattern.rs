//! Patterns for identity values and request paths.
//!
//! Both are deliberately small languages with no regular expressions, so a
//! `.` is always a dot and a `*` never crosses the separator it is defined by.

use std::fmt;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::reading::{EncodedDelimiters, EncodedSlash, Merge, PathReading, TrailingSlash};

/// Which identity field a [`ValuePattern`] is for. The field decides the
/// separators a `*` cannot cross and how a certificate's value compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `cn`, `o`, `ou`, `issuer_cn`: `.` and `/` separate segments; compared exactly.
    Name,
    /// `dns_san`: `.` separates labels. DNS names are case-insensitive and
    /// `api.shop.test.` (fully qualified) is the same name as `api.shop.test`,
    /// so case and one trailing dot are ignored on both sides.
    Dns,
    /// `uri_san`: `/` separates segments. A wildcard never matches a value with
    /// a query (`?`) or fragment (`#`): SPIFFE IDs have neither, and a `*` that
    /// swallowed one would match `spiffe://td/ns/dev#/sa/order` against
    /// `spiffe://td/ns/*/sa/order`.
    Uri,
    /// `email_san`: `@` and `.` separate parts. The domain (after the last `@`)
    /// is case-insensitive like any DNS name; the local part is compared
    /// exactly, as only the receiving mail system may interpret it.
    Email,
}

impl ValueKind {
    /// The characters a `*` may not match.
    pub fn separators(self) -> &'static [char] {
        match self {
            ValueKind::Name => &['.', '/'],
            ValueKind::Dns => &['.'],
            ValueKind::Uri => &['/'],
            ValueKind::Email => &['@', '.'],
        }
    }
}

/// A pattern for one identity value (`cn`, `dns_san`, `uri_san`, ...).
///
/// Without `*` it is an exact string. With `*`, pattern and value are both cut
/// at the field's separators (`.` for DNS names, `/` for URIs, ...); they must
/// have the same separators in the same places, and inside each segment a `*`
/// stands for one or more characters. So a `*` can never cross a separator:
/// `*.shop.test` matches `a.shop.test` but neither `a.b.shop.test` nor
/// `.shop.test`. The field's own comparison rules ([`ValueKind`]) apply on
/// top. Matching is linear and allocation-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePattern {
    /// The pattern in its canonical form (DNS names lower-cased without a
    /// trailing dot, email domains lower-cased).
    text: Box<str>,
    kind: ValueKind,
    wildcard: bool,
}

impl ValuePattern {
    /// Build a pattern for a field, bringing it into the field's canonical form.
    pub fn new(text: &str, kind: ValueKind) -> ValuePattern {
        let text = match kind {
            ValueKind::Name | ValueKind::Uri => text.to_owned(),
            ValueKind::Dns => dns_name(text).to_ascii_lowercase(),
            ValueKind::Email => match text.rsplit_once('@') {
                Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
                None => text.to_owned(),
            },
        };
        let wildcard = text.contains('*');
        ValuePattern { text: text.into_boxed_str(), kind, wildcard }
    }

    /// Does `value` (as the certificate spells it) match?
    pub fn matches(&self, value: &str) -> bool {
        let (pattern, separators) = (&*self.text, self.kind.separators());
        match (self.kind, self.wildcard) {
            (ValueKind::Name, false) => pattern == value,
            (ValueKind::Uri, false) => pattern == value,
            (ValueKind::Name, true) => segmentwise_match(pattern, value, separators, false),
            (ValueKind::Uri, true) => !value.contains(['?', '#']) && segmentwise_match(pattern, value, separators, false),
            (ValueKind::Dns, false) => pattern.eq_ignore_ascii_case(dns_name(value)),
            (ValueKind::Dns, true) => segmentwise_match(pattern, dns_name(value), separators, true),
            // A domain never holds an '@', so the last one ends the local part (which may, quoted).
            (ValueKind::Email, wildcard) => match (pattern.rsplit_once('@'), value.rsplit_once('@')) {
                (Some((p_local, p_domain)), Some((v_local, v_domain))) if wildcard => {
                    segmentwise_match(p_local, v_local, separators, false)
                        && segmentwise_match(p_domain, v_domain, ValueKind::Dns.separators(), true)
                }
                (Some((p_local, p_domain)), Some((v_local, v_domain))) => p_local == v_local && p_domain.eq_ignore_ascii_case(v_domain),
                // Without an '@' on either side there is no domain: the whole value compares exactly.
                (None, None) if wildcard => segmentwise_match(pattern, value, separators, false),
                (None, None) => pattern == value,
                _ => false,
            },
        }
    }

    /// [`ValuePattern::matches`] for a deny rule. A URI with a query or
    /// fragment matches no wildcard in an allow rule; a deny rule matches it
    /// when either reading would (the whole string, as some matchers take it,
    /// or the part before `?`/`#`), so such a certificate never slips past a
    /// deny rule that a cleaner spelling of it would meet.
    pub fn matches_for_deny(&self, value: &str) -> bool {
        match (self.kind, self.wildcard) {
            (ValueKind::Uri, true) if value.contains(['?', '#']) => {
                let separators = self.kind.separators();
                let before = value.split(['?', '#']).next().unwrap_or("");
                segmentwise_match(&self.text, value, separators, false) || segmentwise_match(&self.text, before, separators, false)
            }
            _ => self.matches(value),
        }
    }

    /// The pattern in its canonical form (see [`ValuePattern::new`]).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A DNS name without its one trailing dot: `api.shop.test.` and
/// `api.shop.test` name the same host. Only one dot goes, so a name with an
/// empty last label (`a..`) stays distinct from every valid name.
pub(crate) fn dns_name(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Cut `s` at its first separator: (segment, separator, rest).
fn split_segment<'s>(s: &'s str, separators: &[char]) -> (&'s str, Option<char>, &'s str) {
    match s.char_indices().find(|(_, c)| separators.contains(c)) {
        Some((i, c)) => (&s[..i], Some(c), &s[i + c.len_utf8()..]),
        None => (s, None, ""),
    }
}

/// `fold`: compare letters ASCII-case-insensitively (DNS names).
fn segmentwise_match(mut pattern: &str, mut value: &str, separators: &[char], fold: bool) -> bool {
    loop {
        let (p_seg, p_sep, p_rest) = split_segment(pattern, separators);
        let (v_seg, v_sep, v_rest) = split_segment(value, separators);
        if p_sep != v_sep || !glob_segment(p_seg.as_bytes(), v_seg.as_bytes(), fold) {
            return false;
        }
        if p_sep.is_none() {
            return true;
        }
        pattern = p_rest;
        value = v_rest;
    }
}

/// Glob inside one segment: `*` is one or more bytes. Works on bytes, which is
/// exact for UTF-8 since `*` only ever ends where a literal byte matches.
/// Classic single-backtrack-point algorithm: O(len(p) × len(v)), no allocation.
/// With `fold`, ASCII letters match either case.
fn glob_segment(p: &[u8], v: &[u8], fold: bool) -> bool {
    let (mut pi, mut vi) = (0usize, 0usize);
    // Where to resume after the last star: (pattern index after star, value index the star's match ends at).
    let mut backtrack: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some(b'*') => {
                // One character is mandatory; the rest is tried lazily.
                vi += 1;
                pi += 1;
                backtrack = Some((pi, vi));
            }
            Some(&c) if c == v[vi] || (fold && c.eq_ignore_ascii_case(&v[vi])) => {
                pi += 1;
                vi += 1;
            }
            _ => match backtrack {
                Some((bp, bv)) => {
                    // Let the last star take one more character and retry.
                    pi = bp;
                    vi = bv + 1;
                    backtrack = Some((bp, bv + 1));
                }
                None => return false,
            },
        }
    }
    // A star left over needs at least one character, and there are none.
    pi == p.len()
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Must equal the request segment exactly (after percent-decoding).
    /// Shared: a policy names the same segments (`api`, a service's name)
    /// in many patterns ([`PathPattern::share_literals`]).
    Literal(Arc<str>),
    /// `*`: any one non-empty segment.
    Any,
    /// `{cn}` and friends: must equal a value taken from the caller's identity.
    Placeholder(Placeholder),
}

/// Identity values a path segment can be tied to, for "each client only reaches
/// its own resources" policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{cn}`: the subject's single CN.
    Cn,
    /// `{dns_san}`: any one of the DNS SANs.
    DnsSan,
    /// `{uri_san_last_segment}`: the last path segment of the certificate's
    /// only URI SAN (`spiffe://t/ns/prod/sa/order` → `order`); a certificate
    /// with several URI SANs has no value for it.
    UriSanLastSegment,
}

impl Placeholder {
    /// Every placeholder, with the name used in policies.
    pub const ALL: [(&'static str, Placeholder); 3] =
        [("cn", Placeholder::Cn), ("dns_san", Placeholder::DnsSan), ("uri_san_last_segment", Placeholder::UriSanLastSegment)];

    /// The name inside the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Cn => "cn",
            Placeholder::DnsSan => "dns_san",
            Placeholder::UriSanLastSegment => "uri_san_last_segment",
        }
    }
}

/// A parsed path pattern: `/a/*/b`, `/a/**`, `/devices/{cn}/telemetry`, or `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    /// Segments before any trailing `**`. Empty for `/` and `/**`.
    /// Boxed, exactly as long as it is: a 10,000-rule policy holds some
    /// 30,000 patterns in every VM.
    pub segments: Box<[Segment]>,
    /// Whether the pattern ends in `/**`: zero or more further segments.
    pub rest: bool,
}

impl PathPattern {
    /// Parse and validate a path pattern for the strict reading; the error says what is malformed.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        PathPattern::parse_for(text, &PathReading::default(), Merge::Least)
    }

    /// Parse and validate a path pattern of a policy with this `path_reading`.
    /// A trailing `/` is a last, empty segment where trailing slashes are
    /// distinct routes; `%`, `?` and `#` may be written (decoded) where the
    /// backend decodes them once into names. Literal segments are stored as
    /// the name the backend resolves ([`PathReading::name`]: folded,
    /// normalised), so they meet paths in the same form: an allow rule's
    /// folded as every case-insensitive backend folds, a deny rule's as any
    /// does (`merge`).
    pub fn parse_for(text: &str, reading: &PathReading, merge: Merge) -> Result<PathPattern, String> {
        PathPattern::parse_with(text, reading, merge, &mut Literals::default())
    }

    /// [`PathPattern::parse_for`], for the patterns of one policy: `literals`
    /// holds the segments its earlier patterns named (they are read by the
    /// same `reading`), so each distinct segment is checked once and stored once.
    pub(crate) fn parse_with(text: &str, reading: &PathReading, merge: Merge, literals: &mut Literals) -> Result<PathPattern, String> {
        let Some(body) = text.strip_prefix('/') else {
            return Err("a path pattern must start with '/'".into());
        };
        let decode_once = reading.encoded_delimiters == EncodedDelimiters::DecodeOnce;
        if !decode_once && text.contains(['?', '#']) {
            return Err("a path pattern must not contain '?' or '#': paths are matched without query and fragment \
                 (path_reading.encoded_delimiters \"decode_once\" lets a name hold them)"
                .into());
        }
        if body.is_empty() {
            return Ok(PathPattern { segments: Box::default(), rest: false });
        }
        let distinct = reading.trailing_slash == TrailingSlash::Distinct;
        let raw: Vec<&str> = body.split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        let mut rest = false;
        for (i, seg) in raw.iter().enumerate() {
            let last = i + 1 == raw.len();
            match *seg {
                "" if last && distinct => segments.push(Segment::Literal(Arc::from(""))),
                "" if last => {
                    return Err("a path pattern must not end with '/'; use '/**' to match everything below \
                         (path_reading.trailing_slash \"distinct\" makes a trailing '/' its own route)"
                        .into())
                }
                "" => return Err("a path pattern must not contain an empty segment ('//')".into()),
                "**" if last => rest = true,
                "**" => return Err("'**' is only allowed as the last segment".into()),
                "*" => segments.push(Segment::Any),
                "." | ".." => return Err(format!("a path pattern must not contain a '{seg}' segment")),
                s if s.starts_with('{') && s.ends_with('}') => {
                    let name = &s[1..s.len() - 1];
                    match Placeholder::ALL.iter().find(|(n, _)| *n == name) {
                        Some((_, p)) => segments.push(Segment::Placeholder(*p)),
                        None => {
                            let known: Vec<String> = Placeholder::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                            return Err(format!("unknown placeholder '{s}'; known placeholders are {}", known.join(", ")));
                        }
                    }
                }
                s => match literals.get(s, merge) {
                    Some(name) => segments.push(Segment::Literal(name)),
                    None => {
                        let name = literal(s, reading, merge, decode_once)?;
                        segments.push(Segment::Literal(literals.insert(s, merge, name)));
                    }
                },
            }
        }
        Ok(PathPattern { segments: segments.into_boxed_slice(), rest })
    }

    /// Does the canonical path (given as its decoded segments) match, for this identity's placeholder values?
    pub fn matches<S: AsRef<str>>(&self, path: &[S], placeholder: &dyn Fn(Placeholder, &str) -> bool) -> bool {
        if path.len() < self.segments.len() || (!self.rest && path.len() != self.segments.len()) {
            return false;
        }
        self.segments.iter().zip(path).all(|(pat, seg)| {
            let seg = seg.as_ref();
            match pat {
                Segment::Literal(l) => **l == *seg,
                Segment::Any => !seg.is_empty(),
                Segment::Placeholder(p) => placeholder(*p, seg),
            }
        })
    }
}

/// A literal segment of a pattern, checked: the name the backend reads it as.
fn literal(s: &str, reading: &PathReading, merge: Merge, decode_once: bool) -> Result<Arc<str>, String> {
    if s.contains('*') {
        return Err(format!("'*' must be a whole segment ('/*/'), found '{s}'"));
    }
    if s.contains(['{', '}']) {
        return Err(format!("a placeholder must be a whole segment like '{{cn}}', found '{s}'"));
    }
    if s.contains('%') && !(decode_once && reading.encoded_slash == EncodedSlash::Refuse) {
        return Err(format!("write path patterns decoded, without percent-encoding, found '{s}'"));
    }
    if let Some(c) = s.chars().find(|c| matches!(c, '\\' | ';' | '\0') || c.is_control()) {
        return Err(format!("segment '{}' contains {:?}, which a canonical path never has", s.escape_debug(), c));
    }
    let never = |why: &str| format!("segment '{}' can never match: {why}", s.escape_debug());
    let name = reading.name(s, merge).map_err(|e| never(&format!("the backend path_reading describes reads it as {e:?}")))?;
    if name.contains('/') {
        return Err(never("the backend path_reading describes reads a '/' in it"));
    }
    if let Err(rejection) = crate::canonical::canonicalize_with(&format!("/{}", crate::canonical::encode_name(s)), reading) {
        return Err(never(&format!("a path with it is refused ({rejection})")));
    }
    Ok(Arc::from(name.as_ref()))
}

/// The literal segments one policy's patterns have named so far, checked,
/// by their text as written and how they are merged ([`PathPattern::parse_with`]).
/// A 10,000-rule policy names the same few segments (`api`, a service's name)
/// in many patterns; in a Wasm VM each small allocation also costs its
/// allocator header, and the peak of loading stays resident.
#[derive(Debug, Default)]
pub(crate) struct Literals {
    least: Merged,
    most: Merged,
}

/// The segments read under one merge.
#[derive(Debug, Default)]
struct Merged {
    /// Segments whose name is their text, as they nearly always are: the
    /// name is its own key (8 bytes an entry, where a map would take 16).
    same: FxHashSet<Arc<str>>,
    /// The others, by their text as written.
    renamed: FxHashMap<Box<str>, Arc<str>>,
}

impl Merged {
    fn get(&self, text: &str) -> Option<&Arc<str>> {
        self.same.get(text).or_else(|| self.renamed.get(text))
    }
}

impl Literals {
    fn get(&self, text: &str, merge: Merge) -> Option<Arc<str>> {
        let merged = match merge {
            Merge::Least => &self.least,
            Merge::Most => &self.most,
        };
        merged.get(text).cloned()
    }

    /// Remember `text`'s name; the name returned is shared with the same
    /// text's name under the other merge when the two are the same (allow
    /// and deny rules naming one segment).
    fn insert(&mut self, text: &str, merge: Merge, name: Arc<str>) -> Arc<str> {
        let (this, other) = match merge {
            Merge::Least => (&mut self.least, &self.most),
            Merge::Most => (&mut self.most, &self.least),
        };
        let name = match other.get(text) {
            Some(shared) if **shared == *name => Arc::clone(shared),
            _ => name,
        };
        if *name == *text {
            this.same.insert(Arc::clone(&name));
        } else {
            this.renamed.insert(text.into(), Arc::clone(&name));
        }
        name
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() && !self.rest {
            return f.write_str("/");
        }
        for s in &self.segments {
            match s {
                Segment::Literal(l) => write!(f, "/{l}")?,
                Segment::Any => f.write_str("/*")?,
                Segment::Placeholder(p) => write!(f, "/{{{}}}", p.name())?,
            }
        }
        if self.rest {
            f.write_str("/**")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal_text(p: &PathPattern, i: usize) -> &Arc<str> {
        match &p.segments[i] {
            Segment::Literal(l) => l,
            other => panic!("literal expected, found {other:?}"),
        }
    }

    #[test]
    fn one_policy_stores_each_literal_once_and_still_refuses_every_bad_segment() {
        let (reading, mut literals) = (PathReading::default(), Literals::default());
        let a = PathPattern::parse_with("/api/orders/**", &reading, Merge::Least, &mut literals).unwrap();
        let b = PathPattern::parse_with("/api/items", &reading, Merge::Most, &mut literals).unwrap();
        assert!(Arc::ptr_eq(literal_text(&a, 0), literal_text(&b, 0)), "the same name across merges is one string");
        assert_eq!(a, PathPattern::parse_for("/api/orders/**", &reading, Merge::Least).unwrap(), "sharing changes nothing read");
        for _ in 0..2 {
            let err = PathPattern::parse_with("/api/intern.", &reading, Merge::Least, &mut literals).unwrap_err();
            assert!(err.contains("can never match"), "{err}");
        }
    }

    const DNS: ValueKind = ValueKind::Dns;
    const URI: ValueKind = ValueKind::Uri;

    #[test]
    fn exact_values_compare_whole_strings() {
        let p = ValuePattern::new("order-service", ValueKind::Name);
        assert!(p.matches("order-service"));
        assert!(!p.matches("order-service2"));
        assert!(!p.matches("Order-service"));
    }

    #[test]
    fn dns_star_matches_exactly_one_label() {
        let p = ValuePattern::new("*.shop.test", DNS);
        assert!(p.matches("api.shop.test"));
        assert!(!p.matches("a.b.shop.test"), "must not cross a dot");
        assert!(!p.matches(".shop.test"), "must not match an empty label");
        assert!(!p.matches("shop.test"));
        assert!(!p.matches("apixshop.test"), "the dot is literal, not a regex wildcard");
    }

    #[test]
    fn a_dns_names_trailing_dot_is_ignored_on_both_sides() {
        for pattern in ["api.shop.test", "api.shop.test.", "*.shop.test", "*.shop.test."] {
            let p = ValuePattern::new(pattern, DNS);
            assert!(p.matches("api.shop.test."), "{pattern}");
            assert!(p.matches("api.shop.test"), "{pattern}");
            assert!(!p.matches("api.shop.test.."), "{pattern}: only one dot is the root");
            assert!(!p.matches("api.shop.test.x"), "{pattern}");
        }
        assert_eq!(ValuePattern::new("API.Shop.Test.", DNS).as_str(), "api.shop.test");
        assert!(!ValuePattern::new("*.shop.test", DNS).matches("shop.test."), "a star is still one label");
    }

    #[test]
    fn dns_names_compare_case_insensitively() {
        assert!(ValuePattern::new("api.shop.test", DNS).matches("API.Shop.TEST"));
        assert!(ValuePattern::new("*.shop.test", DNS).matches("API.SHOP.test."));
        assert!(!ValuePattern::new("Order-Service", ValueKind::Name).matches("order-service"), "other names stay exact");
    }

    #[test]
    fn an_email_domain_is_case_insensitive_its_local_part_is_not() {
        const EMAIL: ValueKind = ValueKind::Email;
        let exact = ValuePattern::new("ops@shop.test", EMAIL);
        assert!(exact.matches("ops@shop.test"));
        assert!(exact.matches("ops@Shop.Test"));
        assert!(exact.matches("ops@SHOP.TEST"));
        assert!(!exact.matches("Ops@shop.test"), "the local part is exact");
        assert!(!exact.matches("OPS@Shop.Test"));
        assert!(!exact.matches("ops@shop.test.evil"));
        // A policy domain written in capitals means the same domain.
        let upper = ValuePattern::new("ops@Shop.TEST", EMAIL);
        assert_eq!(upper.as_str(), "ops@shop.test");
        assert!(upper.matches("ops@shop.Test"));
        assert!(!ValuePattern::new("Ops@shop.test", EMAIL).matches("ops@shop.test"));

        let any_local = ValuePattern::new("*@shop.test", EMAIL);
        assert!(any_local.matches("ops@Shop.Test"));
        assert!(any_local.matches("Ops@shop.test"));
        assert!(!any_local.matches("a.b@shop.test"), "'*' stays within one part");
        assert!(!any_local.matches("ops@x.shop.test"));
        let local_glob = ValuePattern::new("ops-*@*.shop.test", EMAIL);
        assert!(local_glob.matches("ops-eu@Mail.SHOP.test"));
        assert!(!local_glob.matches("OPS-eu@mail.shop.test"));
        // The last '@' separates the domain; an '@' in a quoted local part stays in the local part.
        let quoted = ValuePattern::new("\"a@b\"@shop.test", EMAIL);
        assert!(quoted.matches("\"a@b\"@SHOP.test"));
        assert!(!quoted.matches("\"a@B\"@shop.test"));
        assert!(!ValuePattern::new("ops", EMAIL).matches("ops@shop.test"));
        assert!(!ValuePattern::new("*@*", EMAIL).matches("ops@shop.test"));
    }

    #[test]
    fn star_inside_a_label_is_bounded_by_the_label() {
        let p = ValuePattern::new("svc-*.shop.test", DNS);
        assert!(p.matches("svc-a.shop.test"));
        assert!(!p.matches("svc-.shop.test"));
        assert!(!p.matches("svc-a.evil.shop.test"));
    }

    #[test]
    fn spiffe_star_matches_one_path_segment() {
        let p = ValuePattern::new("spiffe://shop.test/ns/*/sa/order", URI);
        assert!(p.matches("spiffe://shop.test/ns/prod/sa/order"));
        assert!(!p.matches("spiffe://shop.test/ns/a/b/sa/order"));
        assert!(!p.matches("spiffe://shop.test/ns//sa/order"));
        let tail = ValuePattern::new("spiffe://shop.test/ns/prod/sa/*", URI);
        assert!(tail.matches("spiffe://shop.test/ns/prod/sa/x"));
        assert!(!tail.matches("spiffe://shop.test/ns/prod/sa/x/y"));
        assert!(!tail.matches("spiffe://shop.test/ns/prod/sa/"));
    }

    #[test]
    fn a_deny_rule_wildcard_still_meets_a_uri_with_a_query_or_fragment() {
        let p = ValuePattern::new("spiffe://shop.test/ns/*/sa/order", ValueKind::Uri);
        for odd in ["spiffe://shop.test/ns/dev#/sa/order", "spiffe://shop.test/ns/dev/sa/order?x", "spiffe://shop.test/ns/dev/sa/order#f"] {
            assert!(!p.matches(odd), "{odd}");
            assert!(p.matches_for_deny(odd), "{odd}");
        }
        assert!(!p.matches_for_deny("spiffe://shop.test/ns/dev/sa/billing?x"), "neither reading names order");
        assert!(p.matches_for_deny("spiffe://shop.test/ns/dev/sa/order"));
        let exact = ValuePattern::new("spiffe://shop.test/ns/dev/sa/order", ValueKind::Uri);
        assert!(!exact.matches_for_deny("spiffe://shop.test/ns/dev/sa/order?x"), "exact patterns compare the string");
    }

    #[test]
    fn a_uri_with_a_query_or_fragment_never_matches_a_wildcard() {
        let p = ValuePattern::new("spiffe://shop.test/ns/*/sa/order", URI);
        for value in [
            "spiffe://shop.test/ns/dev#/sa/order",
            "spiffe://shop.test/ns/dev?/sa/order",
            "spiffe://shop.test/ns/dev/sa/order#",
            "spiffe://shop.test/ns/dev/sa/order?x=1",
        ] {
            assert!(!p.matches(value), "{value}");
        }
        let tail = ValuePattern::new("spiffe://shop.test/ns/dev/sa/*", URI);
        assert!(!tail.matches("spiffe://shop.test/ns/dev/sa/x?/order"));
        assert!(!tail.matches("spiffe://shop.test/ns/dev/sa/x#y"));
        assert!(tail.matches("spiffe://shop.test/ns/dev/sa/x"));
    }

    #[test]
    fn an_exact_uri_pattern_is_plain_string_equality() {
        let p = ValuePattern::new("urn:example:a?b#c", URI);
        assert!(p.matches("urn:example:a?b#c"));
        assert!(!p.matches("urn:example:a?b"));
        assert!(!ValuePattern::new("spiffe://shop.test/ns/dev", URI).matches("spiffe://shop.test/ns/dev#"));
    }

    #[test]
    fn several_stars() {
        let p = ValuePattern::new("*-*.test", DNS);
        assert!(p.matches("a-b.test"));
        assert!(p.matches("a-b-c.test"));
        assert!(!p.matches("-b.test"));
        assert!(!p.matches("ab.test"));
    }

    #[test]
    fn lone_star_matches_any_single_segment_value() {
        let p = ValuePattern::new("*", DNS);
        assert!(p.matches("x"));
        assert!(!p.matches(""));
        assert!(!p.matches("a.b"));
    }

    fn segs(p: &str) -> Vec<&str> {
        p.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect()
    }

    fn no_placeholders(_: Placeholder, _: &str) -> bool {
        false
    }

    #[test]
    fn path_patterns_exact_star_and_rest() {
        let exact = PathPattern::parse("/api/payment/create").unwrap();
        assert!(exact.matches(&segs("/api/payment/create"), &no_placeholders));
        assert!(!exact.matches(&segs("/api/payment/create/x"), &no_placeholders));
        assert!(!exact.matches(&segs("/api/payment"), &no_placeholders));

        let star = PathPattern::parse("/api/*/create").unwrap();
        assert!(star.matches(&segs("/api/x/create"), &no_placeholders));
        assert!(!star.matches(&segs("/api/x/y/create"), &no_placeholders));

        let rest = PathPattern::parse("/api/payment/query/**").unwrap();
        assert!(rest.matches(&segs("/api/payment/query"), &no_placeholders), "** matches zero segments");
        assert!(rest.matches(&segs("/api/payment/query/1/2"), &no_placeholders));
        assert!(!rest.matches(&segs("/api/payment/queryx"), &no_placeholders));

        let root = PathPattern::parse("/").unwrap();
        assert!(root.matches(&segs("/"), &no_placeholders));
        assert!(!root.matches(&segs("/a"), &no_placeholders));
        let all = PathPattern::parse("/**").unwrap();
        assert!(all.matches(&segs("/"), &no_placeholders));
        assert!(all.matches(&segs("/a/b"), &no_placeholders));
    }

    #[test]
    fn path_matching_is_case_sensitive() {
        let p = PathPattern::parse("/api/payment").unwrap();
        assert!(!p.matches(&segs("/API/payment"), &no_placeholders));
    }

    #[test]
    fn malformed_path_patterns_are_refused_with_reasons() {
        for (bad, why) in [
            ("api/x", "start with '/'"),
            ("/a//b", "empty segment"),
            ("/a/", "end with '/'"),
            ("/a/**/b", "last segment"),
            ("/a/b*", "whole segment"),
            ("/a/{nope}", "unknown placeholder"),
            ("/a/x{cn}", "whole segment"),
            ("/a/../b", "'..' segment"),
            ("/a/%2e", "percent-encoding"),
            ("/a?x", "'?'"),
            ("/a;b", "canonical"),
        ] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn placeholders_defer_to_the_identity() {
        let p = PathPattern::parse("/devices/{cn}/telemetry").unwrap();
        let cn_is_dev1 = |ph: Placeholder, seg: &str| ph == Placeholder::Cn && seg == "dev1";
        assert!(p.matches(&segs("/devices/dev1/telemetry"), &cn_is_dev1));
        assert!(!p.matches(&segs("/devices/dev2/telemetry"), &cn_is_dev1));
        assert_eq!(p.to_string(), "/devices/{cn}/telemetry");
    }

    #[test]
    fn a_literal_no_accepted_path_can_spell_is_refused_when_the_policy_loads() {
        let nfkc = PathReading { unicode: crate::reading::Unicode::Nfkc, ..PathReading::default() };
        for bad in ["/a/x\u{2100}y", "/c/x\u{a0}", "/d/\u{a5}"] {
            let err = PathPattern::parse_for(bad, &nfkc, Merge::Least).unwrap_err();
            assert!(err.contains("can never match"), "{bad}: {err}");
        }
        assert!(PathPattern::parse_for("/docs/intern.", &PathReading::default(), Merge::Least).unwrap_err().contains("can never match"));
        let posix = PathReading { platform: crate::reading::Platform::Posix, ..PathReading::default() };
        assert!(PathPattern::parse_for("/wiki/Washington,_D.C.", &posix, Merge::Least).is_ok());
    }
}
