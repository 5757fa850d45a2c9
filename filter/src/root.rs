//! Loading the policy from the plugin configuration.
//!
//! The plugin `configuration` *is* the policy document. Envoy calls
//! `on_configure` on the main thread and on every worker, each with its own VM,
//! and again when the configuration changes (ECDS). Returning `false` makes
//! Envoy refuse the configuration: at start-up it does not start, on an update
//! it keeps the previous one. So a policy that does not compile is logged
//! line by line and refused, and the VM keeps judging with the last good
//! policy: a broken update never replaces a working one.

use std::rc::Rc;

use mtls_authz_policy::load::load_owned;
use mtls_authz_policy::{CompiledPolicy, LoadError, LoadErrorKind, Mode};

use crate::host::{Host, Level, Metric};
use mtls_authz_policy::escape;

/// Where errors in the policy are said to come from.
const ORIGIN: &str = "plugin configuration";

/// The prefix of every line about a refused policy; tests and operators grep for it.
pub const REJECTED_PREFIX: &str = "mtls-authz: policy rejected: ";

/// The current policy of one root context.
#[derive(Debug, Default)]
pub struct PolicyHolder {
    current: Option<Rc<CompiledPolicy>>,
    /// SHA-256 of the configuration `current` was compiled from, so a repeated
    /// `on_configure` with the same bytes is a cheap no-op. A hash, not the
    /// bytes: a 10,000-rule policy is megabytes, held once per VM otherwise.
    source: Option<[u8; 32]>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

impl PolicyHolder {
    /// An empty holder: requests are refused until a policy is loaded.
    pub fn new() -> PolicyHolder {
        PolicyHolder::default()
    }

    /// The policy for a new request. Each HTTP context keeps this `Rc`, so a
    /// request is judged wholly by the policy that was current when it began.
    pub fn snapshot(&self) -> Option<Rc<CompiledPolicy>> {
        self.current.clone()
    }

    /// Load `configuration` (the plugin configuration bytes, `None` when
    /// Envoy has none). Returns what `on_configure` must return: `true` when a
    /// policy is in force afterwards *and* it is the one just given. The
    /// bytes are taken so that the load can free them before it builds the
    /// index ([`load_owned`]).
    pub fn configure<H: Host>(&mut self, host: &H, configuration: Option<Vec<u8>>) -> bool {
        let bytes = configuration.unwrap_or_default();
        let hash = sha256(&bytes);
        if self.current.is_some() && self.source == Some(hash) {
            return true;
        }
        if std::str::from_utf8(&bytes).is_ok_and(|text| text.trim().is_empty()) {
            return self.reject(
                host,
                &[&format!(
                    "{ORIGIN}: the configuration is empty; put the policy JSON in the Wasm filter's `configuration` (a google.protobuf.StringValue)"
                )],
            );
        }
        let started = host.now_ns().ok();
        match load_owned(ORIGIN, bytes) {
            Ok(policy) => {
                // How long the load took and what the VM holds after it: a
                // large policy's cost, in the log of every VM that loads it.
                let took = started
                    .zip(host.now_ns().ok())
                    .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.1} ms", b.saturating_sub(a) as f64 / 1e6));
                let memory = host.vm_memory_bytes().map_or_else(|| "-".to_owned(), |m| format!("{:.1} MiB", m as f64 / 1048576.0));
                let mode = match policy.mode() {
                    Mode::Enforce => "enforce",
                    Mode::DryRun => "dry_run",
                };
                host.log(
                    Level::Info,
                    &format!(
                        "mtls-authz: policy loaded: {} rules{}, mode={mode}, revision={}, load_time={took}, vm_memory={memory}",
                        policy.policy().rules.len(),
                        match policy.policy().connection_rules.len() {
                            0 => String::new(),
                            n => format!(", {n} connection rules"),
                        },
                        policy.revision().unwrap_or("-"),
                    ),
                );
                self.current = Some(Rc::new(policy));
                self.source = Some(hash);
                true
            }
            // Said of the Envoy configuration, like an empty one, so the
            // operator looks at the filter's `configuration` field.
            Err(LoadError { kind: LoadErrorKind::NotText { offset, .. }, .. }) => {
                self.reject(host, &[&format!("{ORIGIN}: the configuration is not UTF-8 text (invalid byte at offset {offset})")])
            }
            Err(e) => {
                let lines = e.lines();
                self.reject(host, &lines.iter().map(String::as_str).collect::<Vec<_>>())
            }
        }
    }

    fn reject<H: Host>(&mut self, host: &H, lines: &[&str]) -> bool {
        host.increment(Metric::PolicyRejected);
        for line in lines {
            host.log(Level::Error, &format!("{REJECTED_PREFIX}{}", escape::log_text(line)));
        }
        if self.current.is_some() {
            host.log(Level::Error, &format!("{REJECTED_PREFIX}keeping the previously loaded policy"));
        }
        false
    }
}
