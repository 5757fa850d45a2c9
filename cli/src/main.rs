//! `mtls-authz`: check, explain, test and publish mtls-authz policies, and
//! diagnose mTLS connections, offline.
//!
//! The CLI is a thin shell around the policy engine the Envoy filter runs, so
//! whatever it says about a policy is what the proxy will do. The commands:
//!
//! * `check`: is a policy valid? Errors as `FILE:LINE:COL: JSONPATH: message`.
//!   With `--envoy-config`, also: do Envoy's routes send the backend paths the
//!   policy did not judge (string prefixes, rewrites)?
//! * `explain`: for one certificate and request, the decision, the rule, the
//!   reason and every identity field read from the certificate.
//! * `test`: run a policy against a file of expected decisions, for CI.
//! * `doctor`: why does an mTLS connection fail? Certificate, key, chain,
//!   usage, CRL, policy and (with `--connect`) a live handshake, in words.
//! * `matrix`, `diff`: who can reach what under a policy, and which of those
//!   answers a change flips (exit 1 when any does).
//! * `playground`: the same in a browser, served from this binary.
//! * `publish`, `watch`: validate a policy and write it as the ECDS resource
//!   file a running Envoy reloads (atomically); `watch` does it on every change.
//!
//! Exit status everywhere: 0 success, 1 a negative answer (invalid policy,
//! failing cases), 2 unusable input. Nothing here panics on bad input: the
//! workspace denies `unwrap`, `expect` and `panic` outside tests.

mod cases;
mod check;
mod console;
mod doctor;
mod envoy_lint;
mod explain;
mod explain_connection;
mod identity_input;
mod input;
mod matrix;
mod output;
mod path;
mod playground;
mod publish;
mod resource_pb;
mod runner;
mod watch;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::console::Console;
use crate::explain::CallerSource;
use crate::output::Format;

/// Exit status, ordered so that the worst of several outcomes is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything valid, every case passed, or a decision was explained.
    Ok = 0,
    /// The inputs were usable and the answer is "no": an invalid policy (check), a failing case (test).
    Failed = 1,
    /// An input could not be used: missing file, unreadable certificate, malformed JSON.
    BadInput = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "mtls-authz",
    version,
    about = "Check, explain and test mtls-authz policies offline, with the engine the Envoy filter runs.",
    after_help = "Exit status: 0 success, 1 invalid policy, Envoy route warnings or failing cases, 2 unusable input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate policy files; print "FILE: ok (N rules)" or one "FILE:LINE:COL: JSONPATH: message" per error.
    ///
    /// With --envoy-config, also read every inline route_config of an Envoy
    /// configuration (YAML or JSON; routes from RDS are not in the file and are
    /// not checked) and say where Envoy and the policy read a request's path
    /// differently, as "FILE:LINE:COL: PATH: warning: message": a `prefix` match
    /// is a string prefix (`/api/payment/admin` also takes
    /// `/api/payment/adminusers`, which the policy reads as another segment; use
    /// `path_separated_prefix`), and a path rewrite on such a route hands the
    /// backend a path the policy never judged (`/users`). Lines marked "note:"
    /// (a rewrite that keeps segments whole: write the policy for the paths
    /// clients send) do not change the exit status. A configuration with no
    /// warning prints "FILE: ok (N routes)".
    ///
    /// Exit status: 0 all valid and no warning, 1 some policy invalid or some
    /// Envoy warning (so CI can gate on it), 2 some file could not be read or is
    /// not YAML/JSON.
    Check {
        /// Policy files to validate.
        #[arg(required = true, value_name = "POLICY.json")]
        policies: Vec<PathBuf>,
        /// An Envoy configuration (bootstrap, YAML or JSON) whose routes to lint against the policies; repeatable.
        #[arg(long = "envoy-config", value_name = "FILE")]
        envoy_configs: Vec<PathBuf>,
    },
    /// Show what the policy decides for one certificate and request, and why.
    ///
    /// Prints the decision, what the proxy enforces (dry run turns a deny into
    /// an allow), the deciding rule, the reason, and every identity field read
    /// from the certificate. Exit status 0 whatever the decision; 2 for
    /// unusable input (missing file, not a certificate, invalid policy).
    Explain(ExplainArgs),
    /// Run a policy against a file of test cases; exit 1 if any case fails.
    #[command(after_long_help = cases::FORMAT_HELP)]
    Test(TestArgs),
    /// Say in plain words why an mTLS connection fails, and how to fix it.
    ///
    /// Checks, in handshake order: files parse, key matches certificate,
    /// validity, chain to --ca, client-auth usage, revocation (--crl), the
    /// identity the filter sees and the --policy decision, and with --connect
    /// a real TLS handshake. Exit status: 0 nothing failed (warnings allowed),
    /// 1 a check failed, 2 unusable command line or unreadable file.
    Doctor(doctor::DoctorArgs),
    /// Validate a policy and write it as the ECDS resource file Envoy reloads from.
    ///
    /// Refuses an invalid policy with the lines `check` prints and leaves the
    /// file alone; otherwise replaces it atomically (temporary file, then
    /// rename in the same directory), which makes Envoy reload the filter's
    /// configuration. Exit status: 0 published (or already current), 1 invalid
    /// policy, 2 unusable input (unreadable policy, missing --out directory).
    Publish(publish::PublishArgs),
    /// Show how paths read under a policy's path_reading, or why they are refused.
    ///
    /// For each target (arguments, or one per line on stdin): the segments a
    /// backend that decodes once receives, the names the rules are matched
    /// against, other readings a deny rule also meets; or the refusal, with
    /// the option that would accept the path and what it assumes. Without
    /// --policy or --reading, the strict reading. Exit status: 0 all
    /// accepted, 1 some refused, 2 unusable input.
    Path(PathArgs),
    /// Publish a policy, then again on every change to it, until stopped.
    ///
    /// Polls the file; an invalid version is refused and logged with the
    /// lines `check` prints, and the last good policy stays published.
    Watch(watch::WatchArgs),
    /// Print who can reach what: every identity x endpoint x method and the rule that decides it.
    ///
    /// Rows: each --cert and --identity, then a certificate satisfying each
    /// principal of the policy. Columns: each --endpoint, then each path
    /// pattern of the policy (tried for each identity: `*` and `**` as `x`,
    /// `{cn}` and the other placeholders as the identity's own value). Methods:
    /// GET and every method a rule names. Exit status: 0, or 2 for unusable input.
    Matrix(matrix::MatrixArgs),
    /// Print the matrix cells a policy change flips (allow <-> deny); exit 1 when any does.
    ///
    /// Both policies are decided over the same axes: the union of what either
    /// brings, plus --cert, --identity and --endpoint. Exit status: 0 no cell
    /// flips, 1 some cell flips (so CI can ask for a review), 2 unusable input.
    Diff(matrix::DiffArgs),
    /// Open the policy playground: serve the page built into this binary on 127.0.0.1.
    ///
    /// Prints the address, then serves until stopped. The page runs the
    /// engine in the browser (WebAssembly); nothing is sent to the server.
    Playground(playground::PlaygroundArgs),
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// The policy to evaluate.
    #[arg(long, value_name = "POLICY.json")]
    policy: PathBuf,
    #[command(flatten)]
    caller: CallerArgs,
    /// The request method, sent to the engine as given (it refuses non-upper-case methods, as Envoy would).
    #[arg(long, default_value = "GET")]
    method: String,
    /// The request :path as received, query and percent-escapes included.
    #[arg(long, value_name = "PATH", allow_hyphen_values = true, required_unless_present = "connection")]
    path: Option<String>,
    /// Explain a connection to an L4 (network filter) listener instead of a
    /// request: judged by the policy's connection_rules, with no method or path.
    #[arg(long, conflicts_with_all = ["path", "headers", "body", "body_file"])]
    connection: bool,
    /// Another request header, as the client sends it (repeatable), e.g.
    /// `--header 'X-HTTP-Method-Override: DELETE'` or `--header 'Content-Type: application/json'`.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The request body, as text. Without --body or --body-file the request ends with its headers.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file", allow_hyphen_values = true)]
    body: Option<String>,
    /// The request body, from a file.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Output format; json prints one object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Exactly one way to say who the caller is.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct CallerArgs {
    /// The client certificate, PEM or DER (the leaf first, as Envoy sees it).
    #[arg(long, value_name = "CLIENT.pem")]
    cert: Option<PathBuf>,
    /// The caller's identity fields as JSON (the test-case "identity" format).
    #[arg(long, value_name = "FIELDS.json")]
    identity: Option<PathBuf>,
    /// No client certificate on the connection.
    #[arg(long)]
    no_cert: bool,
}

#[derive(Debug, Args)]
struct PathArgs {
    /// Read paths under this policy's path_reading.
    #[arg(long, value_name = "POLICY.json", conflicts_with = "reading")]
    policy: Option<PathBuf>,
    /// A path_reading object, e.g. '{"trailing_slash": "same_as_without"}'.
    #[arg(long, value_name = "JSON")]
    reading: Option<String>,
    /// Request targets (`:path`, query included); none reads one per line from stdin.
    #[arg(value_name = "TARGET", allow_hyphen_values = true)]
    targets: Vec<String>,
    /// Output format; json prints one object per target, one per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// The policy under test.
    #[arg(value_name = "POLICY.json")]
    policy: PathBuf,
    /// The test cases (format below with --help).
    #[arg(value_name = "CASES.json")]
    cases: PathBuf,
    /// Output format; json prints one object with every result (no closing line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also list passing cases.
    #[arg(short, long)]
    verbose: bool,
    /// A generated PKI (examples/pki.py): a case with both "cert" and
    /// "identity" runs on DIR/<cert>.crt, whose fields must be the written ones.
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
}

/// `NAME: VALUE` (the value may be empty), as on the wire.
fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected 'NAME: VALUE', found {text:?}")),
    }
}

fn caller_source(c: CallerArgs) -> CallerSource {
    match (c.cert, c.identity) {
        (Some(cert), _) => CallerSource::Cert(cert),
        (None, Some(fields)) => CallerSource::Fields(fields),
        (None, None) => CallerSource::NoCert,
    }
}

fn main() -> ExitCode {
    // clap prints its own usage errors and exits 2, which is "unusable input" here too.
    let cli = Cli::parse();
    let (mut stdout, mut stderr) = (io::BufWriter::new(io::stdout().lock()), io::stderr().lock());
    let mut console = Console::new(&mut stdout, &mut stderr);
    let exit = dispatch(cli.command, &mut console);
    console.flush();
    let _ = stdout.flush();
    exit.into()
}

fn dispatch(command: Command, console: &mut Console<'_>) -> Exit {
    let result = match command {
        Command::Check { policies, envoy_configs } => return check::run(&policies, &envoy_configs, console),
        Command::Explain(args) if args.connection => {
            explain_connection::run(&args.policy, &caller_source(args.caller), args.format, console).map(|()| Exit::Ok)
        }
        Command::Explain(args) => {
            let body = match (args.body, args.body_file) {
                (Some(text), _) => Ok(Some(text.into_bytes())),
                (None, Some(file)) => input::read_bytes(&file, "request body").map(Some),
                (None, None) => Ok(None),
            };
            body.and_then(|body| {
                let request = explain::Request {
                    policy: args.policy,
                    caller: caller_source(args.caller),
                    method: args.method,
                    path: args.path.unwrap_or_default(),
                    headers: args.headers,
                    body,
                    format: args.format,
                };
                explain::run(&request, console).map(|()| Exit::Ok)
            })
        }
        Command::Test(args) => runner::run(&args.policy, &args.cases, args.certs.as_deref(), args.format, args.verbose, console),
        Command::Doctor(args) => doctor::run(&args, console),
        Command::Path(args) => {
            let request = path::Request { policy: args.policy, reading: args.reading, targets: args.targets, format: args.format };
            path::run(&request, console)
        }
        Command::Publish(args) => publish::run(&args, console),
        Command::Watch(args) => watch::run(&args, console),
        Command::Matrix(args) => matrix::run_matrix(&args, console),
        Command::Diff(args) => matrix::run_diff(&args, console),
        Command::Playground(args) => playground::run(&args, console),
    };
    result.unwrap_or_else(|e| {
        report_input_error(&e.0, console);
        Exit::BadInput
    })
}

/// Positioned lines (`FILE:LINE:COL: ...`) go out as they are, for editors;
/// a bare message gets the program name in front, like other Unix tools.
pub(crate) fn report_input_error(message: &str, console: &mut Console<'_>) {
    for line in message.lines() {
        if looks_positioned(line) {
            console.err(line);
        } else {
            console.err(&format!("mtls-authz: {line}"));
        }
    }
}

/// `something:LINE:COL:` at the start of the line.
fn looks_positioned(line: &str) -> bool {
    let mut parts = line.splitn(4, ':');
    let (_, l, c) = (parts.next(), parts.next(), parts.next());
    let digits = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    digits(l) && digits(c) && parts.next().is_some()
}
