//! What the filter needs from the proxy, as a trait.
//!
//! The decision logic ([`crate::root`], [`crate::http`]) only ever talks to a
//! [`Host`], so `cargo test` runs it natively against a mock, and the
//! proxy-wasm adapter ([`crate::wasm`]) is a thin translation of these calls
//! into hostcalls. Every fallible call returns a `Result`: the adapter never
//! uses the SDK's unwrapping helpers, and the logic turns any host failure
//! into a fail-closed 403.

use std::fmt;

use mtls_authz_policy::metrics::Count;

use crate::headers::HeaderMap;

/// A host call failed. Carries which call, for the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub &'static str);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host call {} failed", self.0)
    }
}

/// Log severity, mapped onto Envoy's levels by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The filter's counters. Every request increments exactly one of
/// `RequestsAllowed`, `RequestsDenied`, `RequestsDryRunDenied`, so the three
/// add up to the requests seen; `Errors` and `CertificatesParsed` count events
/// on the side, `PolicyRejected` counts refused configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    RequestsAllowed,
    RequestsDenied,
    RequestsDryRunDenied,
    Errors,
    CertificatesParsed,
    PolicyRejected,
    /// L4 mode ([`crate::network`]): every connection increments exactly one
    /// of these three, once, when it is decided.
    ConnectionsAllowed,
    ConnectionsDenied,
    ConnectionsDryRunDenied,
    /// Refused with 429 by a rate limit (also counted in `RequestsDenied`).
    RequestsRateLimited,
    /// Over a dry-run limit and let through (also counted in `RequestsAllowed`).
    RequestsRateLimitedDryRun,
    /// Refused with 429 because every slot a new key may use was busy.
    RateLimitTableFull,
    /// Counted under `identity="~other"`: past the policy's `max_identities`.
    IdentityMetricsOverflow,
}

impl Metric {
    /// Every metric, in [`Metric::index`] order (the adapter defines them in this order).
    pub const ALL: [Metric; 13] = [
        Metric::RequestsAllowed,
        Metric::RequestsDenied,
        Metric::RequestsDryRunDenied,
        Metric::Errors,
        Metric::CertificatesParsed,
        Metric::PolicyRejected,
        Metric::ConnectionsAllowed,
        Metric::ConnectionsDenied,
        Metric::ConnectionsDryRunDenied,
        Metric::RequestsRateLimited,
        Metric::RequestsRateLimitedDryRun,
        Metric::RateLimitTableFull,
        Metric::IdentityMetricsOverflow,
    ];

    /// The name given to `define_metric`. Envoy files custom Wasm metrics
    /// under `wasmcustom.`, so `/stats` shows e.g. `wasmcustom.mtls_authz.requests_allowed`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestsAllowed => "mtls_authz.requests_allowed",
            Metric::RequestsDenied => "mtls_authz.requests_denied",
            Metric::RequestsDryRunDenied => "mtls_authz.requests_dry_run_denied",
            Metric::Errors => "mtls_authz.errors",
            Metric::CertificatesParsed => "mtls_authz.certificates_parsed",
            Metric::PolicyRejected => "mtls_authz.policy_rejected",
            Metric::ConnectionsAllowed => "mtls_authz.connections_allowed",
            Metric::ConnectionsDenied => "mtls_authz.connections_denied",
            Metric::ConnectionsDryRunDenied => "mtls_authz.connections_dry_run_denied",
            Metric::RequestsRateLimited => "mtls_authz.requests_rate_limited",
            Metric::RequestsRateLimitedDryRun => "mtls_authz.requests_rate_limited_dry_run",
            Metric::RateLimitTableFull => "mtls_authz.rate_limit_table_full",
            Metric::IdentityMetricsOverflow => "mtls_authz.identity_metrics_overflow",
        }
    }

    /// Position in [`Metric::ALL`], for fixed-size id tables.
    pub fn index(self) -> usize {
        match self {
            Metric::RequestsAllowed => 0,
            Metric::RequestsDenied => 1,
            Metric::RequestsDryRunDenied => 2,
            Metric::Errors => 3,
            Metric::CertificatesParsed => 4,
            Metric::PolicyRejected => 5,
            Metric::ConnectionsAllowed => 6,
            Metric::ConnectionsDenied => 7,
            Metric::ConnectionsDryRunDenied => 8,
            Metric::RequestsRateLimited => 9,
            Metric::RequestsRateLimitedDryRun => 10,
            Metric::RateLimitTableFull => 11,
            Metric::IdentityMetricsOverflow => 12,
        }
    }
}

/// What Envoy puts before a custom Wasm metric's [`Metric::name`] in
/// `/stats` (`wasmcustom.mtls_authz.requests_allowed`). Envoy's choice, not
/// ours: named here so filter/constants.json can give the e2e suites and
/// bench the full names.
pub const ENVOY_STATS_PREFIX: &str = "wasmcustom.";

/// The proxy, as seen by the filter logic.
pub trait Host {
    /// A connection or request attribute (`["connection", "peer_certificate"]`).
    /// `Ok(None)` when the proxy does not have it.
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;

    /// Every request header and pseudo-header (`:method`, `:path`), in one
    /// call, as the serialized map the proxy returns (raw bytes: Envoy does not
    /// promise UTF-8). The map is checked as it is read ([`HeaderMap::pairs`]).
    fn request_headers(&self) -> Result<HeaderMap, HostError>;

    /// The first `len` bytes of the request body the proxy has buffered
    /// (after the filter paused the stream to read it). `Ok(None)` when there is none.
    fn request_body(&self, len: usize) -> Result<Option<Vec<u8>>, HostError>;

    /// Set a request header, replacing every existing copy (Envoy's
    /// `replaceHeaderMapValue` is `setCopy`: duplicates go too).
    fn replace_request_header(&self, name: &str, value: &str) -> Result<(), HostError>;

    /// Add a request header, keeping any copy already there (Envoy's
    /// `addHeaderMapValue`: no search for copies, so cheaper than a replace,
    /// and only right for a header the request is known not to have).
    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError>;

    /// Remove every copy of a request header.
    fn remove_request_header(&self, name: &str) -> Result<(), HostError>;

    /// The request trailers, serialized like [`Host::request_headers`]; read
    /// only from the trailers callback, and empty when there are none.
    fn request_trailers(&self) -> Result<HeaderMap, HostError>;

    /// Remove every copy of a request trailer (any case, like a header).
    fn remove_request_trailer(&self, name: &str) -> Result<(), HostError>;

    /// Answer the request locally (the 403), instead of forwarding it.
    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError>;

    /// Answer a gRPC request locally: a trailers-only response with this
    /// `grpc-status`, plus `headers` (the `grpc-message`).
    fn send_grpc_response(&self, grpc_status: u32, headers: &[(&str, &str)]) -> Result<(), HostError>;

    /// Close the downstream connection (L4 mode), flushing what was written
    /// to the client; nothing more is read from it or sent upstream.
    fn close_downstream(&self) -> Result<(), HostError>;

    /// Write a line to the proxy's log. Callers escape untrusted content first.
    fn log(&self, level: Level, message: &str);

    /// Add one to a counter. Best effort: a lost count never changes a decision.
    fn increment(&self, metric: Metric);

    /// The id of a counter named at run time (per rule, per identity). With
    /// `define`, defined on first use; without, only an id this VM already
    /// holds (no host call), which is how a VM remembers what it admitted.
    fn counter(&self, name: &str, define: bool) -> Option<u32>;

    /// The id of the per-rule counter for rule key `key`
    /// ([`mtls_authz_policy::metrics::rule_key`]) and `count`, defined
    /// under the name `name` builds on first use and then kept by key
    /// ([`crate::rule_counters`]), so that the usual request builds no name.
    fn rule_counter(&self, key: &str, count: Count, name: &dyn Fn() -> String) -> Option<u32>;

    /// Add one to a counter from [`Host::counter`]. Best effort.
    fn increment_counter(&self, id: u32);

    /// A value in the proxy's shared data (every worker of this Envoy sees
    /// the same store) and its compare-and-swap token; `(None, 0)` when unset.
    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError>;

    /// Store a shared-data value if its token is still `cas` (0: whatever it
    /// is). `Ok(false)` when another worker changed it in between.
    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, HostError>;

    /// The proxy's clock, nanoseconds since the Unix epoch.
    fn now_ns(&self) -> Result<u64, HostError>;

    /// The VM's memory now, in bytes (a Wasm VM's linear memory only
    /// grows: after a load it is the most the load needed). `None` where unknown.
    fn vm_memory_bytes(&self) -> Option<u64>;

    /// Publish `value` as the stream's filter state `wasm.<name>`.
    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
}
