//! Policy errors that point at the source: line, column and JSON path.

use std::fmt;

/// One thing wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    /// 1-based line of the offending value (or of the syntax error).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// JSON path of the offending value, e.g. `rules[2].paths[0]`; empty for the document itself.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for PolicyError {
    /// `LINE:COL: PATH: message` — prefix a file name to get the `FILE:LINE:COL:` form editors jump to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.line, self.column, self.path, self.message)
        }
    }
}

/// Every error found in a policy document, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    /// One line per error, each prefixed with `origin:` (a file name, or
    /// "plugin configuration" inside Envoy).
    pub fn render(&self, origin: &str) -> String {
        let mut out = String::new();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(origin);
            out.push(':');
            out.push_str(&e.to_string());
        }
        out
    }

    /// The errors, in source order.
    pub fn iter(&self) -> impl Iterator<Item = &PolicyError> {
        self.0.iter()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("policy"))
    }
}

impl std::error::Error for PolicyErrors {}
