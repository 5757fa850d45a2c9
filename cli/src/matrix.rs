//! `mtls-authz matrix` and `mtls-authz diff`: who can reach what under a
//! policy, and which of those answers a policy change flips.
//!
//! The table is the engine's ([`mtls_authz_policy::matrix`]), the same one the
//! browser playground draws, so a reviewer's terminal and browser agree cell
//! for cell. `diff` exits 1 when any cell flips, so CI can ask for a review of
//! every pull request that changes who may reach what.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mtls_authz_policy::matrix::{rows_of, Diff, Endpoint, Extra, Flip, IdentityKind, Matrix, MatrixIdentity};
use mtls_authz_policy::Verdict;

use crate::console::Console;
use crate::identity_input::{load_cert_file, load_fields_file};
use crate::input::{load_policy, InputError};
use crate::output::to_json_line;
use crate::Exit;

/// How `matrix` and `diff` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    /// Aligned text, one line per identity and endpoint, one column per method.
    Table,
    /// One JSON object: identities, endpoints, methods, cells (diff: flips and both matrices).
    Json,
    /// A cases.json document with every cell, for `mtls-authz test` (matrix only).
    Cases,
}

/// What both commands add to the axes the policies bring.
#[derive(Debug, Args)]
pub struct ExtraArgs {
    /// Add a row for this client certificate (PEM or DER); repeatable.
    #[arg(long = "cert", value_name = "CLIENT.pem")]
    certs: Vec<PathBuf>,
    /// Add a row for these identity fields (the test-case "identity" format); repeatable.
    #[arg(long = "identity", value_name = "FIELDS.json")]
    identities: Vec<PathBuf>,
    /// Add a column: a request target (`/health?x=1`) or a pattern (`/users/{cn}/**`); repeatable.
    #[arg(long = "endpoint", value_name = "PATH", allow_hyphen_values = true)]
    endpoints: Vec<String>,
    /// Only these methods (repeatable), instead of GET and every method the policy names.
    #[arg(long = "method", value_name = "METHOD")]
    methods: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MatrixFormat::Table)]
    format: MatrixFormat,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The policy whose matrix to print.
    #[arg(value_name = "POLICY.json")]
    policy: PathBuf,
    #[command(flatten)]
    extra: ExtraArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The policy as it is.
    #[arg(value_name = "OLD.json")]
    old: PathBuf,
    /// The policy as proposed.
    #[arg(value_name = "NEW.json")]
    new: PathBuf,
    #[command(flatten)]
    extra: ExtraArgs,
}

fn load_extra(args: &ExtraArgs) -> Result<Extra, InputError> {
    let mut identities = Vec::new();
    for path in &args.certs {
        identities.push(MatrixIdentity::user(IdentityKind::Certificate, load_cert_file(path)?.identity));
    }
    for path in &args.identities {
        identities.push(MatrixIdentity::user(IdentityKind::Fields, load_fields_file(path)?.identity));
    }
    let endpoints = args.endpoints.iter().map(|e| Endpoint::parse(e).map_err(InputError)).collect::<Result<Vec<_>, _>>()?;
    let methods = (!args.methods.is_empty()).then(|| args.methods.clone());
    Ok(Extra { identities, endpoints, methods })
}

/// `mtls-authz matrix`: exit 0 with the table, 2 for unusable input.
pub fn run_matrix(args: &MatrixArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    let policy = load_policy(&args.policy)?;
    let extra = load_extra(&args.extra)?;
    let axes = mtls_authz_policy::matrix::Axes::for_policies(&[policy.policy()], &extra);
    let matrix = Matrix::compute(&policy, &axes);
    match args.extra.format {
        MatrixFormat::Json => console.out(&to_json_line(&matrix)),
        MatrixFormat::Cases => console.out(&to_json_line(&matrix.cases(None))),
        MatrixFormat::Table => print_table(&matrix, console),
    }
    Ok(Exit::Ok)
}

/// `mtls-authz diff`: exit 0 when no cell flips, 1 when some do, 2 for unusable input.
pub fn run_diff(args: &DiffArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    let (old, new) = (load_policy(&args.old)?, load_policy(&args.new)?);
    let extra = load_extra(&args.extra)?;
    let diff = Diff::compute(&old, &new, &extra);
    match args.extra.format {
        MatrixFormat::Cases => {
            return Err(InputError("diff has no cases format; export the new matrix with `matrix --format cases`".into()))
        }
        MatrixFormat::Json => console.out(&to_json_line(&diff)),
        MatrixFormat::Table => {
            let all = || diff.flips.iter().chain(&diff.rule_changes);
            let who = all().map(|f| f.identity.len()).max().unwrap_or(0);
            let path = all().map(|f| f.path.len()).max().unwrap_or(0);
            let line = |f: &Flip, note: &str| {
                let (old, new) = (verdict_by(f.old, f.old_rule.as_deref()), verdict_by(f.new, f.new_rule.as_deref()));
                format!("{:<who$}  {:<7} {:<path$}  {old} -> {new}{note}", f.identity, f.method, f.path)
            };
            for f in &diff.flips {
                console.out(&line(f, ""));
            }
            // After the flips, so a script reading the first lines gets those.
            for f in &diff.rule_changes {
                console.out(&line(f, "  (same decision, another rule)"));
            }
            let total = diff.new.cells.len();
            let flips = diff.flips.len();
            let mut summary = format!("{flips} of {total} cells flip{}", if flips == 1 { "s" } else { "" });
            if !diff.rule_changes.is_empty() {
                summary.push_str(&format!("; {} keep their decision, from another rule", diff.rule_changes.len()));
            }
            console.out(&summary);
        }
    }
    Ok(if diff.flips.is_empty() { Exit::Ok } else { Exit::Failed })
}

/// `allow (rule)` or `deny (default)`.
fn verdict_by(verdict: Verdict, rule: Option<&str>) -> String {
    format!("{} ({})", verdict.as_str(), rule.unwrap_or("default"))
}

/// One line per identity and endpoint; each method's column says allow or
/// deny (in words, so it reads without colour) and which rule decided.
fn print_table(matrix: &Matrix, console: &mut Console<'_>) {
    let rows = rows_of(matrix);
    let cell_text = |verdict: Verdict, rule: Option<&str>| format!("{}:{}", verdict.as_str(), rule.unwrap_or("default"));
    let label = |i: usize| matrix.identities.get(i).map_or("", |r| r.label.as_str());
    let who = rows.keys().map(|(i, _)| label(*i).len()).chain([8]).max().unwrap_or(8);
    let path = rows.values().filter_map(|cells| cells.first()).map(|c| c.path.len()).chain([4]).max().unwrap_or(4);
    let mut widths: Vec<usize> = matrix.methods.iter().map(String::len).collect();
    for cells in rows.values() {
        for c in cells {
            if let Some(w) = widths.get_mut(c.method) {
                *w = (*w).max(cell_text(c.verdict, c.rule.as_deref()).len());
            }
        }
    }
    let mut head = format!("{:<who$}  {:<path$}", "identity", "path");
    for (m, w) in matrix.methods.iter().zip(&widths) {
        head.push_str(&format!("  {m:<w$}"));
    }
    console.out(head.trim_end());
    for ((i, _), cells) in &rows {
        let Some(first) = cells.first() else { continue };
        let mut line = format!("{:<who$}  {:<path$}", label(*i), first.path);
        for (c, w) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {:<w$}", cell_text(c.verdict, c.rule.as_deref())));
        }
        console.out(line.trim_end());
    }
    let allowed = matrix.cells.iter().filter(|c| c.verdict == Verdict::Allow).count();
    console.out(&format!(
        "{} identities x {} endpoints x {} methods: {allowed} of {} cells allow",
        matrix.identities.len(),
        matrix.endpoints.len(),
        matrix.methods.len(),
        matrix.cells.len()
    ));
}
