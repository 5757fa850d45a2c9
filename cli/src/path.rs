//! `mtls-authz path`: how the engine reads request paths under a policy's
//! `path_reading`: the segments the backend receives, the names the rules
//! meet (and the other names a backend may resolve), or why the path has no
//! single reading and which option would give it one. Targets come from the command line, or one per line from stdin.

use std::io::BufRead;
use std::path::PathBuf;

use mtls_authz_policy::reading::PathReport;
use mtls_authz_policy::{PathReading, Policy};

use crate::console::Console;
use crate::input::{load_policy, InputError};
use crate::output::{quoted, to_json_line, Format};
use crate::Exit;

/// One `path` invocation.
#[derive(Debug, Clone)]
pub struct Request {
    pub policy: Option<PathBuf>,
    /// A `path_reading` object as JSON text.
    pub reading: Option<String>,
    /// Targets; empty means read stdin.
    pub targets: Vec<String>,
    pub format: Format,
}

/// The reading a `--reading` object describes, validated by the engine as
/// part of a policy, so its errors are the policy's own.
fn reading_from_json(text: &str) -> Result<PathReading, InputError> {
    let document = format!("{{\"version\": 1, \"default_action\": \"deny\", \"rules\": [], \"path_reading\":\n{text}\n}}");
    Policy::from_json(&document).map(|p| p.path_reading).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("--reading: {}: {}", e.path, e.message)).collect();
        InputError(lines.join("\n"))
    })
}

fn reading(req: &Request) -> Result<PathReading, InputError> {
    match (&req.policy, &req.reading) {
        (Some(_), Some(_)) => Err(InputError("give --policy or --reading, not both".into())),
        (Some(file), None) => Ok(load_policy(file)?.policy().path_reading),
        (None, Some(text)) => reading_from_json(text),
        (None, None) => Ok(PathReading::default()),
    }
}

/// Print each target's reading; exit 1 when any was refused.
pub fn run(req: &Request, console: &mut Console<'_>) -> Result<Exit, InputError> {
    let reading = reading(req)?;
    let mut refused = false;
    let mut show = |target: &str, console: &mut Console<'_>| {
        let report = PathReport::new(target, &reading);
        refused |= !report.accepted;
        match req.format {
            Format::Json => console.out(&to_json_line(&report)),
            Format::Text => console.out(&text_line(&report)),
        }
    };
    if req.targets.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| InputError(format!("cannot read targets from stdin: {e}")))?;
            show(line.strip_suffix('\r').unwrap_or(&line), console);
        }
    } else {
        for target in &req.targets {
            show(target, console);
        }
    }
    Ok(if refused { Exit::Failed } else { Exit::Ok })
}

fn text_line(r: &PathReport) -> String {
    match (&r.path, &r.refusal) {
        (Some(path), _) => {
            let mut line = format!("{}: accepted, matched as {path}", quoted(&r.target));
            if let Some(decoded) = &r.decoded {
                let shown: Vec<String> = decoded.iter().map(|s| quoted(s)).collect();
                line.push_str(&format!("; the backend receives [{}]", shown.join(", ")));
            }
            for other in &r.alternatives {
                line.push_str(&format!("; must be allowed as /{} too", other.join("/")));
            }
            for other in &r.deny_readings {
                line.push_str(&format!("; deny rules also meet /{}", other.join("/")));
            }
            line
        }
        (None, Some(why)) => {
            let mut line = format!("{}: refused: {} [{}]", quoted(&r.target), why.message, why.code);
            if let Some(option) = why.accepted_by {
                line.push_str(&format!("; accepted with {option}"));
            }
            line
        }
        (None, None) => format!("{}: refused", quoted(&r.target)),
    }
}
