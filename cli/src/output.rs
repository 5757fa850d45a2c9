//! Shared presentation: output formats and small text helpers. How an
//! identity is shown is the engine's [`mtls_authz_policy::view`], which the
//! doctor prints too.

use clap::ValueEnum;
use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// One JSON object on one line, for scripts.
    Json,
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
