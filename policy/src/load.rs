//! Loading a policy: bytes → UTF-8 text → validated, compiled policy.
//!
//! The filter (plugin configuration), `mtls-authz check`, `explain`, `test`,
//! `publish`, `watch` and `doctor` all load a policy through [`load`], so a
//! file is refused for the same reasons and with the same lines everywhere:
//! `ORIGIN:LINE:COL: JSONPATH: message`, one per problem.

use std::fmt;

use crate::compile::CompiledPolicy;
use crate::error::PolicyErrors;
use crate::json::line_col;
use crate::model::Policy;

/// A policy document that could not be loaded, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The name errors are placed in: a file name, or "plugin configuration".
    pub origin: String,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

/// Why a policy document could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// The bytes are not UTF-8 text (JSON is). `offset` is the first invalid
    /// byte; `line` and `column` (1-based, characters) place it.
    NotText { offset: usize, line: usize, column: usize },
    /// The text is not a valid policy: every error found, in source order.
    Invalid(PolicyErrors),
}

impl LoadError {
    /// True when the bytes were not text at all (callers such as `check` treat
    /// that as unusable input rather than as an invalid policy).
    pub fn is_not_text(&self) -> bool {
        matches!(self.kind, LoadErrorKind::NotText { .. })
    }

    /// One line per problem, each `ORIGIN:LINE:COL: JSONPATH: message`
    /// (`ORIGIN: invalid policy` if the engine gave no error, which it should not).
    pub fn lines(&self) -> Vec<String> {
        let origin = &self.origin;
        match &self.kind {
            LoadErrorKind::NotText { line, column, .. } => vec![format!("{origin}:{line}:{column}: policy is not UTF-8 text")],
            LoadErrorKind::Invalid(errors) if errors.0.is_empty() => vec![format!("{origin}: invalid policy")],
            LoadErrorKind::Invalid(errors) => errors.iter().map(|e| format!("{origin}:{e}")).collect(),
        }
    }
}

impl fmt::Display for LoadError {
    /// [`LoadError::lines`], joined by newlines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// The text of a policy document, or where its first invalid byte is.
pub fn text<'a>(origin: &str, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let prefix = bytes.get(..offset).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("");
        let (line, column) = line_col(prefix, prefix.len());
        LoadError { origin: origin.to_string(), kind: LoadErrorKind::NotText { offset, line, column } }
    })
}

/// Load a policy document: `bytes` must be UTF-8 JSON that validates. `origin`
/// names the document in the error lines.
pub fn load(origin: &str, bytes: &[u8]) -> Result<CompiledPolicy, LoadError> {
    validate(origin, bytes).map(CompiledPolicy::new)
}

/// [`load`], taking the document: its bytes are freed once the policy is
/// validated, before the index is built. A Wasm VM keeps its peak memory for
/// life, and a large policy's text is megabytes that the index then reuses
/// instead of growing the VM by as much again.
pub fn load_owned(origin: &str, bytes: Vec<u8>) -> Result<CompiledPolicy, LoadError> {
    let policy = validate(origin, &bytes)?;
    drop(bytes);
    Ok(CompiledPolicy::new(policy))
}

fn validate(origin: &str, bytes: &[u8]) -> Result<Policy, LoadError> {
    let src = text(origin, bytes)?;
    Policy::from_json(src).map_err(|errors| LoadError { origin: origin.to_string(), kind: LoadErrorKind::Invalid(errors) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_text_is_placed_at_the_first_invalid_byte() {
        let err = load("p.json", b"{\n  \"\xc3\xa9\": \xff}").unwrap_err();
        assert!(err.is_not_text());
        assert_eq!(err.kind, LoadErrorKind::NotText { offset: 10, line: 2, column: 8 });
        assert_eq!(err.to_string(), "p.json:2:8: policy is not UTF-8 text");
    }

    #[test]
    fn every_error_is_one_line_with_the_origin() {
        let err = load("p.json", br#"{"version": 2, "default_action": "maybe", "rules": []}"#).unwrap_err();
        assert!(!err.is_not_text());
        let lines = err.lines();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.starts_with("p.json:1:")), "{lines:?}");
        assert_eq!(err.to_string(), lines.join("\n"));
    }

    #[test]
    fn a_valid_policy_loads() {
        let p = load("p.json", br#"{"version": 1, "default_action": "deny", "rules": []}"#).unwrap();
        assert_eq!(p.policy().rules.len(), 0);
    }

    #[test]
    fn loading_owned_bytes_gives_the_same_policy_and_the_same_errors() {
        let good = br#"{"version": 1, "default_action": "deny", "rules": [
            {"name": "b", "action": "allow", "principals": [{"cn": "x"}], "paths": ["/b/**"]},
            {"name": "a", "action": "deny", "principals": [{"any": true}], "paths": ["/a"], "methods": ["GET"]}]}"#;
        let (owned, borrowed) = (load_owned("p.json", good.to_vec()).unwrap(), load("p.json", good).unwrap());
        assert_eq!(owned.policy(), borrowed.policy());
        for bad in [&b"{\"version\": 2}"[..], b"\xff"] {
            assert_eq!(load_owned("p.json", bad.to_vec()).unwrap_err(), load("p.json", bad).unwrap_err());
        }
    }
}
