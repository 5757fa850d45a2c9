//! Who can reach what: the access matrix of a policy, and what a policy change
//! does to it.
//!
//! A policy is read one rule at a time, but its meaning is the whole table:
//! every identity × endpoint × method, allowed or denied. People writing a
//! first policy want to see that table; people reviewing a change want to see
//! which cells of it flip. `mtls-authz matrix`, `mtls-authz diff` and the
//! browser playground all build the table here, from the same decisions the
//! filter makes ([`CompiledPolicy::decide`]), so the terminal and the browser
//! cannot disagree about a cell.
//!
//! The axes come from the policy itself, plus whatever the user adds:
//! - identities: the user's certificates and fields, then one per principal
//!   (a certificate that satisfies it, with `*` in a pattern standing for `x`);
//! - endpoints: the user's own, then every path pattern of every rule. A
//!   pattern is tried as one concrete path per identity: `*` and `**` become
//!   `x`, and a placeholder (`{cn}`) the identity's own value, so
//!   `/devices/{cn}/telemetry` shows whether each device reaches *its own*
//!   telemetry;
//! - methods: every method a rule names, `GET` always, in the usual order.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::canonical::encode_name;
use crate::compile::CompiledPolicy;
use crate::eval::uri_last_segment;
use crate::model::Condition;
use crate::pattern::{dns_name, PathPattern, Placeholder, Segment};
use crate::{Identity, IdentityView, Policy, Principal, PrincipalFormat, Verdict};

/// The methods shown first, in this order; others follow alphabetically.
const USUAL_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// What stands for a `*`, a `**` or a missing placeholder value in a concrete path.
const SAMPLE_SEGMENT: &str = "x";

/// Where a row of the matrix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// Made from a policy principal: a certificate that satisfies it.
    Principal,
    /// Read from a certificate the user gave.
    Certificate,
    /// Typed by the user as identity fields.
    Fields,
}

/// One row: who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixIdentity {
    /// Unique within a matrix; how the row is named in tables, diffs and cases.
    pub label: String,
    pub kind: IdentityKind,
    pub identity: Identity,
}

impl MatrixIdentity {
    /// A user's identity, labelled by the name the upstream would get for it
    /// (`cn=order-service`, `uri=spiffe://…`), so the same certificate gets the
    /// same label in the terminal and in the browser.
    pub fn user(kind: IdentityKind, identity: Identity) -> MatrixIdentity {
        let label = identity.upstream_principal(PrincipalFormat::Typed).into_owned();
        MatrixIdentity { label, kind, identity }
    }
}

/// One column: a path pattern of the policy (tried per identity) or a concrete request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Pattern(PathPattern),
    /// Sent as written, query and escapes included.
    Target(String),
}

impl Endpoint {
    /// A user's endpoint: a pattern when it has `*` or a placeholder, else the target as written.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        if text.contains(['*', '{']) {
            PathPattern::parse(text).map(Endpoint::Pattern).map_err(|e| format!("endpoint '{text}': {e}"))
        } else if text.starts_with('/') {
            Ok(Endpoint::Target(text.to_owned()))
        } else {
            Err(format!("endpoint '{text}' must start with '/'"))
        }
    }

    /// How the column is headed.
    pub fn label(&self) -> String {
        match self {
            Endpoint::Pattern(p) => p.to_string(),
            Endpoint::Target(t) => t.clone(),
        }
    }

    /// The request target this column sends for `identity`.
    pub fn target_for(&self, identity: &Identity) -> String {
        match self {
            Endpoint::Target(t) => t.clone(),
            Endpoint::Pattern(p) => instantiate(p, identity),
        }
    }
}

/// The concrete path a pattern stands for, for this identity.
fn instantiate(pattern: &PathPattern, identity: &Identity) -> String {
    let mut out = String::new();
    for segment in &pattern.segments {
        out.push('/');
        match segment {
            Segment::Literal(name) => out.push_str(&encode_name(name)),
            Segment::Any => out.push_str(SAMPLE_SEGMENT),
            Segment::Placeholder(p) => out.push_str(&encode_name(placeholder_value(*p, identity).unwrap_or(SAMPLE_SEGMENT))),
        }
    }
    if pattern.rest {
        out.push('/');
        out.push_str(SAMPLE_SEGMENT);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The identity's value for a placeholder, the one the engine would compare.
fn placeholder_value(placeholder: Placeholder, identity: &Identity) -> Option<&str> {
    match placeholder {
        Placeholder::Cn => identity.common_name(),
        Placeholder::DnsSan => identity.dns_sans.first().map(|d| dns_name(d)),
        Placeholder::UriSanLastSegment => match identity.uri_sans.as_slice() {
            [only] => uri_last_segment(only),
            _ => None,
        },
    }
}

/// The rows, columns and methods of a matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Axes {
    pub identities: Vec<MatrixIdentity>,
    pub endpoints: Vec<Endpoint>,
    pub methods: Vec<String>,
}

/// What the user adds to the axes a policy brings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    pub identities: Vec<MatrixIdentity>,
    pub endpoints: Vec<Endpoint>,
    /// When given, exactly these methods instead of the policy's.
    pub methods: Option<Vec<String>>,
}

impl Axes {
    /// The axes for these policies (one for a matrix, old and new for a diff)
    /// and the user's additions, without duplicates, labels made unique.
    pub fn for_policies(policies: &[&Policy], extra: &Extra) -> Axes {
        let mut identities: Vec<MatrixIdentity> = Vec::new();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        let mut methods: Vec<String> = vec!["GET".to_owned()];
        // The user's own rows and columns first: they are what the user came to
        // see, and a page that shows only the first rows of a large policy keeps them.
        for identity in &extra.identities {
            push_identity(&mut identities, identity.clone());
        }
        for endpoint in &extra.endpoints {
            push_endpoint(&mut endpoints, endpoint.clone());
        }
        for policy in policies {
            for rule in &policy.rules {
                for principal in &rule.principals {
                    let (label, identity) = principal_identity(principal);
                    push_identity(&mut identities, MatrixIdentity { label, kind: IdentityKind::Principal, identity });
                }
                for pattern in &rule.paths {
                    push_endpoint(&mut endpoints, Endpoint::Pattern(pattern.clone()));
                }
                methods.extend(rule.methods.iter().flat_map(|ms| ms.iter()).map(|m| m.to_string()));
            }
        }
        let methods = match &extra.methods {
            Some(given) => given.clone(),
            None => usual_order(methods),
        };
        Axes { identities, endpoints, methods }
    }
}

/// Which part of a large matrix to compute: a page cannot draw millions of
/// cells (1,000 rules bring about 1,000 identities and 2,000 endpoints), so it
/// asks for the rows and columns whose labels contain a filter, up to a cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Keep rows whose label contains this (any case); empty keeps all.
    #[serde(default)]
    pub rows: String,
    /// Keep endpoints whose label contains this (any case); empty keeps all.
    #[serde(default)]
    pub columns: String,
    /// At most this many rows (the first ones that match).
    pub max_rows: usize,
    /// At most this many endpoints.
    pub max_columns: usize,
}

/// How much of the axes a [`Window`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shown {
    /// Rows and endpoints before filtering.
    pub identities: usize,
    pub endpoints: usize,
    /// Rows and endpoints that match the filters (the cap may show fewer).
    pub matching_identities: usize,
    pub matching_endpoints: usize,
}

impl Axes {
    /// Keep only the window's rows and columns (in order), and say how many there were.
    pub fn window(&mut self, window: &Window) -> Shown {
        let (identities, endpoints) = (self.identities.len(), self.endpoints.len());
        let keep = |filter: &str, label: &str| filter.is_empty() || label.to_lowercase().contains(&filter.to_lowercase());
        self.identities.retain(|r| keep(&window.rows, &r.label));
        self.endpoints.retain(|e| keep(&window.columns, &e.label()));
        let shown = Shown { identities, endpoints, matching_identities: self.identities.len(), matching_endpoints: self.endpoints.len() };
        self.identities.truncate(window.max_rows);
        self.endpoints.truncate(window.max_columns);
        shown
    }
}

fn push_identity(rows: &mut Vec<MatrixIdentity>, mut row: MatrixIdentity) {
    if rows.iter().any(|r| r.identity == row.identity) {
        return;
    }
    let base = row.label.clone();
    let mut n = 2;
    while rows.iter().any(|r| r.label == row.label) {
        row.label = format!("{base} ({n})");
        n += 1;
    }
    rows.push(row);
}

fn push_endpoint(columns: &mut Vec<Endpoint>, column: Endpoint) {
    let label = column.label();
    if !columns.iter().any(|c| c.label() == label) {
        columns.push(column);
    }
}

fn usual_order(mut methods: Vec<String>) -> Vec<String> {
    let rank = |m: &String| USUAL_METHODS.iter().position(|u| u == m).unwrap_or(USUAL_METHODS.len());
    methods.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    methods.dedup();
    methods
}

/// A certificate that satisfies `principal` (a `*` in a pattern stands for
/// `x`), and the principal written as `field=value` pairs to name the row.
fn principal_identity(principal: &Principal) -> (String, Identity) {
    let mut id = Identity::default();
    let mut label: Vec<String> = Vec::new();
    if principal.any {
        id.common_names.push("any-other-client".to_owned());
        return ("any certificate".to_owned(), id);
    }
    let sample = |p: &crate::pattern::ValuePattern| p.as_str().replace('*', SAMPLE_SEGMENT);
    let field = |label: &mut Vec<String>, name: &str, value: String, into: &mut Vec<String>| {
        label.push(format!("{name}={value}"));
        into.push(value);
    };
    for c in principal.conditions() {
        match c {
            Condition::Cn(p) => field(&mut label, "cn", sample(p), &mut id.common_names),
            Condition::O(p) => field(&mut label, "o", sample(p), &mut id.organizations),
            Condition::Ou(p) => field(&mut label, "ou", sample(p), &mut id.organizational_units),
            Condition::UriSan(p) => field(&mut label, "uri_san", sample(p), &mut id.uri_sans),
            Condition::DnsSan(p) => field(&mut label, "dns_san", sample(p), &mut id.dns_sans),
            Condition::EmailSan(p) => field(&mut label, "email_san", sample(p), &mut id.email_sans),
            Condition::IssuerCn(p) => field(&mut label, "issuer_cn", sample(p), &mut id.issuer_common_names),
            Condition::IpSan(net) => {
                label.push(format!("ip_san={}", net.addr));
                id.ip_sans.push(net.addr);
            }
            Condition::Serial(serial) => {
                label.push(format!("serial={serial}"));
                id.serial = serial.to_string();
            }
            Condition::Sha256(sha256) => {
                label.push(format!("sha256={}", sha256.get(..16).unwrap_or(sha256)));
                id.sha256 = sha256.to_string();
            }
        }
    }
    (label.join(" "), id)
}

/// One cell: what the policy decides for one identity, endpoint and method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// Index into [`Matrix::identities`].
    pub identity: usize,
    /// Index into [`Matrix::endpoints`].
    pub endpoint: usize,
    /// Index into [`Matrix::methods`].
    pub method: usize,
    /// The request target sent (the endpoint instantiated for this identity).
    pub path: String,
    pub verdict: Verdict,
    pub enforced: Verdict,
    /// The deciding rule; `None` when the default or a refusal decided.
    pub rule: Option<String>,
    pub reason: &'static str,
}

/// A row as a matrix reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub label: String,
    pub kind: IdentityKind,
    /// Every field the filter would see, named as principals name them.
    pub identity: IdentityView,
}

/// Every decision of a policy over its axes, cells in identity, endpoint, method order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub identities: Vec<Row>,
    pub endpoints: Vec<String>,
    pub methods: Vec<String>,
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// Decide every cell of `axes` under `policy`.
    pub fn compute(policy: &CompiledPolicy, axes: &Axes) -> Matrix {
        let mut cells = Vec::with_capacity(axes.identities.len() * axes.endpoints.len() * axes.methods.len());
        for (i, row) in axes.identities.iter().enumerate() {
            for (e, endpoint) in axes.endpoints.iter().enumerate() {
                let path = endpoint.target_for(&row.identity);
                for (m, method) in axes.methods.iter().enumerate() {
                    let d = policy.decide(Some(&row.identity), method, &path);
                    cells.push(Cell {
                        identity: i,
                        endpoint: e,
                        method: m,
                        path: path.clone(),
                        verdict: d.verdict,
                        enforced: d.enforced,
                        rule: d.rule.map(str::to_owned),
                        reason: d.reason.as_str(),
                    });
                }
            }
        }
        Matrix {
            identities: axes
                .identities
                .iter()
                .map(|r| Row { label: r.label.clone(), kind: r.kind, identity: IdentityView::new(&r.identity, None, None) })
                .collect(),
            endpoints: axes.endpoints.iter().map(Endpoint::label).collect(),
            methods: axes.methods.clone(),
            cells,
        }
    }

    /// The cells as a `cases.json` document `mtls-authz test` runs against
    /// the same policy: each expects the verdict and rule the matrix shows.
    /// `only` picks cells by index; `None` exports them all.
    pub fn cases(&self, only: Option<&[usize]>) -> serde_json::Value {
        let picked: Vec<&Cell> = match only {
            Some(indices) => indices.iter().filter_map(|&i| self.cells.get(i)).collect(),
            None => self.cells.iter().collect(),
        };
        let cases: Vec<serde_json::Value> = picked
            .into_iter()
            .filter_map(|c| {
                let row = self.identities.get(c.identity)?;
                let method = self.methods.get(c.method)?;
                Some(serde_json::json!({
                    "name": format!("{} {} {} ({})", row.label, method, c.path, c.verdict.as_str()),
                    "identity": row.identity,
                    "method": method,
                    "path": c.path,
                    "expect": c.verdict.as_str(),
                    "rule": c.rule,
                }))
            })
            .collect();
        serde_json::json!({"description": "exported from the mtls-authz access matrix", "cases": cases})
    }
}

/// One cell that a policy change flips from allow to deny or back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flip {
    /// Index into the matrices' cells (both have the same axes).
    pub cell: usize,
    pub identity: String,
    pub endpoint: String,
    pub method: String,
    pub path: String,
    pub old: Verdict,
    pub old_rule: Option<String>,
    pub new: Verdict,
    pub new_rule: Option<String>,
}

/// Two versions of a policy over the same axes, and the cells that change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub old: Matrix,
    pub new: Matrix,
    /// Cells whose decision flips (allow <-> deny).
    pub flips: Vec<Flip>,
    /// Cells that keep their decision but now get it from another rule (or
    /// the default): no one gains or loses access, but a reviewer should know
    /// that, say, an admin path is now closed only by the default.
    pub rule_changes: Vec<Flip>,
}

impl Diff {
    /// Both policies over the union of their axes and the user's additions.
    pub fn compute(old: &CompiledPolicy, new: &CompiledPolicy, extra: &Extra) -> Diff {
        Diff::over(old, new, &Axes::for_policies(&[old.policy(), new.policy()], extra))
    }

    /// Both policies over `axes` (the union of theirs, perhaps windowed).
    pub fn over(old: &CompiledPolicy, new: &CompiledPolicy, axes: &Axes) -> Diff {
        let (old, new) = (Matrix::compute(old, axes), Matrix::compute(new, axes));
        let flips = changes(&old, &new, |a, b| a.verdict != b.verdict);
        let rule_changes = changes(&old, &new, |a, b| a.verdict == b.verdict && a.rule != b.rule);
        Diff { old, new, flips, rule_changes }
    }
}

/// The cells of two matrices over the same axes for which `changed` holds.
fn changes(old: &Matrix, new: &Matrix, changed: impl Fn(&Cell, &Cell) -> bool) -> Vec<Flip> {
    old.cells
        .iter()
        .zip(&new.cells)
        .enumerate()
        .filter(|(_, (a, b))| changed(a, b))
        .filter_map(|(i, (a, b))| {
            Some(Flip {
                cell: i,
                identity: old.identities.get(a.identity)?.label.clone(),
                endpoint: old.endpoints.get(a.endpoint)?.clone(),
                method: old.methods.get(a.method)?.clone(),
                path: a.path.clone(),
                old: a.verdict,
                old_rule: a.rule.clone(),
                new: b.verdict,
                new_rule: b.rule.clone(),
            })
        })
        .collect()
}

/// Cells grouped for a text table: per (identity, endpoint), one cell per method.
pub fn rows_of(matrix: &Matrix) -> BTreeMap<(usize, usize), Vec<&Cell>> {
    let mut rows: BTreeMap<(usize, usize), Vec<&Cell>> = BTreeMap::new();
    for cell in &matrix.cells {
        rows.entry((cell.identity, cell.endpoint)).or_default().push(cell);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"version": 1, "default_action": "deny", "rules": [
        {"name": "orders", "action": "allow", "principals": [{"cn": "order-service"}],
         "paths": ["/api/payment/create"], "methods": ["POST"]},
        {"name": "own-telemetry", "action": "allow", "principals": [{"cn": "dev-*", "o": "fleet"}],
         "paths": ["/devices/{cn}/telemetry"], "methods": ["PUT"]},
        {"name": "no-admin", "action": "deny", "principals": [{"any": true}], "paths": ["/admin/**"]}]}"#;

    fn compiled(src: &str) -> CompiledPolicy {
        CompiledPolicy::from_json(src).unwrap()
    }

    fn cell<'m>(m: &'m Matrix, who: &str, endpoint: &str, method: &str) -> &'m Cell {
        let i = m.identities.iter().position(|r| r.label == who).unwrap();
        let e = m.endpoints.iter().position(|x| x == endpoint).unwrap();
        let k = m.methods.iter().position(|x| x == method).unwrap();
        m.cells.iter().find(|c| (c.identity, c.endpoint, c.method) == (i, e, k)).unwrap()
    }

    #[test]
    fn the_axes_come_from_the_principals_patterns_and_methods() {
        let p = compiled(POLICY);
        let axes = Axes::for_policies(&[p.policy()], &Extra::default());
        let labels: Vec<&str> = axes.identities.iter().map(|i| i.label.as_str()).collect();
        // In the compiled policy's rule order (by name), which is what every evaluator sees.
        assert_eq!(labels, ["any certificate", "cn=order-service", "cn=dev-x o=fleet"]);
        let endpoints: Vec<String> = axes.endpoints.iter().map(Endpoint::label).collect();
        assert_eq!(endpoints, ["/admin/**", "/api/payment/create", "/devices/{cn}/telemetry"]);
        assert_eq!(axes.methods, ["GET", "POST", "PUT"]);
    }

    #[test]
    fn each_cell_is_the_engines_decision_for_the_instantiated_path() {
        let p = compiled(POLICY);
        let m = Matrix::compute(&p, &Axes::for_policies(&[p.policy()], &Extra::default()));
        assert_eq!(m.cells.len(), 3 * 3 * 3);
        let own = cell(&m, "cn=dev-x o=fleet", "/devices/{cn}/telemetry", "PUT");
        assert_eq!(
            (own.path.as_str(), own.verdict, own.rule.as_deref()),
            ("/devices/dev-x/telemetry", Verdict::Allow, Some("own-telemetry"))
        );
        let other = cell(&m, "cn=order-service", "/devices/{cn}/telemetry", "PUT");
        assert_eq!((other.path.as_str(), other.verdict), ("/devices/order-service/telemetry", Verdict::Deny));
        let admin = cell(&m, "cn=order-service", "/admin/**", "GET");
        assert_eq!((admin.path.as_str(), admin.rule.as_deref()), ("/admin/x", Some("no-admin")));
        for c in &m.cells {
            let row = &Axes::for_policies(&[p.policy()], &Extra::default()).identities[c.identity];
            let d = p.decide(Some(&row.identity), &m.methods[c.method], &c.path);
            assert_eq!((c.verdict, c.rule.as_deref()), (d.verdict, d.rule));
        }
    }

    #[test]
    fn user_identities_and_endpoints_are_added_once() {
        let p = compiled(POLICY);
        let me = Identity { common_names: vec!["order-service".into()], ..Identity::default() };
        let extra = Extra {
            identities: vec![MatrixIdentity::user(IdentityKind::Fields, me.clone())],
            endpoints: vec![Endpoint::parse("/api/payment/create").unwrap(), Endpoint::parse("/health?x=1").unwrap()],
            methods: None,
        };
        let axes = Axes::for_policies(&[p.policy()], &extra);
        assert_eq!(axes.identities.len(), 3, "the same identity as a principal's is one row");
        assert_eq!(axes.endpoints.len(), 4);
        assert!(Endpoint::parse("health").is_err());
        assert!(Endpoint::parse("/a/{nope}").is_err());
    }

    #[test]
    fn a_window_filters_then_caps_rows_and_columns() {
        let p = compiled(POLICY);
        let mut axes = Axes::for_policies(&[p.policy()], &Extra::default());
        let window = Window { rows: "CN=".into(), columns: "".into(), max_rows: 1, max_columns: 2 };
        let shown = axes.window(&window);
        assert_eq!((shown.identities, shown.matching_identities, shown.endpoints, shown.matching_endpoints), (3, 2, 3, 3));
        assert_eq!(axes.identities.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(), ["cn=order-service"]);
        assert_eq!(axes.endpoints.len(), 2);
    }

    #[test]
    fn a_diff_lists_exactly_the_cells_whose_verdict_changes() {
        let old = compiled(POLICY);
        let new = compiled(&POLICY.replace(r#""methods": ["POST"]"#, r#""methods": ["POST", "GET"]"#));
        let diff = Diff::compute(&old, &new, &Extra::default());
        assert_eq!(diff.flips.len(), 1, "{:?}", diff.flips);
        let f = &diff.flips[0];
        assert_eq!((f.identity.as_str(), f.method.as_str(), f.path.as_str()), ("cn=order-service", "GET", "/api/payment/create"));
        assert_eq!((f.old, f.new, f.new_rule.as_deref()), (Verdict::Deny, Verdict::Allow, Some("orders")));
        assert!(diff.rule_changes.is_empty());
        assert!(Diff::compute(&old, &old, &Extra::default()).flips.is_empty());
        // Narrowing the admin deny to POST keeps GET denied, by the default now: a rule change, not a flip.
        let narrowed = compiled(&POLICY.replace(r#""paths": ["/admin/**"]"#, r#""paths": ["/admin/**"], "methods": ["POST"]"#));
        let diff = Diff::compute(&old, &narrowed, &Extra::default());
        assert!(diff.flips.is_empty(), "{:?}", diff.flips);
        assert_eq!(diff.rule_changes.len(), 3 * 2, "GET and PUT on /admin/** for each of 3 identities");
        assert!(diff.rule_changes.iter().all(|c| c.old_rule.as_deref() == Some("no-admin") && c.new_rule.is_none()));
    }

    #[test]
    fn exported_cases_name_each_cell_with_its_verdict_and_rule() {
        let p = compiled(POLICY);
        let m = Matrix::compute(&p, &Axes::for_policies(&[p.policy()], &Extra::default()));
        let create = |c: &Cell| m.endpoints[c.endpoint] == "/api/payment/create" && m.identities[c.identity].label == "cn=order-service";
        let picked: Vec<usize> = m.cells.iter().enumerate().filter(|(_, c)| create(c)).map(|(i, _)| i).take(2).collect();
        let doc = m.cases(Some(&picked));
        let cases = doc["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1]["method"], "POST");
        assert_eq!(cases[1]["expect"], "allow");
        assert_eq!(cases[1]["rule"], "orders");
        assert_eq!(cases[1]["identity"]["cn"], serde_json::json!(["order-service"]));
        assert_eq!(m.cases(None)["cases"].as_array().unwrap().len(), m.cells.len());
    }
}
