//! Reading the files a command is given, and saying clearly why one is unusable.
//!
//! Every command distinguishes "your inputs are broken" (exit 2, this module's
//! [`InputError`]) from "your inputs are fine and the answer is no" (exit 1: an
//! invalid policy under `check`, a failing case under `test`). Scripts and CI
//! depend on that difference, so it is decided in one place.

use std::fmt;
use std::io;
use std::path::Path;

use mtls_authz_policy::json::line_col;
use mtls_authz_policy::load;
use mtls_authz_policy::{CompiledPolicy, LoadError, LoadErrorKind};

/// Inputs that cannot be used: a missing file, a certificate that is not one,
/// a policy that does not validate (outside `check`), a malformed cases file.
///
/// The message may span several lines, each already in the form it should be
/// printed in (`FILE:LINE:COL: PATH: message` where a position is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a file could not be read, in words rather than `os error 2`.
fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory, not a file".into(),
        io::ErrorKind::InvalidData => "is not UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// The bytes of `path`; `what` names the file's role for the message ("certificate").
pub fn read_bytes(path: &Path, what: &str) -> Result<Vec<u8>, InputError> {
    if path.is_dir() {
        return Err(InputError(format!("cannot read {what} '{}': is a directory, not a file", path.display())));
    }
    std::fs::read(path).map_err(|e| InputError(format!("cannot read {what} '{}': {}", path.display(), describe_io(&e))))
}

/// The text of `path`, which must be UTF-8 (JSON is).
pub fn read_text(path: &Path, what: &str) -> Result<String, InputError> {
    let bytes = read_bytes(path, what)?;
    let origin = path.display().to_string();
    match load::text(&origin, &bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(LoadError { kind: LoadErrorKind::NotText { line, column, .. }, .. }) => {
            Err(InputError(format!("{origin}:{line}:{column}: {what} is not UTF-8 text")))
        }
        Err(e) => Err(InputError(e.to_string())),
    }
}

/// Read and load a policy for `explain` and `test`, where an invalid policy
/// is an input error. Its message is the engine's own error list, one
/// `FILE:LINE:COL: PATH: message` per line, as `check` would print it.
pub fn load_policy(path: &Path) -> Result<CompiledPolicy, InputError> {
    let bytes = read_bytes(path, "policy")?;
    load::load(&path.display().to_string(), &bytes).map_err(|e| InputError(e.to_string()))
}

/// Where in `src` a `serde_json` error points, as a byte offset.
///
/// serde_json reports a 1-based line and a byte column (the index just past
/// the byte it stopped at, 0 at the start of a line). The CLI re-derives line
/// and *character* column from the offset so its positions agree with the
/// policy engine's, which counts characters.
pub fn json_error_offset(src: &str, e: &serde_json::Error) -> usize {
    let mut line_start = 0usize;
    for _ in 1..e.line().max(1) {
        match src.get(line_start..).and_then(|rest| rest.find('\n')) {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    (line_start + e.column().saturating_sub(1)).min(src.len())
}

/// A serde_json error message without its trailing " at line L column C"
/// (the CLI prints the position in front, editor-style).
pub fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

/// `FILE:LINE:COL: ` for a byte offset in `src`, with a character column.
pub fn position(file: &Path, src: &str, offset: usize) -> String {
    let (line, col) = line_col(src, offset.min(src.len()));
    format!("{}:{line}:{col}", file.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_placed_by_character_column() {
        let src = "{\n  \"é\": 1,\n  \"ké\": [1 2]\n}";
        let e = serde_json::from_str::<serde_json::Value>(src).unwrap_err();
        let at = position(Path::new("f.json"), src, json_error_offset(src, &e));
        assert_eq!(at, "f.json:3:12", "column counts characters, not bytes");
        assert!(!json_error_message(&e).contains(" at line "));
    }

    #[test]
    fn missing_files_say_so_plainly() {
        let err = read_text(Path::new("/nonexistent/mtls-authz/policy.json"), "policy").unwrap_err();
        assert_eq!(err.0, "cannot read policy '/nonexistent/mtls-authz/policy.json': no such file");
    }
}
