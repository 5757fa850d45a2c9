//! Validation of a policy document: JSON text → [`Policy`], or every error.
//!
//! Validation walks a positioned JSON tree ([`crate::json`]) by hand instead of
//! deriving `Deserialize`, so that it can report *every* problem at once, each
//! with its line, column and JSON path, and refuse duplicate keys.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{PolicyError, PolicyErrors};
use crate::hex::{canonical_serial, canonical_sha256};
use crate::json::{self, Kind, Member, Node};
use crate::model::{
    Action, Condition, DenyResponse, IpNet, MethodOverrides, Mode, Policy, Principal, PrincipalFormat, Rule, UpstreamHeaders,
    DEFAULT_BODY_INSPECTION_LIMIT, MAX_BODY_INSPECTION_LIMIT,
};
use crate::pattern::{Literals, PathPattern, ValueKind, ValuePattern};
use crate::reading::{Case, EncodedDelimiters, EncodedSlash, Merge, PathParameters, PathReading, Platform, TrailingSlash, Unicode};

const TOP_FIELDS: &[&str] = &[
    "$schema",
    "version",
    "default_action",
    "mode",
    "revision",
    "description",
    "deny_response",
    "upstream_headers",
    "method_overrides",
    "body_inspection_limit",
    "path_reading",
    "rules",
    "connection_rules",
    "metrics",
    "limits",
    "audit_log",
    "filter_state",
];
const PATH_READING_FIELDS: &[&str] = &[
    "trailing_slash",
    "path_parameters",
    "encoded_slash",
    "encoded_delimiters",
    "case",
    "platform",
    "unicode",
    "suffix_patterns",
    "trim_whitespace",
];
const RULE_FIELDS: &[&str] = &["name", "description", "action", "principals", "paths", "methods", "head_with_get"];
const PRINCIPAL_FIELDS: &[&str] = &["any", "cn", "o", "ou", "uri_san", "dns_san", "email_san", "ip_san", "issuer_cn", "serial", "sha256"];

/// The lists of named rules: read one rule at a time ([`json::parse_deferring`]).
const NAMED_LISTS: &[&str] = &["rules", "connection_rules"];

impl Policy {
    /// Parse and validate a policy document, reporting every problem found.
    pub fn from_json(src: &str) -> Result<Policy, PolicyErrors> {
        let root = json::parse_deferring(src, NAMED_LISTS)
            .map_err(|e| PolicyErrors(vec![PolicyError { line: e.line, column: e.column, path: String::new(), message: e.message }]))?;
        let mut v = Validator {
            src,
            errors: Vec::new(),
            reading: PathReading::default(),
            literals: Default::default(),
            method_lists: Default::default(),
        };
        let policy = v.policy(&root);
        let mut errors = v.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        match policy {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(PolicyErrors(errors)),
        }
    }
}

pub(crate) struct Validator<'s> {
    src: &'s str,
    errors: Vec<PolicyError>,
    /// The policy's `path_reading`, read before the rules: it says how their
    /// path patterns are read.
    reading: PathReading,
    /// Every literal path segment read so far, shared between patterns.
    literals: Literals,
    /// Every distinct `methods` list so far: rules share them.
    method_lists: rustc_hash::FxHashSet<Arc<[Cow<'static, str>]>>,
}

/// JSON path segments: `rules[2].paths[0]`.
pub(crate) fn child(path: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (path.is_empty(), simple) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", serde_json::Value::from(key)),
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'s> Validator<'s> {
    pub(crate) fn error_at(&mut self, offset: usize, path: &str, message: impl Into<String>) {
        let (line, column) = json::line_col(self.src, offset);
        self.errors.push(PolicyError { line, column, path: path.to_owned(), message: message.into() });
    }

    /// The members of an object, after refusing unknown and duplicate keys.
    pub(crate) fn object<'n, 'a>(&mut self, node: &'n Node<'a>, path: &str, known: &[&str], what: &str) -> Option<&'n [Member<'a>]> {
        let Kind::Object(members) = &node.kind else {
            self.error_at(node.offset, path, format!("expected {what} (an object), found {}", node.kind.type_name()));
            return None;
        };
        for (i, m) in members.iter().enumerate() {
            if !known.contains(&m.key.as_ref()) {
                self.error_at(
                    m.key_offset,
                    &child(path, &m.key),
                    format!("unknown field '{}'; expected one of: {}", m.key, known.join(", ")),
                );
            } else if members[..i].iter().any(|earlier| earlier.key == m.key) {
                self.error_at(m.key_offset, &child(path, &m.key), format!("duplicate field '{}'", m.key));
            }
        }
        Some(members)
    }

    pub(crate) fn field<'n, 'a>(members: &'n [Member<'a>], key: &str) -> Option<&'n Node<'a>> {
        members.iter().find(|m| m.key == key).map(|m| &m.value)
    }

    pub(crate) fn required<'n, 'a>(&mut self, members: &'n [Member<'a>], obj: &Node<'_>, path: &str, key: &str) -> Option<&'n Node<'a>> {
        let found = Self::field(members, key);
        if found.is_none() {
            let what = if path.is_empty() { "the policy".to_owned() } else { path.to_owned() };
            self.error_at(obj.offset, path, format!("missing required field '{key}' in {what}"));
        }
        found
    }

    pub(crate) fn string<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::String(s) => Some(s),
            other => {
                self.error_at(node.offset, path, format!("expected a string, found {}", other.type_name()));
                None
            }
        }
    }

    pub(crate) fn non_empty_string<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        let s = self.string(node, path)?;
        if s.is_empty() {
            self.error_at(node.offset, path, "must not be empty");
            return None;
        }
        Some(s)
    }

    pub(crate) fn array<'n, 'a>(&mut self, node: &'n Node<'a>, path: &str, allow_empty: bool) -> Option<&'n [Node<'a>]> {
        match &node.kind {
            Kind::Array(items) if items.is_empty() && !allow_empty => {
                self.error_at(node.offset, path, "must not be empty");
                None
            }
            Kind::Array(items) => Some(items),
            other => {
                self.error_at(node.offset, path, format!("expected an array, found {}", other.type_name()));
                None
            }
        }
    }

    fn action(&mut self, node: &Node, path: &str) -> Option<Action> {
        match self.string(node, path)? {
            "allow" => Some(Action::Allow),
            "deny" => Some(Action::Deny),
            other => {
                self.error_at(node.offset, path, format!("expected \"allow\" or \"deny\", found \"{other}\""));
                None
            }
        }
    }

    fn policy(&mut self, root: &Node<'s>) -> Option<Policy> {
        let members = self.object(root, "", TOP_FIELDS, "a policy")?;
        if let Some(n) = Self::field(members, "$schema") {
            self.string(n, "$schema");
        }
        let version = self.required(members, root, "", "version").and_then(|n| match &n.kind {
            Kind::Number(num) if num.as_u64() == Some(1) => Some(1),
            _ => {
                self.error_at(n.offset, "version", "unsupported version; this engine reads policy language version 1");
                None
            }
        });
        let default_action = self.required(members, root, "", "default_action").and_then(|n| self.action(n, "default_action"));
        let mode = match Self::field(members, "mode") {
            None => Some(Mode::Enforce),
            Some(n) => match self.string(n, "mode") {
                Some("enforce") => Some(Mode::Enforce),
                Some("dry_run") => Some(Mode::DryRun),
                Some(other) => {
                    self.error_at(n.offset, "mode", format!("expected \"enforce\" or \"dry_run\", found \"{other}\""));
                    None
                }
                None => None,
            },
        };
        let revision = self.optional_text(members, "revision", "");
        let description = self.optional_text(members, "description", "");
        let deny_response = match Self::field(members, "deny_response") {
            None => Some(DenyResponse::default()),
            Some(n) => self.deny_response(n),
        };
        let upstream_headers = match Self::field(members, "upstream_headers") {
            None => Some(UpstreamHeaders::default()),
            Some(n) => self.upstream_headers(n),
        };
        let method_overrides = match Self::field(members, "method_overrides") {
            None => Some(MethodOverrides::default()),
            Some(n) => match self.string(n, "method_overrides") {
                Some("refuse") => Some(MethodOverrides::Refuse),
                Some("ignore") => Some(MethodOverrides::Ignore),
                Some(other) => {
                    self.error_at(n.offset, "method_overrides", format!("expected \"refuse\" or \"ignore\", found \"{other}\""));
                    None
                }
                None => None,
            },
        };
        let body_inspection_limit = match Self::field(members, "body_inspection_limit") {
            None => Some(DEFAULT_BODY_INSPECTION_LIMIT),
            Some(n) => match &n.kind {
                Kind::Number(num) => match num.as_u64().and_then(|v| u32::try_from(v).ok()) {
                    Some(v) if (1..=MAX_BODY_INSPECTION_LIMIT).contains(&v) => Some(v),
                    _ => {
                        self.error_at(
                            n.offset,
                            "body_inspection_limit",
                            format!("expected a whole number of bytes from 1 to {MAX_BODY_INSPECTION_LIMIT}, found {num}"),
                        );
                        None
                    }
                },
                other => {
                    self.error_at(n.offset, "body_inspection_limit", format!("expected a number of bytes, found {}", other.type_name()));
                    None
                }
            },
        };
        let path_reading = match Self::field(members, "path_reading") {
            None => Some(PathReading::default()),
            Some(n) => self.path_reading(n),
        };
        self.reading = path_reading.unwrap_or_default();
        let connection_rules = match Self::field(members, "connection_rules") {
            None => Some(Vec::new()),
            Some(n) => self.connection_rules(n),
        };
        // A plain TCP listener's policy has connection rules and needs no HTTP field.
        let rules = match Self::field(members, "rules") {
            None if Self::field(members, "connection_rules").is_some() => Some(Vec::new()),
            _ => self.required(members, root, "", "rules").and_then(|n| self.rules(n)),
        };
        let gateway = self.gateway(members, rules.as_deref());
        Some(Policy {
            version: version?,
            default_action: default_action?,
            mode: mode?,
            revision: revision?,
            description: description?,
            deny_response: deny_response?,
            upstream_headers: upstream_headers?,
            method_overrides: method_overrides?,
            body_inspection_limit: body_inspection_limit?,
            path_reading: path_reading?,
            rules: rules?,
            connection_rules: connection_rules?,
            gateway: gateway?,
        })
    }

    fn path_reading(&mut self, node: &Node) -> Option<PathReading> {
        let members = self.object(node, "path_reading", PATH_READING_FIELDS, "a path_reading")?;
        let d = PathReading::default();
        // Every field is checked before giving up, so one pass reports every mistake.
        let trailing_slash = self.choice(
            members,
            "trailing_slash",
            &[("refuse", TrailingSlash::Refuse), ("same_as_without", TrailingSlash::SameAsWithout), ("distinct", TrailingSlash::Distinct)],
            d.trailing_slash,
        );
        let path_parameters = self.choice(
            members,
            "path_parameters",
            &[("refuse", PathParameters::Refuse), ("strip", PathParameters::Strip)],
            d.path_parameters,
        );
        let encoded_slash = self.choice(
            members,
            "encoded_slash",
            &[("refuse", EncodedSlash::Refuse), ("in_segment", EncodedSlash::InSegment)],
            d.encoded_slash,
        );
        let encoded_delimiters = self.choice(
            members,
            "encoded_delimiters",
            &[("refuse", EncodedDelimiters::Refuse), ("decode_once", EncodedDelimiters::DecodeOnce)],
            d.encoded_delimiters,
        );
        let case = self.choice(members, "case", &[("sensitive", Case::Sensitive), ("insensitive", Case::Insensitive)], d.case);
        let platform = self.choice(
            members,
            "platform",
            &[("any", Platform::Any), ("posix", Platform::Posix), ("windows", Platform::Windows), ("macos", Platform::Macos)],
            d.platform,
        );
        let unicode = self.choice(
            members,
            "unicode",
            &[("any", Unicode::Any), ("as_sent", Unicode::AsSent), ("nfc", Unicode::Nfc), ("nfkc", Unicode::Nfkc)],
            d.unicode,
        );
        let suffix_patterns = self.optional_bool(members, "path_reading", "suffix_patterns", d.suffix_patterns);
        let trim_whitespace = self.optional_bool(members, "path_reading", "trim_whitespace", d.trim_whitespace);
        let case = case?;
        let platform = platform?;
        if case == Case::Sensitive && matches!(platform, Platform::Windows | Platform::Macos) {
            if let Some(m) = members.iter().find(|m| m.key == "case") {
                let why = "case \"sensitive\" contradicts this platform: its file system compares names ignoring case";
                self.error_at(m.value.offset, "path_reading.case", why);
                return None;
            }
        }
        Some(PathReading {
            trailing_slash: trailing_slash?,
            path_parameters: path_parameters?,
            encoded_slash: encoded_slash?,
            encoded_delimiters: encoded_delimiters?,
            case,
            platform,
            unicode: unicode?,
            suffix_patterns: suffix_patterns?,
            trim_whitespace: trim_whitespace?,
        })
    }

    /// A member of `path_reading` that is one of a few strings: `default`
    /// when absent, `None` (reported, with the choices) otherwise.
    fn choice<T: Copy>(&mut self, members: &[Member], key: &str, options: &[(&str, T)], default: T) -> Option<T> {
        let Some(node) = Self::field(members, key) else {
            return Some(default);
        };
        let path = child("path_reading", key);
        let text = self.string(node, &path)?;
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.error_at(node.offset, &path, format!("expected one of {}, found \"{text}\"", names.join(", ")));
        None
    }

    /// `Some(None)` when absent, `Some(Some(text))` when a valid string, `None` on error.
    fn optional_text(&mut self, members: &[Member], key: &str, path: &str) -> Option<Option<String>> {
        match Self::field(members, key) {
            None => Some(None),
            Some(n) => {
                let p = child(path, key);
                let s = self.string(n, &p)?;
                if key == "revision" && (s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic())) {
                    self.error_at(n.offset, &p, "a revision is 1 to 128 visible ASCII characters (it goes into headers and logs)");
                    return None;
                }
                Some(Some(s.to_owned()))
            }
        }
    }

    fn deny_response(&mut self, node: &Node) -> Option<DenyResponse> {
        let members = self.object(node, "deny_response", &["details"], "a deny_response")?;
        let details = self.optional_bool(members, "deny_response", "details", DenyResponse::default().details)?;
        Some(DenyResponse { details })
    }

    fn upstream_headers(&mut self, node: &Node) -> Option<UpstreamHeaders> {
        let members = self.object(node, "upstream_headers", &UpstreamHeaders::FIELDS, "an upstream_headers")?;
        let default = UpstreamHeaders::default();
        // Every field is checked before giving up, so one pass reports every mistake.
        let principal = self.optional_bool(members, "upstream_headers", "principal", default.principal);
        let principal_format = match Self::field(members, "principal_format") {
            None => Some(default.principal_format),
            Some(n) => self.principal_format(n, "upstream_headers.principal_format"),
        };
        let rule = self.optional_bool(members, "upstream_headers", "rule", default.rule);
        let revision = self.optional_bool(members, "upstream_headers", "revision", default.revision);
        Some(UpstreamHeaders { principal: principal?, principal_format: principal_format?, rule: rule?, revision: revision? })
    }

    fn principal_format(&mut self, node: &Node, path: &str) -> Option<PrincipalFormat> {
        match self.string(node, path)? {
            "typed" => Some(PrincipalFormat::Typed),
            "legacy" => Some(PrincipalFormat::Legacy),
            other => {
                self.error_at(node.offset, path, format!("expected \"typed\" or \"legacy\", found \"{other}\""));
                None
            }
        }
    }

    /// A boolean member of the object at `path`: `default` when absent, `None` (reported) when not a boolean.
    pub(crate) fn optional_bool(&mut self, members: &[Member], path: &str, key: &str, default: bool) -> Option<bool> {
        let Some(n) = Self::field(members, key) else {
            return Some(default);
        };
        match n.kind {
            Kind::Bool(b) => Some(b),
            ref other => {
                self.error_at(n.offset, &child(path, key), format!("expected a boolean, found {}", other.type_name()));
                None
            }
        }
    }

    fn rules(&mut self, node: &Node<'s>) -> Option<Vec<Rule>> {
        self.named_list(node, "rules", Self::rule)
    }

    /// A list of named rules (`rules`, `connection_rules`): each item read by
    /// `item`, and no name used twice in the list.
    fn named_list<T>(&mut self, node: &Node<'s>, list: &str, mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>) -> Option<Vec<T>> {
        // The document parse leaves the lists unread; a list read whole is read again in place, item by item.
        let offsets: Cow<[u32]> = match &node.kind {
            Kind::UnreadArray(offsets) => Cow::Borrowed(offsets),
            _ => Cow::Owned(self.array(node, list, true)?.iter().map(|n| u32::try_from(n.offset).unwrap_or(u32::MAX)).collect()),
        };
        let mut rules = Vec::with_capacity(offsets.len());
        let mut ok = true;
        let mut names = Names::default();
        for (i, &offset) in offsets.iter().enumerate() {
            let path = index(list, i);
            let Some(entry) = json::parse_at(self.src, offset as usize) else {
                // Unreachable for text the parser accepted; refused rather than trusted.
                self.error_at(offset as usize, &path, "could not be read as JSON");
                ok = false;
                continue;
            };
            match item(self, &entry, &path) {
                Some(rule) => rules.push(rule),
                None => ok = false,
            }
            // Duplicate names are checked on the raw tree so they are reported even when the rule has other errors.
            if let Some((name, offset)) = name_field(&entry) {
                let src = self.src;
                let name_of = |item: usize| offsets.get(item).and_then(|&o| item_name(src, o as usize));
                if let Some(first) = names.first_use(name.clone(), i, name_of) {
                    self.error_at(offset, &child(&path, "name"), format!("duplicate rule name '{name}' (first used by {list}[{first}])"));
                    ok = false;
                }
            }
        }
        ok.then_some(rules)
    }

    /// `list`, shared with every earlier rule that has the same `methods`:
    /// a large policy has thousands of rules and a few distinct lists.
    fn method_list(&mut self, list: Vec<Cow<'static, str>>) -> Arc<[Cow<'static, str>]> {
        if let Some(shared) = self.method_lists.get(list.as_slice()) {
            return Arc::clone(shared);
        }
        let list: Arc<[Cow<'static, str>]> = list.into();
        self.method_lists.insert(Arc::clone(&list));
        list
    }

    fn rule(&mut self, node: &Node, path: &str) -> Option<Rule> {
        let members = self.object(node, path, RULE_FIELDS, "a rule")?;
        let name = self.rule_name(members, node, path);
        let description = self.optional_text(members, "description", path);
        let action = self.required(members, node, path, "action").and_then(|n| self.action(n, &child(path, "action")));
        let principals = self.required(members, node, path, "principals").and_then(|n| self.principals(n, &child(path, "principals")));
        // A deny rule's literals are folded as any case-insensitive backend folds, an allow rule's as every one does.
        let merge = if action == Some(Action::Deny) { Merge::Most } else { Merge::Least };
        let paths = self.required(members, node, path, "paths").and_then(|n| self.paths(n, &child(path, "paths"), merge));
        let methods = match Self::field(members, "methods") {
            None => Some(None),
            Some(n) => self.methods(n, &child(path, "methods")).map(Some),
        };
        let head_with_get = self.head_with_get(members, path, action, methods.as_ref());
        Some(Rule {
            name: name?.into(),
            description: description?.map(String::into_boxed_str),
            action: action?,
            principals: principals?.into_boxed_slice(),
            paths: paths?.into_boxed_slice(),
            methods: methods?.map(|list| self.method_list(list)),
            head_with_get: head_with_get?,
        })
    }

    /// A rule's `name`: it goes into headers, logs and metrics, so it is restricted.
    fn rule_name(&mut self, members: &[Member], node: &Node, path: &str) -> Option<String> {
        self.required(members, node, path, "name").and_then(|n| {
            let p = child(path, "name");
            let s = self.non_empty_string(n, &p)?;
            if s.len() > 128 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
                self.error_at(
                    n.offset,
                    &p,
                    "a rule name is 1 to 128 characters from A-Z a-z 0-9 - _ . : (it goes into headers, logs and metrics)",
                );
                return None;
            }
            Some(s.to_owned())
        })
    }

    /// `head_with_get`: a boolean, and only where it changes something, so a
    /// misplaced one is reported instead of silently doing nothing. Where the
    /// action or methods are themselves in error, only the type is checked.
    fn head_with_get(
        &mut self,
        members: &[Member],
        path: &str,
        action: Option<Action>,
        methods: Option<&Option<Vec<Cow<'static, str>>>>,
    ) -> Option<bool> {
        let value = self.optional_bool(members, path, "head_with_get", true)?;
        let Some(m) = members.iter().find(|m| m.key == "head_with_get") else {
            return Some(value);
        };
        let misplaced = match (action, methods) {
            (Some(Action::Allow), _) => {
                Some("'head_with_get' applies only to deny rules: allowing GET never allows HEAD; list \"HEAD\" in 'methods' to allow it")
            }
            (Some(Action::Deny), Some(None)) => {
                Some("'head_with_get' needs a 'methods' list with \"GET\": without 'methods' the rule denies every method, HEAD included")
            }
            (Some(Action::Deny), Some(Some(ms))) if !ms.iter().any(|m| m == "GET") => {
                Some("'head_with_get' applies only when 'methods' lists \"GET\": it says whether denying GET also denies HEAD")
            }
            (Some(Action::Deny), Some(Some(ms))) if ms.iter().any(|m| m == "HEAD") => {
                Some("'head_with_get' has no effect: 'methods' lists \"HEAD\" itself, so HEAD is denied either way")
            }
            _ => None,
        };
        match misplaced {
            Some(why) => {
                self.error_at(m.key_offset, &child(path, "head_with_get"), why);
                None
            }
            None => Some(value),
        }
    }

    fn paths(&mut self, node: &Node, path: &str, merge: Merge) -> Option<Vec<PathPattern>> {
        let items = self.array(node, path, false)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            let reading = self.reading;
            let parsed = self.string(item, &p).map(|text| PathPattern::parse_with(text, &reading, merge, &mut self.literals));
            match parsed {
                Some(Ok(pattern)) => out.push(pattern),
                Some(Err(why)) => {
                    self.error_at(item.offset, &p, why);
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn methods(&mut self, node: &Node, path: &str) -> Option<Vec<Cow<'static, str>>> {
        let items = self.array(node, path, false)?;
        let mut out: Vec<Cow<'static, str>> = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = index(path, i);
            match self.string(item, &p) {
                Some(m) if crate::canonical::is_canonical_method(m) => {
                    if !out.iter().any(|seen| seen == m) {
                        out.push(crate::canonical::method_name(m));
                    }
                }
                Some(m) => {
                    let hint = if crate::canonical::is_canonical_method(&m.to_ascii_uppercase()) {
                        format!("; write \"{}\"", m.to_ascii_uppercase())
                    } else {
                        String::new()
                    };
                    self.error_at(item.offset, &p, format!("'{m}' is not an upper-case HTTP method{hint}"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn principals(&mut self, node: &Node, path: &str) -> Option<Vec<Principal>> {
        let items = self.array(node, path, false)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.principal(item, &index(path, i)) {
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn principal(&mut self, node: &Node, path: &str) -> Option<Principal> {
        let members = self.object(node, path, PRINCIPAL_FIELDS, "a principal")?;
        if members.is_empty() {
            self.error_at(node.offset, path, "an empty principal would match every certificate; write {\"any\": true} if that is meant");
            return None;
        }
        let (mut any, mut conditions) = (false, Vec::with_capacity(members.len()));
        let mut ok = true;
        for m in members {
            let fp = child(path, &m.key);
            let n = &m.value;
            if m.key == "any" {
                match n.kind {
                    Kind::Bool(true) if members.len() == 1 => any = true,
                    Kind::Bool(true) => {
                        self.error_at(
                            m.key_offset,
                            &fp,
                            "'any' cannot be combined with other fields: it already matches every verified certificate",
                        );
                        ok = false;
                    }
                    Kind::Bool(false) => {
                        self.error_at(n.offset, &fp, "'any' can only be true; remove it to match on other fields");
                        ok = false;
                    }
                    ref other => {
                        self.error_at(n.offset, &fp, format!("expected true, found {}", other.type_name()));
                        ok = false;
                    }
                }
                continue;
            }
            let Some(text) = self.non_empty_string(n, &fp) else {
                ok = false;
                continue;
            };
            let result = match m.key.as_ref() {
                "cn" => value_pattern(text, ValueKind::Name).map(Condition::Cn),
                "o" => value_pattern(text, ValueKind::Name).map(Condition::O),
                "ou" => value_pattern(text, ValueKind::Name).map(Condition::Ou),
                "issuer_cn" => value_pattern(text, ValueKind::Name).map(Condition::IssuerCn),
                "uri_san" => value_pattern(text, ValueKind::Uri).map(Condition::UriSan),
                "email_san" => value_pattern(text, ValueKind::Email).map(Condition::EmailSan),
                "dns_san" => value_pattern(text, ValueKind::Dns).map(Condition::DnsSan),
                "ip_san" => IpNet::parse(text).map(|net| Condition::IpSan(Box::new(net))),
                "serial" => canonical_serial(text).map(|v| Condition::Serial(v.into())),
                "sha256" => canonical_sha256(text).map(|v| Condition::Sha256(v.into())),
                // Unknown keys were reported by `object`.
                _ => continue,
            };
            match result {
                Ok(c) => conditions.push(c),
                Err(why) => {
                    self.error_at(n.offset, &fp, why);
                    ok = false;
                }
            }
        }
        ok.then(|| if any { Principal::any() } else { Principal::of(conditions) })
    }
}

fn value_pattern(text: &str, kind: ValueKind) -> Result<ValuePattern, String> {
    if text.contains("**") {
        return Err("'**' is only meaningful in paths; in identity values '*' matches within one segment".into());
    }
    if text.chars().any(char::is_control) {
        return Err("identity values must not contain control characters".into());
    }
    if kind == ValueKind::Uri && text.contains('*') && text.contains(['?', '#']) {
        // It could never match: a wildcard never matches a URI with a query or fragment.
        return Err(format!("'{text}' has a '*' and a '?' or '#': a uri_san wildcard never matches a URI with a query or fragment (SPIFFE IDs have neither); write the exact URI"));
    }
    if kind == ValueKind::Dns {
        // One trailing dot is the fully qualified spelling of the same name; any other empty label names no host.
        let name = crate::pattern::dns_name(text);
        if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
            return Err(format!("'{text}' has an empty label; a DNS name may end in one '.', but no label is empty"));
        }
    }
    Ok(ValuePattern::new(text, kind))
}

mod connection;

/// The names a list has used so far, for its duplicate check. A 10,000-rule
/// policy's check is alive for the whole load: it keeps each name's hash and
/// item (8 bytes an entry) and reads a name again, from the text, only when
/// a hash comes back. The names that share a hash with an earlier, different
/// name are kept whole.
struct Names<'s> {
    by_hash: rustc_hash::FxHashMap<u32, u32>,
    colliding: rustc_hash::FxHashMap<Cow<'s, str>, usize>,
    /// [`name_hash`]; tests make every name collide.
    hash: fn(&str) -> u32,
}

impl Default for Names<'_> {
    fn default() -> Self {
        Names { by_hash: Default::default(), colliding: Default::default(), hash: name_hash }
    }
}

impl<'s> Names<'s> {
    /// The item that first used `name`, or `None` (and `item` is recorded as
    /// its first use). `name_of` reads an earlier item's name.
    fn first_use(&mut self, name: Cow<'s, str>, item: usize, name_of: impl Fn(usize) -> Option<Cow<'s, str>>) -> Option<usize> {
        let hash = (self.hash)(&name);
        match self.by_hash.get(&hash) {
            None => {
                self.by_hash.insert(hash, u32::try_from(item).unwrap_or(u32::MAX));
                None
            }
            Some(&first) if name_of(first as usize).as_deref() == Some(name.as_ref()) => Some(first as usize),
            Some(_) => match self.colliding.get(name.as_ref()) {
                Some(&first) => Some(first),
                None => {
                    self.colliding.insert(name, item);
                    None
                }
            },
        }
    }
}

fn name_hash(name: &str) -> u32 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name.as_bytes());
    h.finish() as u32
}

/// A listed item's `name` and where it is, when the item is an object with a
/// string `name`: what the duplicate check compares, on the item's first
/// reading and when it reads an earlier item again.
fn name_field<'n, 's>(item: &'n Node<'s>) -> Option<(&'n Cow<'s, str>, usize)> {
    let Kind::Object(members) = &item.kind else { return None };
    match Validator::field(members, "name")? {
        Node { kind: Kind::String(name), offset } => Some((name, *offset)),
        _ => None,
    }
}

/// The `name` of the rule that starts at `offset`, read again from the text.
fn item_name(src: &str, offset: usize) -> Option<Cow<'_, str>> {
    name_field(&json::parse_at(src, offset)?).map(|(name, _)| name.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn principal_fields_are_any_and_the_identity_match_fields() {
        let mut want = vec!["any"];
        want.extend(crate::identity::MATCH_FIELDS);
        assert_eq!(PRINCIPAL_FIELDS, want.as_slice());
    }

    /// The policy from the README (the language's worked example);
    /// the compile tests decide requests against it too.
    pub(crate) const EXAMPLE: &str = r#"{
  "version": 1,
  "default_action": "deny",
  "rules": [
    {"name": "orders-create-payment", "action": "allow",
     "principals": [{"uri_san": "spiffe://shop.test/ns/prod/sa/order"}, {"cn": "order-service"}],
     "paths": ["/api/payment/create"], "methods": ["POST"]},
    {"name": "reports-read-payment", "action": "allow",
     "principals": [{"cn": "report-service", "ou": "reporting"}],
     "paths": ["/api/payment/query", "/api/payment/query/**"], "methods": ["GET", "HEAD"]},
    {"name": "nobody-on-admin", "action": "deny",
     "principals": [{"any": true}], "paths": ["/api/payment/admin/**"]}
  ]
}"#;

    fn errors(src: &str) -> Vec<PolicyError> {
        Policy::from_json(src).unwrap_err().0
    }

    /// The single error's `(line, column, path)` and message.
    fn one_error(src: &str) -> (usize, usize, String, String) {
        let errs = errors(src);
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        (e.line, e.column, e.path.clone(), e.message.clone())
    }

    #[test]
    fn the_readme_example_is_valid() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        assert_eq!(p.default_action, Action::Deny);
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.rules.len(), 3);
        assert_eq!(p.rules[1].methods.as_deref(), Some(&["GET".into(), "HEAD".into()][..]));
        assert_eq!(p.rules[2].methods, None);
        assert!(p.rules[2].principals[0].any);
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let (line, col, path, msg) = one_error("{\n  \"version\": 1,\n  \"rules\": [\n}");
        assert_eq!((line, col, path.as_str()), (4, 1, ""));
        assert!(!msg.is_empty());
    }

    #[test]
    fn missing_default_action_is_refused() {
        let (line, col, path, msg) = one_error(r#"{"version": 1, "rules": []}"#);
        assert_eq!((line, col, path.as_str()), (1, 1, ""));
        assert!(msg.contains("missing required field 'default_action'"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let src = "{\"version\": 1, \"default_action\": \"deny\", \"rules\": [\n  {\"name\": \"a\", \"action\": \"allow\", \"principals\": [{\"any\": true}], \"paths\": [\"/\"], \"method\": [\"GET\"]}]}";
        let (line, col, path, msg) = one_error(src);
        assert_eq!((line, path.as_str()), (2, "rules[0].method"));
        assert_eq!(col, 83);
        assert!(msg.contains("unknown field 'method'"), "{msg}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let (_, _, path, msg) = one_error(
            r#"{"version": 1, "default_action": "deny", "rules": [{"name": "a", "action": "allow", "principals": [{"cn": 7}], "paths": ["/"]}]}"#,
        );
        assert_eq!(path, "rules[0].principals[0].cn");
        assert!(msg.contains("expected a string, found a number"), "{msg}");
        let (_, _, path, _) = one_error(r#"{"version": 1, "default_action": "deny", "rules": {}}"#);
        assert_eq!(path, "rules");
    }

    #[test]
    fn bad_enums_and_versions_are_refused() {
        let (_, _, path, msg) = one_error(r#"{"version": 1, "default_action": "permit", "rules": []}"#);
        assert_eq!(path, "default_action");
        assert!(msg.contains("\"allow\" or \"deny\""), "{msg}");
        let (_, _, path, _) = one_error(r#"{"version": 2, "default_action": "deny", "rules": []}"#);
        assert_eq!(path, "version");
        let (_, _, path, _) = one_error(r#"{"version": 1, "default_action": "deny", "mode": "audit", "rules": []}"#);
        assert_eq!(path, "mode");
    }

    #[test]
    fn duplicate_names_are_found_whatever_their_hashes() {
        let list = ["a", "b", "a", "c", "b", "b", "d", "c"];
        let same: fn(&str) -> u32 = |_| 7;
        for hash in [name_hash, same] {
            let mut names = Names { hash, ..Names::default() };
            let got: Vec<Option<usize>> =
                (0..list.len()).map(|i| names.first_use(Cow::Borrowed(list[i]), i, |j| list.get(j).map(|s| Cow::Borrowed(*s)))).collect();
            assert_eq!(got, [None, None, Some(0), None, Some(1), Some(1), None, Some(3)]);
        }
    }

    #[test]
    fn duplicate_rule_names_are_refused() {
        let rule = r#"{"name": "same", "action": "allow", "principals": [{"any": true}], "paths": ["/"]}"#;
        let (_, _, path, msg) = one_error(&format!(r#"{{"version": 1, "default_action": "deny", "rules": [{rule}, {rule}]}}"#));
        assert_eq!(path, "rules[1].name");
        assert!(msg.contains("duplicate rule name 'same'"), "{msg}");
        // Spelled with an escape, the name is the same name.
        let escaped = rule.replace("\"same\"", "\"s\\u0061me\"");
        let other = rule.replace("\"same\"", "\"other\"");
        let (_, _, path, msg) = one_error(&format!(r#"{{"version": 1, "default_action": "deny", "rules": [{rule}, {other}, {escaped}]}}"#));
        assert_eq!(path, "rules[2].name");
        assert!(msg.ends_with("duplicate rule name 'same' (first used by rules[0])"), "{msg}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let (_, _, path, msg) = one_error(r#"{"version": 1, "default_action": "allow", "default_action": "deny", "rules": []}"#);
        assert_eq!(path, "default_action");
        assert!(msg.contains("duplicate field"), "{msg}");
    }

    #[test]
    fn empty_lists_and_empty_principals_are_refused() {
        let base = |principals: &str, paths: &str| {
            format!(
                r#"{{"version": 1, "default_action": "deny", "rules": [{{"name": "r", "action": "allow", "principals": {principals}, "paths": {paths}}}]}}"#
            )
        };
        assert_eq!(one_error(&base("[]", r#"["/"]"#)).2, "rules[0].principals");
        assert_eq!(one_error(&base(r#"[{"any": true}]"#, "[]")).2, "rules[0].paths");
        assert_eq!(one_error(&base("[{}]", r#"["/"]"#)).2, "rules[0].principals[0]");
        assert_eq!(one_error(&base(r#"[{"any": false}]"#, r#"["/"]"#)).2, "rules[0].principals[0].any");
        assert_eq!(one_error(&base(r#"[{"any": true, "cn": "x"}]"#, r#"["/"]"#)).2, "rules[0].principals[0].any");
        assert_eq!(one_error(&base(r#"[{"cn": ""}]"#, r#"["/"]"#)).2, "rules[0].principals[0].cn");
    }

    #[test]
    fn malformed_patterns_point_at_the_pattern() {
        let src = r#"{"version": 1, "default_action": "deny", "rules": [
 {"name": "a", "action": "allow", "principals": [{"any": true}], "paths": ["/ok"]},
 {"name": "b", "action": "allow", "principals": [{"any": true}], "paths": ["/x", "/a/**/b"]},
 {"name": "c", "action": "allow", "principals": [{"any": true}], "paths": ["/a//b"]}]}"#;
        let errs = errors(src);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].path, "rules[1].paths[1]");
        assert_eq!((errs[0].line, errs[0].column), (3, 82));
        assert!(errs[0].message.contains("'**' is only allowed as the last segment"));
        assert_eq!(errs[1].path, "rules[2].paths[0]");
        assert!(errs[1].message.contains("empty segment"));
    }

    #[test]
    fn all_errors_are_reported_in_source_order() {
        let src =
            r#"{"version": 1, "default_action": "maybe", "rules": [{"name": "", "action": "x", "principals": [], "paths": ["nope"]}]}"#;
        let paths: Vec<String> = errors(src).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["default_action", "rules[0].name", "rules[0].action", "rules[0].principals", "rules[0].paths[0]"]);
    }

    #[test]
    fn upstream_headers_default_on_and_each_can_be_turned_off() {
        let policy = |extra: &str| format!(r#"{{"version": 1, "default_action": "deny",{extra} "rules": []}}"#);
        let all_on = Policy::from_json(&policy("")).unwrap().upstream_headers;
        assert_eq!(all_on, UpstreamHeaders { principal: true, principal_format: PrincipalFormat::Typed, rule: true, revision: true });
        let some_off = Policy::from_json(&policy(r#" "upstream_headers": {"rule": false, "revision": false},"#)).unwrap();
        assert_eq!(some_off.upstream_headers, UpstreamHeaders { rule: false, revision: false, ..UpstreamHeaders::default() });
        let none = Policy::from_json(&policy(r#" "upstream_headers": {"principal": false, "rule": false, "revision": false},"#)).unwrap();
        assert_eq!(none.upstream_headers, UpstreamHeaders { principal: false, rule: false, revision: false, ..UpstreamHeaders::default() });
    }

    #[test]
    fn principal_format_is_typed_unless_legacy_is_asked_for() {
        let policy = |extra: &str| format!(r#"{{"version": 1, "default_action": "deny",{extra} "rules": []}}"#);
        let format = |extra: &str| Policy::from_json(&policy(extra)).unwrap().upstream_headers.principal_format;
        assert_eq!(format(""), PrincipalFormat::Typed);
        assert_eq!(format(r#" "upstream_headers": {"rule": false},"#), PrincipalFormat::Typed);
        assert_eq!(format(r#" "upstream_headers": {"principal_format": "typed"},"#), PrincipalFormat::Typed);
        assert_eq!(format(r#" "upstream_headers": {"principal_format": "legacy"},"#), PrincipalFormat::Legacy);
        let off = Policy::from_json(&policy(r#" "upstream_headers": {"principal": false, "principal_format": "legacy"},"#)).unwrap();
        assert_eq!(
            off.upstream_headers,
            UpstreamHeaders { principal: false, principal_format: PrincipalFormat::Legacy, ..UpstreamHeaders::default() }
        );
    }

    #[test]
    fn principal_format_mistakes_are_reported_with_line_column_and_path() {
        let src =
            "{\"version\": 1, \"default_action\": \"deny\",\n \"upstream_headers\": {\"principal_format\": \"Legacy\"}, \"rules\": []}";
        let (line, col, path, msg) = one_error(src);
        assert_eq!((line, col, path.as_str()), (2, 43, "upstream_headers.principal_format"));
        assert_eq!(msg, r#"expected "typed" or "legacy", found "Legacy""#);
        let src = r#"{"version": 1, "default_action": "deny", "upstream_headers": {"principal_format": true}, "rules": []}"#;
        let (_, _, path, msg) = one_error(src);
        assert_eq!(path, "upstream_headers.principal_format");
        assert!(msg.contains("expected a string, found a boolean"), "{msg}");
        let src = r#"{"version": 1, "default_action": "deny", "upstream_headers": {"principal_format": "typed", "principal_format": "legacy"}, "rules": []}"#;
        let (_, _, path, msg) = one_error(src);
        assert_eq!(path, "upstream_headers.principal_format");
        assert!(msg.contains("duplicate field"), "{msg}");
    }

    #[test]
    fn upstream_headers_mistakes_are_each_reported_with_their_path() {
        let src = r#"{"version": 1, "default_action": "deny",
 "upstream_headers": {"principal": "yes", "rule": 0, "dry_run": false}, "rules": []}"#;
        let errs = errors(src);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["upstream_headers.principal", "upstream_headers.rule", "upstream_headers.dry_run"], "{errs:?}");
        assert_eq!((errs[0].line, errs[0].column), (2, 36));
        assert!(errs[0].message.contains("expected a boolean, found a string"), "{}", errs[0].message);
        assert!(errs[2].message.contains("expected one of: principal, principal_format, rule, revision"), "{}", errs[2].message);
        let (_, _, path, _) = one_error(r#"{"version": 1, "default_action": "deny", "upstream_headers": [], "rules": []}"#);
        assert_eq!(path, "upstream_headers");
    }

    #[test]
    fn method_overrides_and_the_body_limit_default_safe_and_are_validated() {
        let policy = |extra: &str| format!(r#"{{"version": 1, "default_action": "deny",{extra} "rules": []}}"#);
        let default = Policy::from_json(&policy("")).unwrap();
        assert_eq!((default.method_overrides, default.body_inspection_limit), (MethodOverrides::Refuse, DEFAULT_BODY_INSPECTION_LIMIT));
        let set = Policy::from_json(&policy(r#" "method_overrides": "ignore", "body_inspection_limit": 4096,"#)).unwrap();
        assert_eq!((set.method_overrides, set.body_inspection_limit), (MethodOverrides::Ignore, 4096));
        let src = r#"{"version": 1, "default_action": "deny",
 "method_overrides": "honour", "body_inspection_limit": -1, "rules": []}"#;
        let errs = errors(src);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["method_overrides", "body_inspection_limit"], "{errs:?}");
        assert_eq!((errs[0].line, errs[0].column), (2, 22));
        assert!(errs[0].message.contains(r#"expected "refuse" or "ignore", found "honour""#), "{}", errs[0].message);
        assert!(errs[1].message.contains("from 1 to 67108864"), "{}", errs[1].message);
        for bad in ["0", "67108865", "1.5", "\"1024\""] {
            let (_, _, path, _) = one_error(&policy(&format!(r#" "body_inspection_limit": {bad},"#)));
            assert_eq!(path, "body_inspection_limit", "{bad}");
        }
    }

    #[test]
    fn methods_must_be_upper_case() {
        let (_, _, path, msg) = one_error(
            r#"{"version": 1, "default_action": "deny", "rules": [{"name": "a", "action": "allow", "principals": [{"any": true}], "paths": ["/"], "methods": ["get"]}]}"#,
        );
        assert_eq!(path, "rules[0].methods[0]");
        assert!(msg.contains("write \"GET\""), "{msg}");
    }

    #[test]
    fn principal_values_are_validated_and_normalised() {
        let policy = |principal: &str| {
            format!(
                r#"{{"version": 1, "default_action": "deny", "rules": [{{"name": "a", "action": "allow", "principals": [{principal}], "paths": ["/"]}}]}}"#
            )
        };
        let p = Policy::from_json(&policy(r#"{"serial": "00:0A:ff", "dns_san": "API.Shop.Test", "ip_san": "10.0.0.0/8"}"#)).unwrap();
        let pr = &p.rules[0].principals[0];
        assert_eq!(pr.serial(), Some("aff"));
        assert_eq!(pr.dns_san().map(|v| v.as_str()), Some("api.shop.test"));
        assert_eq!(pr.ip_san(), Some(&IpNet::parse("10.0.0.0/8").unwrap()));
        let fqdn = Policy::from_json(&policy(r#"{"dns_san": "API.Shop.Test."}"#)).unwrap();
        assert_eq!(fqdn.rules[0].principals[0].dns_san().map(|v| v.as_str()), Some("api.shop.test"), "the trailing dot is dropped");
        for (bad, field) in [
            (r#"{"serial": "xyz"}"#, "serial"),
            (r#"{"sha256": "abc"}"#, "sha256"),
            (r#"{"ip_san": "10.0.0.1/33"}"#, "ip_san"),
            (r#"{"ip_san": "10.0.0.1/8"}"#, "ip_san"),
            (r#"{"ip_san": "host"}"#, "ip_san"),
            (r#"{"dns_san": "**.shop.test"}"#, "dns_san"),
            (r#"{"dns_san": "."}"#, "dns_san"),
            (r#"{"dns_san": "api.shop.test.."}"#, "dns_san"),
            (r#"{"dns_san": "api..shop.test"}"#, "dns_san"),
            (r#"{"dns_san": ".shop.test"}"#, "dns_san"),
            (r#"{"uri_san": "spiffe://shop.test/ns/*/sa/order#x"}"#, "uri_san"),
            (r#"{"uri_san": "spiffe://shop.test/ns/dev?/sa/*"}"#, "uri_san"),
            (r#"{"cnn": "x"}"#, "cnn"),
        ] {
            let (_, _, path, _) = one_error(&policy(bad));
            assert_eq!(path, format!("rules[0].principals[0].{field}"), "{bad}");
        }
    }

    fn deny_rule(extra: &str) -> String {
        format!(
            r#"{{"version": 1, "default_action": "allow", "rules": [
  {{"name": "r", "action": "deny", "principals": [{{"any": true}}], "paths": ["/"]{extra}}}]}}"#
        )
    }

    #[test]
    fn head_with_get_defaults_to_true_and_can_be_turned_off() {
        let p = Policy::from_json(&deny_rule(r#", "methods": ["GET"]"#)).unwrap();
        assert!(p.rules[0].head_with_get);
        let p = Policy::from_json(&deny_rule(r#", "methods": ["GET", "POST"], "head_with_get": false"#)).unwrap();
        assert!(!p.rules[0].head_with_get);
        let p = Policy::from_json(&deny_rule(r#", "methods": ["GET"], "head_with_get": true"#)).unwrap();
        assert!(p.rules[0].head_with_get);
    }

    #[test]
    fn head_with_get_elsewhere_is_an_error_at_the_field() {
        for (extra, says) in [
            (r#", "methods": ["POST"], "head_with_get": false"#, "only when 'methods' lists \"GET\""),
            (r#", "head_with_get": false"#, "needs a 'methods' list"),
            (r#", "methods": ["GET", "HEAD"], "head_with_get": false"#, "has no effect"),
            (r#", "methods": ["GET"], "head_with_get": "no""#, "expected a boolean, found a string"),
        ] {
            let src = deny_rule(extra);
            let (line, col, path, msg) = one_error(&src);
            let key = src.lines().nth(1).unwrap().find("\"head_with_get\"").unwrap();
            let at = if msg.starts_with("expected") { key + "\"head_with_get\": ".len() } else { key };
            assert_eq!((line, col, path.as_str()), (2, at + 1, "rules[0].head_with_get"), "{extra}");
            assert!(msg.contains(says), "{extra}: {msg}");
        }
        let allow = r#"{"version": 1, "default_action": "deny", "rules": [
  {"name": "r", "action": "allow", "principals": [{"any": true}], "paths": ["/"], "methods": ["GET"], "head_with_get": true}]}"#;
        let (line, _, path, msg) = one_error(allow);
        assert_eq!((line, path.as_str()), (2, "rules[0].head_with_get"));
        assert!(msg.contains("only to deny rules"), "{msg}");
    }

    #[test]
    fn head_with_get_is_not_judged_against_a_broken_action_or_method_list() {
        let paths: Vec<String> =
            errors(&deny_rule(r#", "methods": ["get"], "head_with_get": false"#)).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["rules[0].methods[0]"]);
        let src = r#"{"version": 1, "default_action": "deny", "rules": [{"name": "r", "action": "block", "principals": [{"any": true}], "paths": ["/"], "methods": ["GET"], "head_with_get": false}]}"#;
        let paths: Vec<String> = errors(src).into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["rules[0].action"]);
    }

    #[test]
    fn rule_names_are_header_safe() {
        let (_, _, path, _) = one_error(
            r#"{"version": 1, "default_action": "deny", "rules": [{"name": "bad name\n", "action": "allow", "principals": [{"any": true}], "paths": ["/"]}]}"#,
        );
        assert_eq!(path, "rules[0].name");
    }

    #[test]
    fn optional_top_level_fields() {
        let p = Policy::from_json(r#"{"$schema": "./policy.schema.json", "version": 1, "default_action": "allow", "mode": "dry_run", "revision": "2026-11-27.1", "deny_response": {"details": false}, "rules": []}"#).unwrap();
        assert_eq!(p.mode, Mode::DryRun);
        assert_eq!(p.revision.as_deref(), Some("2026-11-27.1"));
        assert!(!p.deny_response.details);
        let (_, _, path, _) = one_error(r#"{"version": 1, "default_action": "deny", "revision": "has space", "rules": []}"#);
        assert_eq!(path, "revision");
    }

    #[test]
    fn odd_keys_get_bracketed_paths() {
        let (_, _, path, _) = one_error(r#"{"version": 1, "default_action": "deny", "rules": [], "a b": 1}"#);
        assert_eq!(path, "[\"a b\"]");
    }
}
