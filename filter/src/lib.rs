//! # mtls-authz Envoy filter
//!
//! A proxy-wasm HTTP filter that authorizes each request by the client
//! certificate Envoy verified on the connection, with the
//! [`mtls_authz_policy`] engine. The plugin `configuration` is the policy
//! document; a policy that does not compile is refused, so Envoy keeps the
//! last good one (or does not start).
//!
//! On allow the upstream gets `x-mtls-authz-principal` and `x-mtls-authz-rule`,
//! and `x-mtls-authz-policy-revision` when the policy has a `revision`, each
//! unless the policy's `upstream_headers` turns it off (set by the filter
//! only: client copies are always removed, from the request's trailers
//! too); on deny the client gets a 403
//! with a JSON body (and the revision header, unless the policy hides details). In dry-run mode denials are logged, counted and
//! marked with `x-mtls-authz-dry-run: deny`, but let through. A request that
//! asks the backend to run another method or path (`X-HTTP-Method-Override`,
//! `X-Original-URL`, a client-sent `x-envoy-original-path`, `?_method=`) is
//! refused: the policy judged the method and path it was sent with.
//! A request over one of the policy's rate limits gets 429 with
//! `Retry-After`; per-rule and per-identity counters, the filter state for
//! Envoy's rate limit filters and the audit record are in [`gateway`].
//!
//! Layout, after Kuadrant's wasm-shim: the logic is plain Rust over the
//! [`host::Host`] trait, so it is unit-tested natively with a mock; only
//! [`wasm`] and [`abi`] touch the proxy-wasm ABI.
//!
//! - [`host`]: the `Host` trait and metric names.
//! - [`root`]: loading the policy from the plugin configuration.
//! - [`http`]: one request, from certificate to forward-or-403. What the
//!   headers, the 403 and the log line say is the engine's
//!   ([`mtls_authz_policy::outcome`]); this crate only carries it out.
//! - [`network`]: L4 mode, one TCP connection decided by `connection_rules`.
//! - [`headers`]: reading the serialized request header map, bounds-checked.
//! - [`cache`]: bounded per-VM cache of parsed certificates.
//! - [`gateway`]: rate limit buckets in shared data, per-rule and
//!   per-identity counters, filter state and the audit record.
//! - [`rule_counters`]: per-rule counter ids kept by rule, so a request
//!   builds no stat name.
//! - [`pending`]: counts summed in the VM and handed to Envoy on a tick, so
//!   a request makes no `increment_metric` call while the tick runs.
//! - [`wasm`]: the proxy-wasm adapter.
//! - [`abi`]: the host functions it calls, without the SDK's panics.
//! - `mock` (tests, and feature `mock-host`): an in-memory host.

pub mod abi;
pub mod cache;
pub mod gateway;
pub mod headers;
pub mod host;
pub mod http;
pub mod network;
pub mod pending;
pub mod root;
pub mod rule_counters;
pub mod wasm;

#[cfg(test)]
mod gateway_tests;
#[cfg(any(test, feature = "mock-host"))]
pub mod mock;
#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod tests;

// The entry point Envoy calls when it starts the VM. Only for the Wasm build:
// a native build (tests, clippy) must not export `_initialize`.
#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    wasm::register();
}}
