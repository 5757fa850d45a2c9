//! The decision audit log: one JSON record per decision, or per deny.
//!
//! The filter publishes the record as filter state
//! ([`FILTER_STATE`]); an access log format prints it
//! (`%FILTER_STATE(wasm.mtls_authz.audit:PLAIN)%`), so it goes wherever the
//! operator's access logs already go. The record is made by `serde_json`, so
//! a CN full of quotes and newlines is an escaped JSON string and the record
//! stays one line that no certificate or request can add a field to.

use crate::identity::Identity;
use crate::identity_field::IdentityField;

/// The filter state key (Envoy adds `wasm.`): `%FILTER_STATE(wasm.mtls_authz.audit:PLAIN)%`.
pub const FILTER_STATE: &str = "mtls_authz.audit";

/// Which decisions get a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvents {
    /// Every decision.
    All,
    /// Denies, 429s, and the dry-run denies and limits that were let through.
    Deny,
}

/// The policy's `audit_log` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditLog {
    pub events: AuditEvents,
}

/// The longest request path a record carries; a longer one is cut and marked.
pub const PATH_MAX: usize = 2048;

/// What one record says.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// `allow`, `deny`, `dry_run_deny`, `rate_limited`, `rate_limited_dry_run`.
    pub verdict: &'a str,
    pub rule: Option<&'a str>,
    pub reason: &'a str,
    /// The limit that refused (or would have), for the rate-limit verdicts.
    pub limit: Option<&'a str>,
    pub identity: Option<&'a Identity>,
    /// The identity fields the policy reads ([`crate::gateway::Gateway::audit_fields`]).
    pub fields: &'a [IdentityField],
    pub method: Option<&'a [u8]>,
    pub path: Option<&'a [u8]>,
    pub revision: Option<&'a str>,
}

impl AuditLog {
    /// Does a decision with this verdict get a record?
    pub fn records(&self, allowed_plainly: bool) -> bool {
        self.events == AuditEvents::All || !allowed_plainly
    }
}

fn text(bytes: &[u8], max: usize) -> (String, bool) {
    let cut = bytes.len() > max;
    (String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes)).into_owned(), cut)
}

/// The record as one line of JSON.
pub fn record(r: &Record<'_>) -> String {
    let mut identity = serde_json::Map::new();
    if let Some(id) = r.identity {
        for field in r.fields {
            if let Some(value) = field.value(id) {
                identity.insert(field.as_str().to_owned(), value.into());
            }
        }
    }
    let (path, path_cut) = r.path.map(|p| text(p, PATH_MAX)).unzip();
    let mut out = serde_json::json!({
        "verdict": r.verdict,
        "rule": r.rule,
        "reason": r.reason,
        "method": r.method.map(|m| text(m, 64).0),
        "path": path,
        "identity": if r.identity.is_some() { serde_json::Value::Object(identity) } else { serde_json::Value::Null },
        "revision": r.revision,
    });
    if let Some(obj) = out.as_object_mut() {
        if let Some(limit) = r.limit {
            obj.insert("limit".into(), limit.into());
        }
        if path_cut == Some(true) {
            obj.insert("path_truncated".into(), true.into());
        }
    }
    out.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_cn_stays_inside_its_string() {
        let id = Identity {
            common_names: vec!["x\",\"verdict\":\"allow\"}\n{\"verdict\":\"allow".into()],
            organizations: vec!["Globex".into()],
            ..Identity::default()
        };
        let fields = [IdentityField::Principal, IdentityField::Cn, IdentityField::O];
        let r = Record {
            verdict: "deny",
            rule: None,
            reason: "no rule matched; default_action is deny",
            limit: None,
            identity: Some(&id),
            fields: &fields,
            method: Some(b"GET"),
            path: Some(b"/a\"\n"),
            revision: Some("r1"),
        };
        let line = record(&r);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["verdict"], "deny");
        assert_eq!(v["identity"]["cn"], id.common_names[0]);
        assert_eq!(v["identity"]["o"], "Globex");
        assert_eq!(v["path"], "/a\"\n");
        assert_eq!(v["revision"], "r1");
        assert!(v.get("limit").is_none());
    }

    #[test]
    fn long_paths_are_cut_and_marked() {
        let path = vec![b'a'; PATH_MAX + 5];
        let line = record(&Record {
            verdict: "allow",
            rule: Some("r"),
            reason: "matched an allow rule",
            limit: None,
            identity: None,
            fields: &[],
            method: None,
            path: Some(&path),
            revision: None,
        });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["path"].as_str().map(str::len), Some(PATH_MAX));
        assert_eq!(v["path_truncated"], true);
        assert_eq!(v["identity"], serde_json::Value::Null);
    }

    #[test]
    fn deny_only_logs_everything_but_plain_allows() {
        assert!(AuditLog { events: AuditEvents::All }.records(true));
        assert!(!AuditLog { events: AuditEvents::Deny }.records(true));
        assert!(AuditLog { events: AuditEvents::Deny }.records(false));
    }
}
