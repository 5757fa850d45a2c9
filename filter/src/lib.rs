//! # mtls-authz Envoy filter
//!
//! A proxy-wasm HTTP filter that authorizes each request by the client
//! certificate Envoy verified on the connection, with the
//! [`mtls_authz_policy`] engine.
//!
//! - [`host`]: the `Host` trait and metric names.
//! - [`cache`]: bounded per-VM cache of parsed certificates.
//! - [`escape`]: making certificate and request content safe for headers and logs.

pub mod cache;
pub mod escape;
pub mod host;
