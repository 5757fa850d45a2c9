//! `mtls-authz check`: is this policy valid, and if not, where exactly?
//!
//! Meant for CI and editors: one `FILE:LINE:COL: JSONPATH: message` line per
//! problem, the same text Envoy logs when it refuses the policy, so a broken
//! policy is caught before it reaches a proxy. Every file is checked even
//! after a bad one, so one run reports everything.

use std::path::PathBuf;

use mtls_authz_policy::load::load;

use crate::console::Console;
use crate::input::read_bytes;
use crate::Exit;

/// Check each file; the exit status is the worst outcome seen.
pub fn run(files: &[PathBuf], console: &mut Console<'_>) -> Exit {
    let mut worst = Exit::Ok;
    for file in files {
        let name = file.display().to_string();
        let bytes = match read_bytes(file, "policy") {
            Ok(bytes) => bytes,
            Err(e) => {
                console.err(&format!("mtls-authz: {e}"));
                worst = worst.max(Exit::BadInput);
                continue;
            }
        };
        match load(&name, &bytes) {
            Ok(policy) => console.out(&format!("{name}: ok ({} rules)", policy.policy().rules.len())),
            Err(e) if e.is_not_text() => {
                console.err(&format!("mtls-authz: {e}"));
                worst = worst.max(Exit::BadInput);
            }
            Err(e) => {
                console.err(&e.to_string());
                worst = worst.max(Exit::Failed);
            }
        }
    }
    worst
}
