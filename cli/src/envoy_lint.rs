//! `mtls-authz check --envoy-config`: does Envoy route a path the way the policy reads it?
//!
//! The filter runs before the router and judges the path the client sent,
//! segment by segment. Two route settings make the backend serve something
//! the policy never judged:
//!
//! * **`match.prefix` is a string prefix.** `prefix: /api/payment/admin` also
//!   takes `/api/payment/adminusers`: the admin backend serves it, while the
//!   policy reads its last segment as `adminusers`, so a deny rule on
//!   `/api/payment/admin/**` never meets it. `path_separated_prefix` matches
//!   whole segments, as the policy does.
//! * **A rewrite changes the path after the filter.** With the string prefix
//!   above and `prefix_rewrite: "/"`, the admin backend receives `/users` for a
//!   request the policy judged as `/api/payment/adminusers`. A rewrite that
//!   keeps segments whole (`path_separated_prefix`, or a prefix ending in `/`
//!   rewritten to something ending in `/`) is only a note: the policy must be
//!   written for the paths clients send. One that moves a segment boundary
//!   (`/v2x` from `/api/x`, `//x` from a `path_separated_prefix` rewritten to
//!   `/`, which is what Envoy 1.40 does) is a warning.
//!
//! Only routes that forward (a `route` action) are held to this: a redirect or
//! a `direct_response` hands no backend a path.
//!
//! Only what the file itself holds is read: every inline `route_config`
//! (static listeners' HTTP connection managers, wherever they are nested) and
//! `route_configuration` (inline scoped routes). Routes Envoy gets from RDS or
//! another control plane are not in the file and are not checked.
//!
//! The file is parsed with saphyr, which keeps each node's line and column, so
//! a finding points at the `prefix:` or `prefix_rewrite:` to change. Envoy
//! reads its YAML and JSON through the protobuf JSON mapping, so every field is
//! looked up under both its proto name (`path_separated_prefix`) and its JSON
//! name (`pathSeparatedPrefix`).

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use saphyr_parser::{Event, Parser, ScanError};

use mtls_authz_policy::pattern::{PathPattern, Segment};
use mtls_authz_policy::Policy;

use crate::output::quoted;

/// Whether a finding fails the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Envoy and the policy can read one request as two different paths: exit 1.
    Warning,
    /// Worth knowing, not a mismatch by itself: the exit status is unchanged.
    Note,
}

/// One thing the lint says about a route, placed at the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line of the field.
    pub line: usize,
    /// 1-based column, in characters (as the policy engine counts them).
    pub column: usize,
    /// Where in the document, e.g. `static_resources.listeners[0]…routes[1].match.prefix`.
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    /// `FILE:LINE:COL: PATH: warning: message`, the form `check` prints policy errors in.
    pub fn render(&self, origin: &str) -> String {
        let label = match self.severity {
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        format!("{origin}:{}:{}: {}: {label}: {}", self.line, self.column, self.path, self.message)
    }
}

/// What the lint found in one file.
#[derive(Debug, Default)]
pub struct Report {
    /// Inline route configurations read.
    pub route_configs: usize,
    /// Routes read, over all of them.
    pub routes: usize,
    /// In document order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether anything here should fail the check.
    pub fn has_warnings(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Warning)
    }
}

/// The file is not YAML (or JSON): where the parser stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A policy whose path patterns findings can name.
pub struct PolicySource<'a> {
    /// The file name, as `check` prints it.
    pub origin: &'a str,
    pub policy: &'a Policy,
}

/// Lint the routes of the Envoy configuration `src` (YAML or JSON) against `policies`.
pub fn lint(src: &str, policies: &[PolicySource<'_>]) -> Result<Report, ParseError> {
    check_nesting(src)?;
    let docs = MarkedYaml::load_from_str(src).map_err(|e| parse_error(&e))?;
    let mut found = Vec::new();
    for doc in &docs {
        find_route_configs(doc, &mut Vec::new(), 0, &mut found);
    }
    let mut report = Report { route_configs: found.len(), ..Report::default() };
    for (path, config) in found {
        lint_route_config(config, path, policies, &mut report);
    }
    Ok(report)
}

fn parse_error(e: &ScanError) -> ParseError {
    ParseError { line: e.marker().line(), column: e.marker().col() + 1, message: e.info().to_string() }
}

/// How deep collections may nest. Envoy configurations stay near 20; saphyr
/// builds the tree by recursion (a few KiB of stack per level), so a file of
/// `- - - - …` would otherwise overflow the stack and abort the process.
const MAX_NESTING: usize = 200;

/// Refuse a document nested deeper than [`MAX_NESTING`], reading only the parser's
/// events (an iterator, not recursion), before anything builds a tree of it.
fn check_nesting(src: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    for event in Parser::new_from_str(src) {
        let (event, span) = event.map_err(|e| parse_error(&e))?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ParseError {
                        line: span.start.line(),
                        column: span.start.col() + 1,
                        message: format!("nested deeper than {MAX_NESTING} levels"),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// One step of a node's path in the document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `a.b[0].c`, with a key that is not a plain name written `["@type"]`.
fn render_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => {
                out.push('[');
                out.push_str(&quoted(k));
                out.push(']');
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Keys whose value is an inline RouteConfiguration, in both spellings.
const ROUTE_CONFIG_KEYS: [&str; 4] = ["route_config", "routeConfig", "route_configuration", "routeConfiguration"];

/// The walk's own bound (nodes, not collections: a tag is a level too).
const MAX_DEPTH: usize = 2 * MAX_NESTING;

/// Every inline route configuration under `node`, with its path.
fn find_route_configs<'a>(node: &'a MarkedYaml<'a>, path: &mut Vec<Step>, depth: usize, out: &mut Vec<(Vec<Step>, &'a MarkedYaml<'a>)>) {
    if depth > MAX_DEPTH {
        return;
    }
    match &node.data {
        YamlData::Mapping(map) => {
            for (k, v) in map {
                let Some(key) = text(k) else { continue };
                path.push(Step::Key(key.to_string()));
                if ROUTE_CONFIG_KEYS.contains(&key) && matches!(untagged(v).data, YamlData::Mapping(_)) {
                    out.push((path.clone(), untagged(v)));
                } else {
                    find_route_configs(v, path, depth + 1, out);
                }
                path.pop();
            }
        }
        YamlData::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_route_configs(v, path, depth + 1, out);
                path.pop();
            }
        }
        YamlData::Tagged(_, inner) => find_route_configs(inner, path, depth + 1, out),
        _ => {}
    }
}

/// The node under a YAML tag (`!ignore` and the like), or the node itself.
fn untagged<'a, 'b>(node: &'b MarkedYaml<'a>) -> &'b MarkedYaml<'a> {
    let mut node = node;
    // A tag on a tag is legal YAML; a few levels are plenty.
    for _ in 0..8 {
        match &node.data {
            YamlData::Tagged(_, inner) => node = inner,
            _ => break,
        }
    }
    node
}

/// A scalar's text, if the node is a string.
fn text<'b>(node: &'b MarkedYaml<'_>) -> Option<&'b str> {
    match &untagged(node).data {
        YamlData::Value(Scalar::String(s)) => Some(s),
        YamlData::Representation(s, _, _) => Some(s),
        _ => None,
    }
}

/// A field of a mapping under its proto name or its JSON (lowerCamelCase) name: the key node and the value.
fn field<'a, 'b>(node: &'b MarkedYaml<'a>, proto_name: &str) -> Option<(&'b MarkedYaml<'a>, &'b MarkedYaml<'a>, String)> {
    let YamlData::Mapping(map) = &untagged(node).data else { return None };
    let json_name = camel_case(proto_name);
    map.iter().find_map(|(k, v)| {
        let key = text(k)?;
        (key == proto_name || key == json_name).then(|| (k, untagged(v), key.to_string()))
    })
}

/// `path_separated_prefix` → `pathSeparatedPrefix`, protobuf's JSON name.
fn camel_case(proto_name: &str) -> String {
    let mut out = String::with_capacity(proto_name.len());
    let mut upper = false;
    for c in proto_name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The items of a sequence field (none when absent or not a sequence).
fn items<'a, 'b>(node: &'b MarkedYaml<'a>, proto_name: &str) -> (String, &'b [MarkedYaml<'a>]) {
    match field(node, proto_name) {
        Some((_, v, key)) => match &v.data {
            YamlData::Sequence(s) => (key, s.as_slice()),
            _ => (key, &[]),
        },
        None => (proto_name.to_string(), &[]),
    }
}

/// How a route matches the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathMatch<'b> {
    /// `prefix`: the first bytes of the path.
    Prefix(&'b str),
    /// `path_separated_prefix`: the path, or the path followed by `/`.
    Separated(&'b str),
    /// `path`: the whole path.
    Exact(&'b str),
    /// `safe_regex`, `path_match_policy`, `connect_matcher`, or none the lint knows.
    Other,
}

impl PathMatch<'_> {
    /// A string prefix that can end inside a segment: not `/`, not ending in `/`.
    /// (A prefix not starting with `/` is left alone: `""` takes every path, like
    /// `/`, and anything else takes no origin-form path.)
    fn cuts_segments(&self) -> bool {
        matches!(self, PathMatch::Prefix(p) if p.starts_with('/') && !p.ends_with('/'))
    }
}

/// Read every route of one route configuration.
fn lint_route_config(config: &MarkedYaml<'_>, base: Vec<Step>, policies: &[PolicySource<'_>], report: &mut Report) {
    let (vh_key, hosts) = items(config, "virtual_hosts");
    for (h, host) in hosts.iter().enumerate() {
        let (routes_key, routes) = items(host, "routes");
        for (r, route) in routes.iter().enumerate() {
            report.routes += 1;
            let mut path = base.clone();
            path.extend([Step::Key(vh_key.clone()), Step::Index(h), Step::Key(routes_key.clone()), Step::Index(r)]);
            lint_route(route, &path, policies, report);
        }
    }
}

/// The match and rewrite checks of one route.
fn lint_route(route: &MarkedYaml<'_>, path: &[Step], policies: &[PolicySource<'_>], report: &mut Report) {
    let Some((_, matcher, match_key)) = field(route, "match") else { return };
    let specifier = ["prefix", "path_separated_prefix", "path"].into_iter().find_map(|name| field(matcher, name).map(|f| (name, f)));
    let mut kind = PathMatch::Other;
    if let Some((name, (key_node, value, key))) = specifier {
        if let Some(value) = text(value) {
            kind = match name {
                "prefix" => PathMatch::Prefix(value),
                "path_separated_prefix" => PathMatch::Separated(value),
                _ => PathMatch::Exact(value),
            };
            // Only a route that forwards hands a backend the path: a redirect or a
            // direct_response on /healthz also answering /healthzx harms nothing.
            if kind.cuts_segments() && field(route, "route").is_some() {
                let mut at = path.to_vec();
                at.extend([Step::Key(match_key.clone()), Step::Key(key)]);
                report.findings.push(finding(key_node, &at, Severity::Warning, string_prefix_message(value, policies)));
            }
        }
    }

    let Some((_, action, action_key)) = field(route, "route") else { return };
    for name in ["prefix_rewrite", "regex_rewrite", "path_rewrite_policy"] {
        let Some((key_node, value, key)) = field(action, name) else { continue };
        // An empty prefix_rewrite is proto3's "not set": Envoy does not rewrite.
        let rewrite = match text(value) {
            Some("") if name == "prefix_rewrite" => continue,
            Some(r) if name == "prefix_rewrite" => Some(r),
            _ => None,
        };
        let mut at = path.to_vec();
        at.extend([Step::Key(action_key.clone()), Step::Key(key.clone())]);
        let (severity, message) = rewrite_message(&key, kind, rewrite, policies);
        report.findings.push(finding(key_node, &at, severity, message));
    }
}

fn finding(node: &MarkedYaml<'_>, path: &[Step], severity: Severity, message: String) -> Finding {
    Finding { line: node.span.start.line(), column: node.span.start.col() + 1, path: render_path(path), severity, message }
}

/// A path the string prefix takes that the policy reads as another segment:
/// a longer policy segment starting with the prefix's last piece if there is
/// one (`/api/payment/adminusers` when a rule names it), else `PREFIXusers`.
fn example_path(prefix: &str, policies: &[PolicySource<'_>]) -> String {
    let (full, last) = split_prefix(prefix);
    for source in policies {
        for rule in &source.policy.rules {
            for pattern in &rule.paths {
                if !cuts(pattern, &full, last) {
                    continue;
                }
                if let Some(Segment::Literal(l)) = pattern.segments.get(full.len()) {
                    if l.len() > last.len() {
                        let mut out = String::new();
                        for s in &full {
                            out.push('/');
                            out.push_str(s);
                        }
                        out.push('/');
                        out.push_str(l);
                        return out;
                    }
                }
            }
        }
    }
    format!("{prefix}users")
}

/// `/a/b/adm` → (`[a, b]`, `adm`): the whole segments, then the piece the prefix ends inside.
fn split_prefix(prefix: &str) -> (Vec<&str>, &str) {
    let body = prefix.strip_prefix('/').unwrap_or(prefix);
    match body.rsplit_once('/') {
        Some((head, last)) => (head.split('/').collect(), last),
        None => (Vec::new(), body),
    }
}

/// Whether `pattern` reads the segment the prefix ends inside: its segments
/// before it fit the prefix's, and at that position it has a literal starting
/// with `last` (equal or longer), `*`, a placeholder, or `**`.
fn cuts(pattern: &PathPattern, full: &[&str], last: &str) -> bool {
    for (i, want) in full.iter().enumerate() {
        match pattern.segments.get(i) {
            None => return pattern.rest,
            Some(Segment::Literal(l)) if &**l != *want => return false,
            Some(_) => {}
        }
    }
    match pattern.segments.get(full.len()) {
        None => pattern.rest,
        Some(Segment::Literal(l)) => l.starts_with(last),
        Some(_) => true,
    }
}

/// The policy patterns a string prefix cuts, named for the message (at most a few).
fn cut_patterns(prefix: &str, policies: &[PolicySource<'_>]) -> Vec<String> {
    let (full, last) = split_prefix(prefix);
    let mut out = Vec::new();
    // By rule name, not `rules[i]`: the engine holds its rules sorted by name, and names are unique.
    for source in policies {
        for rule in &source.policy.rules {
            for pattern in &rule.paths {
                if cuts(pattern, &full, last) {
                    out.push(format!("{} ({}, rule {})", quoted(&pattern.to_string()), source.origin, quoted(&rule.name)));
                }
            }
        }
    }
    out
}

/// How many cut patterns a message names before "and N more".
const NAMED_PATTERNS: usize = 4;

fn string_prefix_message(prefix: &str, policies: &[PolicySource<'_>]) -> String {
    let (_, last) = split_prefix(prefix);
    let example = example_path(prefix, policies);
    let seg = example.rsplit('/').next().unwrap_or_default();
    let mut message = format!(
        "prefix {} is a string prefix: this route also takes {}, whose last segment the policy reads as {}, not {}",
        quoted(prefix),
        quoted(&example),
        quoted(seg),
        quoted(last)
    );
    let cut = cut_patterns(prefix, policies);
    if !cut.is_empty() {
        let named: Vec<&str> = cut.iter().take(NAMED_PATTERNS).map(String::as_str).collect();
        message.push_str(&format!("; policy patterns it cuts: {}", named.join(", ")));
        if cut.len() > NAMED_PATTERNS {
            message.push_str(&format!(" and {} more", cut.len() - NAMED_PATTERNS));
        }
    }
    message.push_str(&format!("; match whole segments with path_separated_prefix: {}", quoted(prefix)));
    message
}

/// Segment-wise ways to get what a rewrite of `prefix` to `rewrite` meant.
fn segment_wise_rewrite(prefix: &str, rewrite: &str) -> String {
    if rewrite.ends_with('/') {
        // path_separated_prefix keeps the '/' after the prefix, so a rewrite ending in '/' doubles it.
        format!(
            "to strip it segment-wise use two routes, prefix: {} and path: {}, each with prefix_rewrite: {}",
            quoted(&format!("{prefix}/")),
            quoted(prefix),
            quoted(rewrite)
        )
    } else {
        format!("match with path_separated_prefix: {} and keep prefix_rewrite: {}", quoted(prefix), quoted(rewrite))
    }
}

/// What a rewrite on a route with `kind` does to the path the policy judged.
/// `rewrite` is the `prefix_rewrite` value; `None` for `regex_rewrite` and
/// `path_rewrite_policy`, whose result the lint does not compute.
fn rewrite_message(key: &str, kind: PathMatch<'_>, rewrite: Option<&str>, policies: &[PolicySource<'_>]) -> (Severity, String) {
    const AFTER: &str = "rewrites the path after the filter judged it";
    let external = "write the policy for the paths clients send, not the ones the backend sees";
    match (kind, rewrite) {
        (PathMatch::Prefix(p), Some(r)) if kind.cuts_segments() => {
            let sent = example_path(p, policies);
            let received = format!("{r}{}", sent.get(p.len()..).unwrap_or_default());
            let message = format!(
                "{key} {AFTER}, and the match is the string prefix {}: the policy judges {} and this route's backend receives {}; {}",
                quoted(p),
                quoted(&sent),
                quoted(&received),
                segment_wise_rewrite(p, r)
            );
            (Severity::Warning, message)
        }
        (PathMatch::Prefix(p), None) if kind.cuts_segments() => {
            let message = format!(
                "{key} {AFTER}, and the match is the string prefix {}: the policy judges {} and this route's backend receives it rewritten; match with path_separated_prefix: {}",
                quoted(p),
                quoted(&example_path(p, policies)),
                quoted(p)
            );
            (Severity::Warning, message)
        }
        (PathMatch::Prefix(p), Some(r)) if p.ends_with('/') && !r.ends_with('/') => {
            let sent = format!("{p}x");
            let message = format!(
                "{key} {} joins segments: the match ends with '/' and the rewrite does not, so the policy judges {} and this route's backend receives {}; end the rewrite with '/' ({})",
                quoted(r),
                quoted(&sent),
                quoted(&format!("{r}x")),
                quoted(&format!("{r}/"))
            );
            (Severity::Warning, message)
        }
        (PathMatch::Separated(p), Some(r)) if r.ends_with('/') => {
            let sent = format!("{p}/x");
            let message = format!(
                "{key} {} leaves an empty segment: Envoy keeps the '/' after a path_separated_prefix, so the policy judges {} and this route's backend receives {}; {}",
                quoted(r),
                quoted(&sent),
                quoted(&format!("{r}/x")),
                if r == "/" {
                    segment_wise_rewrite(p, r)
                } else {
                    format!("write prefix_rewrite: {}", quoted(r.trim_end_matches('/')))
                }
            );
            (Severity::Warning, message)
        }
        (PathMatch::Prefix(p), Some(r)) | (PathMatch::Separated(p), Some(r)) => {
            let sent = if matches!(kind, PathMatch::Separated(_)) { format!("{p}/x") } else { format!("{p}x") };
            let received = format!("{r}{}", sent.get(p.len()..).unwrap_or_default());
            let message = format!(
                "{key} rewrites the path: the filter runs before the router and judged {} as sent; this route's backend receives {}; {external}",
                quoted(&sent),
                quoted(&received)
            );
            (Severity::Note, message)
        }
        (PathMatch::Exact(p), Some(r)) => {
            let message = format!(
                "{key} rewrites the path: the filter runs before the router and judged {} as sent; this route's backend receives {}; {external}",
                quoted(p),
                quoted(r)
            );
            (Severity::Note, message)
        }
        _ => (
            Severity::Note,
            format!(
                "{key} rewrites the path: the filter runs before the router and judged the path as sent; this route's backend receives the rewritten one; {external}"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtls_authz_policy::load::load;

    const POLICY: &str = r#"{"version": 1, "default_action": "deny", "rules": [
      {"name": "admins", "action": "allow", "principals": [{"cn": "a"}], "paths": ["/api/payment/adminusers"]},
      {"name": "nobody-on-admin", "action": "deny", "principals": [{"any": true}], "paths": ["/api/payment/admin/**"]},
      {"name": "reads", "action": "allow", "principals": [{"cn": "r"}], "paths": ["/api/*/query", "/api/payment/adm"]},
      {"name": "everything", "action": "allow", "principals": [{"cn": "ops"}], "paths": ["/**"]}
    ]}"#;

    fn routes(routes: &str) -> String {
        format!(
            "static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config:\n          route_config:\n            virtual_hosts:\n            - routes:\n{routes}"
        )
    }

    fn lint_with_policy(src: &str) -> Report {
        let policy = load("p.json", POLICY.as_bytes()).unwrap();
        lint(src, &[PolicySource { origin: "p.json", policy: policy.policy() }]).unwrap()
    }

    #[test]
    fn a_string_prefix_names_the_patterns_it_cuts() {
        let r =
            lint_with_policy(&routes("              - match: { prefix: \"/api/payment/admin\" }\n                route: { cluster: a }\n"));
        assert_eq!(r.routes, 1);
        assert_eq!(r.findings.len(), 1, "{r:#?}");
        let f = &r.findings[0];
        assert_eq!((f.line, f.column, f.severity), (9, 26, Severity::Warning));
        assert_eq!(
            f.path,
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.prefix"
        );
        // The policy's own longer segment is the example; the exact segment, the longer one and `/**` are cut.
        assert!(f.message.contains("also takes \"/api/payment/adminusers\""), "{}", f.message);
        assert!(f.message.contains("\"/api/payment/adminusers\" (p.json, rule \"admins\")"), "{}", f.message);
        assert!(f.message.contains("\"/api/payment/admin/**\" (p.json, rule \"nobody-on-admin\")"), "{}", f.message);
        assert!(f.message.contains("\"/**\" (p.json, rule \"everything\")"), "{}", f.message);
        // `/api/*/query` has `query` there, `/api/payment/adm` is shorter than the prefix's piece.
        assert!(!f.message.contains("rule \"reads\""), "{}", f.message);
        assert!(f.message.ends_with("match whole segments with path_separated_prefix: \"/api/payment/admin\""), "{}", f.message);
    }

    #[test]
    fn segment_prefixes_and_the_catch_all_are_fine() {
        let src = routes(
            "              - match: { path_separated_prefix: /api/payment/admin }\n                route: { cluster: a }\n              - match: { prefix: /api/ }\n                route: { cluster: a }\n              - match: { path: /api/x }\n                route: { cluster: a }\n              - match: { prefix: / }\n                route: { cluster: a }\n",
        );
        let r = lint_with_policy(&src);
        assert_eq!(r.routes, 4);
        assert!(r.findings.is_empty(), "{r:#?}");
    }

    #[test]
    fn routes_that_do_not_forward_are_left_alone() {
        let src = routes(
            "              - match: { prefix: /healthz }\n                direct_response: { status: 200 }\n              - match: { prefix: /old }\n                redirect: { prefix_rewrite: /new }\n",
        );
        let r = lint_with_policy(&src);
        assert_eq!(r.routes, 2);
        assert!(r.findings.is_empty(), "{r:#?}");
    }

    #[test]
    fn a_rewrite_on_a_string_prefix_shows_the_path_the_backend_receives() {
        let r = lint_with_policy(&routes(
            "              - match: { prefix: /api/payment/admin }\n                route: { cluster: a, prefix_rewrite: / }\n",
        ));
        assert_eq!(r.findings.len(), 2, "{r:#?}");
        let f = &r.findings[1];
        assert_eq!((f.line, f.column, f.severity), (10, 38, Severity::Warning));
        assert!(f.path.ends_with("routes[0].route.prefix_rewrite"), "{}", f.path);
        assert!(
            f.message.contains("the policy judges \"/api/payment/adminusers\" and this route's backend receives \"/users\""),
            "{}",
            f.message
        );
        assert!(f.message.contains("two routes, prefix: \"/api/payment/admin/\" and path: \"/api/payment/admin\""), "{}", f.message);
    }

    #[test]
    fn without_a_policy_the_example_is_built_from_the_prefix() {
        let src = routes("              - match: { prefix: /api/v1 }\n                route: { cluster: a, prefix_rewrite: /v2 }\n");
        let r = lint(&src, &[]).unwrap();
        assert_eq!(r.findings.len(), 2, "{r:#?}");
        assert!(r.findings[0]
            .message
            .contains("also takes \"/api/v1users\", whose last segment the policy reads as \"v1users\", not \"v1\""));
        assert!(!r.findings[0].message.contains("cuts"));
        assert!(r.findings[1].message.contains("backend receives \"/v2users\""), "{}", r.findings[1].message);
        assert!(r.findings[1].message.contains("path_separated_prefix: \"/api/v1\" and keep prefix_rewrite: \"/v2\""));
    }

    #[test]
    fn segment_wise_rewrites_are_notes_and_boundary_moves_are_warnings() {
        let cases = [
            (
                "{ path_separated_prefix: /docs/renamed }",
                "/docs/public",
                Severity::Note,
                "judged \"/docs/renamed/x\" as sent; this route's backend receives \"/docs/public/x\"",
            ),
            ("{ prefix: /docs/renamed/ }", "/docs/public/", Severity::Note, "receives \"/docs/public/x\""),
            ("{ path: /old }", "/new", Severity::Note, "judged \"/old\" as sent; this route's backend receives \"/new\""),
            ("{ prefix: /api/ }", "/v2", Severity::Warning, "joins segments"),
            ("{ prefix: / }", "/v2", Severity::Warning, "backend receives \"/v2x\""),
            ("{ path_separated_prefix: /api }", "/", Severity::Warning, "receives \"//x\"; to strip it segment-wise use two routes"),
            ("{ path_separated_prefix: /api }", "/v2/", Severity::Warning, "write prefix_rewrite: \"/v2\""),
        ];
        for (matcher, rewrite, severity, needle) in cases {
            let src = routes(&format!(
                "              - match: {matcher}\n                route: {{ cluster: a, prefix_rewrite: \"{rewrite}\" }}\n"
            ));
            let r = lint(&src, &[]).unwrap();
            assert_eq!(r.findings.len(), 1, "{matcher} {rewrite}: {r:#?}");
            assert_eq!(r.findings[0].severity, severity, "{matcher} {rewrite}: {r:#?}");
            assert!(r.findings[0].message.contains(needle), "{matcher} {rewrite}: {}", r.findings[0].message);
        }
    }

    #[test]
    fn regex_and_template_rewrites_say_they_rewrite_the_path() {
        let src = routes(
            "              - match: { safe_regex: { regex: \"/a/.*\" } }\n                route: { cluster: a, regex_rewrite: { pattern: { regex: a }, substitution: b } }\n              - match: { prefix: /b }\n                route: { cluster: a, path_rewrite_policy: { name: x } }\n              - match: { prefix: /c/ }\n                route: { cluster: a, prefix_rewrite: \"\" }\n",
        );
        let r = lint(&src, &[]).unwrap();
        let got: Vec<(Severity, &str)> = r.findings.iter().map(|f| (f.severity, f.path.rsplit('.').next().unwrap())).collect();
        assert_eq!(
            got,
            [(Severity::Note, "regex_rewrite"), (Severity::Warning, "prefix"), (Severity::Warning, "path_rewrite_policy")],
            "an empty prefix_rewrite is no rewrite: {r:#?}"
        );
        assert!(r.findings[0].message.contains("regex_rewrite rewrites the path"), "{}", r.findings[0].message);
        assert!(r.findings[2].message.contains("receives it rewritten"), "{}", r.findings[2].message);
    }

    #[test]
    fn json_and_json_field_names_are_read_too() {
        let src = r#"{"staticResources": {"listeners": [{"filterChains": [{"filters": [{"typedConfig": {
  "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "routeConfig": {"virtualHosts": [{"routes": [
    {"match": {"prefix": "/api/payment/admin"}, "route": {"prefixRewrite": "/"}}]}]}}}]}]}]}}"#;
        let r = lint(src, &[]).unwrap();
        assert_eq!(r.findings.len(), 2, "{r:#?}");
        assert_eq!((r.findings[0].line, r.findings[0].column), (4, 16));
        assert_eq!(
            r.findings[0].path,
            "staticResources.listeners[0].filterChains[0].filters[0].typedConfig.routeConfig.virtualHosts[0].routes[0].match.prefix"
        );
        assert!(r.findings[1].path.ends_with("route.prefixRewrite"));
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        let steps = [Step::Key("a".into()), Step::Key("@type".into()), Step::Index(2), Step::Key("b".into())];
        assert_eq!(render_path(&steps), "a[\"@type\"][2].b");
    }

    #[test]
    fn dynamic_routes_and_other_documents_have_no_route_config() {
        let r = lint("static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config:\n          rds: { route_config_name: x }\n", &[]).unwrap();
        assert_eq!((r.route_configs, r.routes), (0, 0));
        let r = lint("", &[]).unwrap();
        assert_eq!((r.route_configs, r.routes), (0, 0));
    }

    #[test]
    fn yaml_errors_are_placed() {
        let e = lint("a:\n  b: [1, 2\n", &[]).unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        let e = lint("a: 1\na: 2\n", &[]).unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e:?}");
        assert!(e.message.contains("duplicate"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_not_a_crash() {
        for src in ["- ".repeat(100_000) + "x\n", "a:\n".to_string() + &"- ".repeat(201) + "x\n", "[".repeat(250) + &"]".repeat(250)] {
            let e = lint(&src, &[]).unwrap_err();
            assert!(e.message.contains("nested deeper than 200 levels") || e.message.contains("recursion limit"), "{e:?}");
        }
        assert!(lint(&("- ".repeat(199) + "x\n"), &[]).is_ok());
    }
}
