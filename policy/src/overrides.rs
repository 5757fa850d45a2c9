//! Method and path overrides: requests that ask the backend to run another
//! method or path than the one the policy judged.
//!
//! HTML forms can only send `GET` and `POST`, so many frameworks let a `POST`
//! carry the method it stands for. What each reads, from its documentation:
//!
//! | framework | override read from | applied when the request is |
//! |---|---|---|
//! | Rails, Sinatra (`Rack::MethodOverride`) | `_method` form field (urlencoded or multipart; a POST without a content type is read as a form), `X-HTTP-Method-Override` | POST |
//! | Symfony (`http_method_override`), Laravel | `_method` in the body or the query, `X-HTTP-Method-Override`; Laravel also reads a JSON body | POST |
//! | Spring (`HiddenHttpMethodFilter`) | `_method` request parameter: query or form body | POST |
//! | ASP.NET Core (`UseHttpMethodOverride`) | `X-HTTP-Method-Override`, or the form field named by `FormFieldName` (documented as `_METHOD`) | POST |
//! | Express (`method-override`) | `X-HTTP-Method-Override`, `?_method=`, or a getter over `req.body._method` (urlencoded or JSON) | POST (its default `methods`) |
//! | gorilla/handlers (`HTTPMethodOverrideHandler`) | `X-HTTP-Method-Override`, `_method` form value | POST |
//! | Yii, CakePHP, CodeIgniter 4 | `_method` in the POST body; Yii reads `X-Http-Method-Override` on any method | POST |
//!
//! PHP frameworks read parameters through PHP's own parser, which rewrites
//! names (see [`is_override_name`]), so `?.method=DELETE` is `$_GET['_method']`.
//!
//! Headers and the query are checked on every request. A body is read only
//! for a `POST` that a framework would parse as a form or as JSON
//! ([`BodyHeaders::plan`]): every other request costs nothing here.

use std::fmt;

use crate::canonical::escaped_byte;
use crate::decide::Reason;
use crate::model::MethodOverrides;

/// Request headers that ask the backend to run another *method*. Ignored
/// when the policy says its backends never honour method overrides.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// Request headers that ask the backend to serve another *path* (IIS and
/// Symfony's `X-Original-URL` / `X-Rewrite-URL`; a client-sent
/// `x-envoy-original-path`, which Envoy-aware backends trust). Always refused.
pub const PATH_OVERRIDE_HEADERS: [&str; 3] = ["x-original-url", "x-rewrite-url", "x-envoy-original-path"];

/// Every override header: [`METHOD_OVERRIDE_HEADERS`] then [`PATH_OVERRIDE_HEADERS`].
pub const OVERRIDE_HEADERS: [&str; 6] =
    ["x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "x-rewrite-url", "x-envoy-original-path"];

/// What an override header asks the backend to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    Method,
    Path,
}

/// Is `name` an override header, in any case and also spelt with `_` for
/// `-`? CGI-style backends (PHP, WSGI, FastCGI) read `x_http_method_override`
/// as `X-HTTP-Method-Override`.
pub fn override_header(name: &[u8]) -> Option<OverrideKind> {
    let same = |a: u8, b: u8| {
        let fold = |c: u8| if c == b'_' { b'-' } else { c.to_ascii_lowercase() };
        fold(a) == fold(b)
    };
    let is = |h: &&str| h.len() == name.len() && h.bytes().zip(name.iter()).all(|(a, &b)| same(a, b));
    if METHOD_OVERRIDE_HEADERS.iter().any(&is) {
        Some(OverrideKind::Method)
    } else if PATH_OVERRIDE_HEADERS.iter().any(is) {
        Some(OverrideKind::Path)
    } else {
        None
    }
}

/// Does a request carrying this header get refused, given whether the
/// policy's backends honour method overrides? A path override always does.
pub fn refuses_header(name: &[u8], method_overrides: MethodOverrides) -> bool {
    match override_header(name) {
        Some(OverrideKind::Path) => true,
        Some(OverrideKind::Method) => method_overrides == MethodOverrides::Refuse,
        None => false,
    }
}

/// The override parameter every framework above uses.
pub const OVERRIDE_PARAMETER: &str = "_method";

/// Would any mainstream framework read this (already decoded) parameter
/// name as [`OVERRIDE_PARAMETER`]? Each rewrite below is one a framework applies:
///
/// - PHP (`php_register_variable_ex`, which builds `$_GET`, `$_POST` and
///   multipart fields) cuts a name at NUL, drops leading spaces, and turns
///   `.` and spaces into `_`: `" .method"` is `_method`.
/// - PHP, Rack and `qs` (Express) read `_method[x]` as the array `_method`:
///   the name ends at the first `[`.
/// - ASP.NET Core compares form field names ignoring case (`_METHOD`).
pub fn is_override_name(name: &[u8]) -> bool {
    let mut name = name;
    if let Some(nul) = name.iter().position(|&b| b == 0) {
        name = &name[..nul];
    }
    while let [b' ', rest @ ..] = name {
        name = rest;
    }
    if let Some(bracket) = name.iter().position(|&b| b == b'[') {
        name = &name[..bracket];
    }
    let fold = |b: u8| if b == b'.' || b == b' ' { b'_' } else { b.to_ascii_lowercase() };
    name.len() == OVERRIDE_PARAMETER.len() && name.iter().zip(OVERRIDE_PARAMETER.bytes()).all(|(&a, b)| fold(a) == b)
}

/// Decode a URL-encoded name into `out` as form parsers do: `%XX` is a byte
/// (a `%` without two hex digits stays itself), and `+` is a space when
/// `plus_is_space` (query strings and form bodies, not multipart names).
fn url_decode_into(raw: &[u8], plus_is_space: bool, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => match escaped_byte(raw, i) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
}

/// Does a `name=value&...` list (a query string or a urlencoded body) name
/// the override parameter? Pairs are split on `&` and on `;` (older Rack and
/// Java containers also split on `;`).
fn urlencoded_names_override(list: &[u8]) -> bool {
    let mut name = Vec::new();
    list.split(|&b| b == b'&' || b == b';').any(|pair| {
        let raw = pair.split(|&b| b == b'=').next().unwrap_or(&[]);
        // Short names cannot become `_method` however they decode: skip the decoding.
        if raw.len() < OVERRIDE_PARAMETER.len() {
            return false;
        }
        url_decode_into(raw, true, &mut name);
        is_override_name(&name)
    })
}

/// Whether the request target's query asks a backend to run another method:
/// `?_method=DELETE` under any spelling in [`is_override_name`], percent- and
/// `+`-decoded. A fragment is not part of the query.
pub fn query_overrides_method(target: &str) -> bool {
    // Byte searches: every request is asked this, and `?` and `#` are ASCII.
    let target = target.as_bytes();
    match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(start) if target[start] == b'?' => {
            let query = &target[start + 1..];
            urlencoded_names_override(query.iter().position(|&b| b == b'#').map_or(query, |end| &query[..end]))
        }
        _ => false,
    }
}

/// How a backend might parse a POST body, as far as an override can hide in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyReadings {
    /// `application/x-www-form-urlencoded`, or no content type (Rack reads a
    /// POST without one as a form).
    pub form: bool,
    /// `multipart/form-data` (Rack parses every `multipart/*`).
    pub multipart: bool,
    /// JSON (`application/json`, `*+json`: Laravel's `isJson` looks for
    /// `/json` or `+json` anywhere in the content type).
    pub json: bool,
}

impl BodyReadings {
    fn any(self) -> bool {
        self.form || self.multipart || self.json
    }
}

/// Whether a request's body must be read before the request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No framework would look for an override in this body.
    Skip,
    /// Read the body whole, then [`body_overrides_method`].
    Read(BodyReadings),
    /// A framework may parse it, but not in a way the engine can follow
    /// (a compressed body, or a charset that is not ASCII-compatible).
    Unreadable,
}

/// The headers that decide whether and how a body is read, gathered in the
/// adapter's one pass over the header map: give it every header with
/// [`BodyHeaders::note`], then ask [`BodyHeaders::plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyHeaders {
    content_types: u8,
    readings: BodyReadings,
    unreadable: bool,
}

/// Charsets in which `_method` is spelt with the same bytes as in ASCII. A
/// form body in UTF-16 (which Tomcat decodes by the declared charset) would
/// hide the name from a byte-wise reading, so other charsets are unreadable.
const ASCII_COMPATIBLE_CHARSETS: [&str; 6] = ["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-", "windows-125"];

impl BodyHeaders {
    /// Note one request header (any header; only a few matter).
    pub fn note(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-type") {
            self.content_types = self.content_types.saturating_add(1);
            self.content_type(value);
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            let coding = value.trim_ascii();
            if !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity") {
                self.unreadable = true;
            }
        }
    }

    fn content_type(&mut self, value: &[u8]) {
        // Case-insensitive searches, without a lower-cased copy: this runs for
        // every request that has a content type, most of which are never read.
        let find = |needle: &[u8]| value.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle));
        let has = |needle: &[u8]| find(needle).is_some();
        let trimmed = value.trim_ascii();
        if trimmed.is_empty() || has(b"x-www-form-urlencoded") {
            self.readings.form = true;
        }
        if has(b"multipart/") {
            self.readings.multipart = true;
        }
        // gRPC backends do not read `_method`, and a gRPC-JSON body is framed, not JSON.
        let grpc = trimmed.get(..16).is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc"));
        if (has(b"/json") || has(b"+json")) && !grpc {
            self.readings.json = true;
        }
        if let Some(at) = find(b"charset=") {
            let rest = value.get(at + 8..).unwrap_or_default();
            let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
            let end = rest.iter().position(|&b| matches!(b, b'"' | b';' | b' ' | b',')).unwrap_or(rest.len());
            let charset = &rest[..end];
            let known =
                ASCII_COMPATIBLE_CHARSETS.iter().any(|c| charset.get(..c.len()).is_some_and(|p| p.eq_ignore_ascii_case(c.as_bytes())));
            if !known {
                self.unreadable = true;
            }
        }
    }

    /// What to do with the body of a request with this (canonical) method.
    /// Every framework applies body overrides to `POST` only.
    pub fn plan(&self, method: &str) -> BodyPlan {
        if method != "POST" {
            return BodyPlan::Skip;
        }
        let readings = match self.content_types {
            0 => BodyReadings { form: true, ..BodyReadings::default() },
            1 => self.readings,
            // Several content types: backends pick different ones, so try every reading.
            _ => BodyReadings { form: true, multipart: true, json: true },
        };
        if !readings.any() {
            BodyPlan::Skip
        } else if self.unreadable {
            BodyPlan::Unreadable
        } else {
            BodyPlan::Read(readings)
        }
    }
}

/// What reading a body found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFinding {
    /// No reading finds an override parameter.
    Clean,
    /// Some reading finds one.
    Override,
    /// A reading that applies could not parse the body (JSON that does not
    /// parse here may still parse in the backend: too deep, or numbers out of range here).
    Unreadable,
}

impl BodyFinding {
    /// Why a request whose body reads so is refused; `None` when it is not.
    pub fn refusal(self) -> Option<Reason> {
        match self {
            BodyFinding::Clean => None,
            BodyFinding::Override => Some(Reason::BodyOverride),
            BodyFinding::Unreadable => Some(Reason::BodyUnreadable),
        }
    }
}

/// Does this POST body carry a method override under any of `readings`?
pub fn body_overrides_method(readings: BodyReadings, body: &[u8]) -> BodyFinding {
    if readings.form && urlencoded_names_override(body) {
        return BodyFinding::Override;
    }
    if readings.multipart && multipart_names_override(body) {
        return BodyFinding::Override;
    }
    if readings.json {
        match json_keys_override(body) {
            Ok(true) => return BodyFinding::Override,
            Ok(false) => {}
            Err(()) => return BodyFinding::Unreadable,
        }
    }
    BodyFinding::Clean
}

/// Does any part of a multipart body carry a field named like the override
/// parameter? Multipart parsers differ in how they find boundaries and read
/// the `name` parameter, so this does not parse parts. It reads every line
/// that starts with `Content-Disposition` (and the folded lines after it,
/// which PHP joins) anywhere in the body, and every `name=` or `name*=`
/// parameter in it (so `filename=` too), quoted, unquoted or RFC 5987-encoded.
fn multipart_names_override(body: &[u8]) -> bool {
    let mut in_disposition = false;
    for line in body.split(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        in_disposition = if folded { in_disposition } else { line.len() >= 19 && line[..19].eq_ignore_ascii_case(b"content-disposition") };
        if in_disposition && disposition_names_override(line) {
            return true;
        }
    }
    false
}

/// Every value a parser could take for a `name` parameter in this header line.
fn disposition_names_override(line: &[u8]) -> bool {
    let lower = line.to_ascii_lowercase();
    let mut decoded = Vec::new();
    let mut check = |candidate: &[u8]| {
        url_decode_into(candidate, false, &mut decoded);
        is_override_name(candidate) || is_override_name(&decoded)
    };
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|rest| rest.windows(4).position(|w| w == b"name")) {
        let mut i = from + found + 4;
        from = i;
        let skip_space = |i: &mut usize| {
            while line.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
                *i += 1;
            }
        };
        skip_space(&mut i);
        let extended = line.get(i) == Some(&b'*');
        if extended {
            i += 1;
            skip_space(&mut i);
        }
        if line.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        skip_space(&mut i);
        let rest = line.get(i..).unwrap_or(&[]);
        let hit = match rest.first() {
            Some(&quote) if quote == b'"' || quote == b'\'' => {
                let inner = &rest[1..];
                // Raw up to the next quote, and with backslash escapes undone.
                let raw = inner.split(|&b| b == quote).next().unwrap_or(&[]);
                let mut unescaped = Vec::new();
                let mut j = 0;
                while let Some(&b) = inner.get(j) {
                    match b {
                        b'\\' => {
                            if let Some(&next) = inner.get(j + 1) {
                                unescaped.push(next);
                            }
                            j += 2;
                        }
                        b if b == quote => break,
                        b => {
                            unescaped.push(b);
                            j += 1;
                        }
                    }
                }
                check(raw) || check(&unescaped)
            }
            _ => {
                let to_semicolon = rest.split(|&b| b == b';').next().unwrap_or(&[]);
                let to_space = rest.split(|&b| matches!(b, b';' | b'"' | b'\'') || b.is_ascii_whitespace()).next().unwrap_or(&[]);
                // RFC 5987: charset'language'percent-encoded.
                let extended_value = |v: &[u8]| -> Vec<u8> { v.rsplit(|&b| b == b'\'').next().unwrap_or(&[]).to_vec() };
                check(to_semicolon)
                    || check(to_semicolon.trim_ascii())
                    || check(to_space)
                    || (extended && (check(&extended_value(to_semicolon)) || check(&extended_value(to_space))))
            }
        };
        if hit {
            return true;
        }
    }
    false
}

/// Does a JSON body's top-level object have a key named like the override
/// parameter (Laravel reads `_method` there)? `Err` when it does not parse.
fn json_keys_override(body: &[u8]) -> Result<bool, ()> {
    use serde::de::Deserializer as _;

    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de.deserialize_any(TopLevel).map_err(|_| ())?;
    de.end().map_err(|_| ())?;
    Ok(found)
}

/// Visits a JSON document: `true` when it is an object with an override key.
struct TopLevel;

impl<'de> serde::de::Visitor<'de> for TopLevel {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(is_override) = map.next_key_seed(KeyIsOverride)? {
            found |= is_override;
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Reads one object key, without keeping it: is it the override parameter?
struct KeyIsOverride;

impl<'de> serde::de::DeserializeSeed<'de> for KeyIsOverride {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIsOverride {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(is_override_name(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_names_under_every_framework_rewrite() {
        for name in ["_method", "_METHOD", "_Method", ".method", "  _method", " .method", "_method\0junk", "_method[]", "_method[x]"] {
            assert!(is_override_name(name.as_bytes()), "{name:?}");
        }
        for name in [" method", "method", "__method", "_method_x", "x_method", "_methods", "", "_meth", "[_method", "\0_method"] {
            assert!(!is_override_name(name.as_bytes()), "{name:?}");
        }
    }

    #[test]
    fn method_override_query_parameters_are_detected() {
        for t in [
            "/a?_method=DELETE",
            "/a?x=1&_method=PUT",
            "/a?%5Fmethod=DELETE",
            "/a?_METHOD=x",
            "/a?y;_method",
            "/a?_m%65thod=1",
            // PHP's parse_str rewrites these names to `_method`.
            "/a?.method=DELETE",
            "/a?+.method=DELETE",
            "/a?%20_method=DELETE",
            "/a?+_method=DELETE",
            "/a?_method%00x=DELETE",
            "/a?_method[]=DELETE",
            "/a?%2Emethod=DELETE",
        ] {
            assert!(query_overrides_method(t), "{t}");
        }
        for t in
            ["/a", "/a?method=DELETE", "/a?x=_method", "/a?_method_x=1", "/a#?_method=1", "/a?__method=1", "/a?+method=1", "/a?x.method=1"]
        {
            assert!(!query_overrides_method(t), "{t}");
        }
    }

    #[test]
    fn override_headers_are_recognised_in_any_case() {
        assert_eq!(override_header(b"X-HTTP-Method-Override"), Some(OverrideKind::Method));
        assert_eq!(override_header(b"x-original-url"), Some(OverrideKind::Path));
        assert_eq!(override_header(b"X_HTTP_METHOD_OVERRIDE"), Some(OverrideKind::Method), "CGI folds '_' and '-'");
        assert_eq!(override_header(b"x-http-method-overrides"), None);
        assert_eq!(override_header(b"content-type"), None);
        let every: Vec<&str> = METHOD_OVERRIDE_HEADERS.iter().chain(PATH_OVERRIDE_HEADERS.iter()).copied().collect();
        assert_eq!(every, OVERRIDE_HEADERS);
    }

    fn plan(method: &str, headers: &[(&str, &str)]) -> BodyPlan {
        let mut h = BodyHeaders::default();
        for (n, v) in headers {
            h.note(n.as_bytes(), v.as_bytes());
        }
        h.plan(method)
    }

    const FORM: BodyReadings = BodyReadings { form: true, multipart: false, json: false };
    const MULTIPART: BodyReadings = BodyReadings { form: false, multipart: true, json: false };
    const JSON: BodyReadings = BodyReadings { form: false, multipart: false, json: true };

    #[test]
    fn only_posts_that_a_framework_parses_are_read() {
        assert_eq!(plan("POST", &[("content-type", "application/x-www-form-urlencoded")]), BodyPlan::Read(FORM));
        assert_eq!(plan("POST", &[("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8")]), BodyPlan::Read(FORM));
        assert_eq!(plan("POST", &[("content-type", "multipart/form-data; boundary=x")]), BodyPlan::Read(MULTIPART));
        assert_eq!(plan("POST", &[("content-type", "multipart/mixed; boundary=x")]), BodyPlan::Read(MULTIPART));
        assert_eq!(plan("POST", &[("content-type", "application/json")]), BodyPlan::Read(JSON));
        assert_eq!(plan("POST", &[("content-type", "application/vnd.api+json")]), BodyPlan::Read(JSON));
        assert_eq!(plan("POST", &[]), BodyPlan::Read(FORM), "Rack reads a POST without a content type as a form");
        assert_eq!(plan("POST", &[("content-type", "")]), BodyPlan::Read(FORM));
        let all = BodyReadings { form: true, multipart: true, json: true };
        assert_eq!(plan("POST", &[("content-type", "text/plain"), ("content-type", "application/json")]), BodyPlan::Read(all));
        // Nothing to read.
        assert_eq!(plan("POST", &[("content-type", "application/octet-stream")]), BodyPlan::Skip);
        assert_eq!(plan("POST", &[("content-type", "application/grpc")]), BodyPlan::Skip);
        assert_eq!(plan("POST", &[("content-type", "application/grpc+json")]), BodyPlan::Skip);
        assert_eq!(plan("POST", &[("content-type", "text/plain")]), BodyPlan::Skip);
        for method in ["PUT", "PATCH", "DELETE", "GET"] {
            assert_eq!(plan(method, &[("content-type", "application/x-www-form-urlencoded")]), BodyPlan::Skip, "{method}");
        }
    }

    #[test]
    fn bodies_the_engine_cannot_follow_are_unreadable() {
        let form = ("content-type", "application/x-www-form-urlencoded");
        assert_eq!(plan("POST", &[form, ("content-encoding", "gzip")]), BodyPlan::Unreadable);
        assert_eq!(plan("POST", &[form, ("content-encoding", "identity")]), BodyPlan::Read(FORM));
        assert_eq!(plan("POST", &[("content-type", "application/x-www-form-urlencoded; charset=utf-16")]), BodyPlan::Unreadable);
        assert_eq!(plan("POST", &[("content-type", "application/json; charset=\"UTF-32\"")]), BodyPlan::Unreadable);
        assert_eq!(plan("POST", &[("content-type", "application/x-www-form-urlencoded; charset=ISO-8859-1")]), BodyPlan::Read(FORM));
        // A compressed body that no framework parses for overrides is nobody's concern.
        assert_eq!(plan("POST", &[("content-type", "application/octet-stream"), ("content-encoding", "gzip")]), BodyPlan::Skip);
    }

    #[test]
    fn form_bodies() {
        for body in [
            "_method=DELETE",
            "a=1&_method=delete",
            "a=1;_method=x",
            "%5Fmethod=DELETE",
            "+.method=DELETE",
            ".method=DELETE",
            "_method%00=DELETE",
            "_method[]=DELETE",
        ] {
            assert_eq!(body_overrides_method(FORM, body.as_bytes()), BodyFinding::Override, "{body}");
        }
        for body in ["", "amount=10&currency=EUR", "note=_method%3DDELETE", "method=DELETE", "x=1&y=_method"] {
            assert_eq!(body_overrides_method(FORM, body.as_bytes()), BodyFinding::Clean, "{body}");
        }
    }

    #[test]
    fn a_quoted_pair_in_a_multipart_name_is_read_unescaped_too() {
        // Found by the body_overrides fuzz target: `\t` in a quoted string is `t`.
        let body = b"--b\r\nContent-Disposition: form-data; name=\"_me\\thod\"\r\n\r\nDELETE\r\n--b--\r\n";
        let multipart = BodyReadings { multipart: true, ..BodyReadings::default() };
        assert_eq!(body_overrides_method(multipart, body), BodyFinding::Override);
    }

    #[test]
    fn multipart_bodies() {
        let part = |disposition: &str| {
            format!(
                "--XyZ\r\n{disposition}\r\n\r\nDELETE\r\n--XyZ\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n10\r\n--XyZ--\r\n"
            )
        };
        for d in [
            "Content-Disposition: form-data; name=\"_method\"",
            "content-disposition: form-data; name=_method",
            "CONTENT-DISPOSITION: form-data; NAME=\"_METHOD\"",
            "Content-Disposition: form-data; name='_method'",
            "Content-Disposition: form-data; name = \"_method\"",
            "Content-Disposition: form-data; name=\"_meth\\od\"",
            "Content-Disposition: form-data; name=\".method\"",
            "Content-Disposition: form-data; name=\"%5Fmethod\"",
            "Content-Disposition: form-data; name*=utf-8''%5Fmethod",
            "Content-Disposition: form-data; filename=\"x; name=_method\"",
            // Folded header lines, which PHP joins.
            "Content-Disposition: form-data;\r\n name=\"_method\"",
        ] {
            assert_eq!(body_overrides_method(MULTIPART, part(d).as_bytes()), BodyFinding::Override, "{d}");
        }
        for d in ["Content-Disposition: form-data; name=\"note\"", "Content-Type: text/plain; name=\"_method\"", "X-Name: _method"] {
            assert_eq!(body_overrides_method(MULTIPART, part(d).as_bytes()), BodyFinding::Clean, "{d}");
        }
        // A file whose content mentions `_method` is not an override.
        let file = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.js\"\r\n\r\nreq._method = 'DELETE';\r\n--b--\r\n";
        assert_eq!(body_overrides_method(MULTIPART, file.as_bytes()), BodyFinding::Clean);
    }

    #[test]
    fn json_bodies() {
        for body in [
            r#"{"_method":"DELETE"}"#,
            r#"{"a":1,"_method":"PUT"}"#,
            r#" {"\u005fmethod": 1} "#,
            r#"{"_METHOD":"x"}"#,
            r#"{"a":{"b":[1,2]},"_method":null}"#,
        ] {
            assert_eq!(body_overrides_method(JSON, body.as_bytes()), BodyFinding::Override, "{body}");
        }
        for body in [r#"{"amount":10}"#, r#"{"a":{"_method":"DELETE"}}"#, r#"["_method"]"#, r#""_method""#, "1", "null"] {
            assert_eq!(body_overrides_method(JSON, body.as_bytes()), BodyFinding::Clean, "{body}");
        }
        // Values are skipped, not converted: a number out of range for f64 still parses (PHP reads it as INF).
        assert_eq!(body_overrides_method(JSON, br#"{"x":1e400,"_method":"DELETE"}"#), BodyFinding::Override);
        // Skipped values have no depth limit (serde_json skips them without recursion).
        let deep = format!(r#"{{"a":{}{},"_method":"DELETE"}}"#, "[".repeat(5000), "]".repeat(5000));
        assert_eq!(body_overrides_method(JSON, deep.as_bytes()), BodyFinding::Override);
        // What does not parse here is refused: a backend's parser may be more lenient.
        for body in ["{", r#"{"a":1} x"#, "not json", r#"{"a":1,}"#] {
            assert_eq!(body_overrides_method(JSON, body.as_bytes()), BodyFinding::Unreadable, "{body}");
        }
    }
}
