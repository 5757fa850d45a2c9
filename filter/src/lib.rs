//! # mtls-authz Envoy filter
//!
//! A proxy-wasm HTTP filter that authorizes each request by the client
//! certificate Envoy verified on the connection, with the
//! [`mtls_authz_policy`] engine.
//!
//! - [`host`]: the `Host` trait and metric names.
//! - [`root`]: loading the policy from the plugin configuration.
//! - [`http`]: one request, from certificate to forward-or-403.
//! - [`cache`]: bounded per-VM cache of parsed certificates.
//! - [`respond`]: the 403 body and the decision log line.
//! - [`escape`]: making certificate and request content safe for headers and logs.

pub mod cache;
pub mod escape;
pub mod host;
pub mod http;
pub mod respond;
pub mod root;

#[cfg(test)]
mod tests;
