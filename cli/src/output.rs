//! Shared presentation: output formats, the identity as shown to people and
//! programs, and small text helpers.
//!
//! The identity's JSON form uses the identity-fields names (`cn`, `o`,
//! `uri_san`, ...) so that what `explain` prints for a real certificate can be
//! pasted into a test case as its `identity` and means the same thing.

use clap::ValueEnum;
use serde::Serialize;

use crate::identity_input::Caller;
use crate::timefmt::format_rfc3339;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// One JSON object on one line, for scripts.
    Json,
}

/// Every identity field the engine can match on, plus the display-only ones.
/// Unknown values are `null` (text: `-`), never an invented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityView {
    pub subject: Option<String>,
    pub cn: Vec<String>,
    pub o: Vec<String>,
    pub ou: Vec<String>,
    pub issuer: Option<String>,
    pub issuer_cn: Vec<String>,
    pub serial: Option<String>,
    pub uri_san: Vec<String>,
    pub dns_san: Vec<String>,
    pub email_san: Vec<String>,
    pub ip_san: Vec<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub sha256: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl IdentityView {
    pub fn new(caller: &Caller) -> IdentityView {
        let id = &caller.identity;
        IdentityView {
            subject: non_empty(&id.subject),
            cn: id.common_names.clone(),
            o: id.organizations.clone(),
            ou: id.organizational_units.clone(),
            issuer: non_empty(&id.issuer),
            issuer_cn: id.issuer_common_names.clone(),
            serial: non_empty(&id.serial),
            uri_san: id.uri_sans.clone(),
            dns_san: id.dns_sans.clone(),
            email_san: id.email_sans.clone(),
            ip_san: id.ip_sans.iter().map(ToString::to_string).collect(),
            not_before: caller.not_before.map(format_rfc3339),
            not_after: caller.not_after.map(format_rfc3339),
            sha256: non_empty(&id.sha256),
        }
    }

    /// `(label, value)` rows for text output, in the order people look for them.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        vec![
            ("subject", opt(&self.subject)),
            ("cn", list(&self.cn)),
            ("o", list(&self.o)),
            ("ou", list(&self.ou)),
            ("issuer", opt(&self.issuer)),
            ("issuer_cn", list(&self.issuer_cn)),
            ("serial", opt(&self.serial)),
            ("uri_san", list(&self.uri_san)),
            ("dns_san", list(&self.dns_san)),
            ("email_san", list(&self.email_san)),
            ("ip_san", list(&self.ip_san)),
            ("not_before", opt(&self.not_before)),
            ("not_after", opt(&self.not_after)),
            ("sha256", opt(&self.sha256)),
        ]
    }
}

/// `a, b` — or `-` for none, so an empty field is visibly empty.
pub fn list(values: &[String]) -> String {
    if values.is_empty() {
        "-".into()
    } else {
        values.join(", ")
    }
}

/// A value as it would appear in JSON: quoted and escaped, so a rule name or
/// reason with odd characters is unambiguous in a failure report.
pub fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One JSON line for any serialisable report.
pub fn to_json_line<T: Serialize>(value: &T) -> String {
    // Serialising plain structs of strings, numbers and options cannot fail;
    // should it ever, say so in JSON rather than panic.
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":{}}}", quoted(&e.to_string())))
}
