//! An [`Identity`] as shown to people and programs: every field a policy can
//! match on, named as a policy principal names it (`cn`, `o`, `uri_san`, ...),
//! plus the display-only subject, issuer and validity window.
//!
//! The CLI's `explain` and the doctor's identity check print this view, and
//! the CLI's test-case `identity` format reads the same names back, so what is
//! printed for a real certificate can be pasted into a test case and means
//! the same thing.

use serde::Serialize;

use crate::timefmt::format_rfc3339;
use crate::Identity;

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
    /// The view of `id`. The validity window is passed separately because an
    /// identity written by hand may not know it (`None` shows as unknown),
    /// while one read from a certificate always does.
    pub fn new(id: &Identity, not_before: Option<i64>, not_after: Option<i64>) -> IdentityView {
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
            not_before: not_before.map(format_rfc3339),
            not_after: not_after.map(format_rfc3339),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_shows_every_field_a_principal_can_name() {
        let view = serde_json::to_value(IdentityView::new(&Identity::default(), None, None)).unwrap();
        for field in crate::identity::MATCH_FIELDS {
            assert!(view.get(field).is_some(), "the identity view has no {field:?}");
        }
    }
}
