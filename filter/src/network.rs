//! One TCP connection in L4 mode: the same `.wasm` as an Envoy network filter
//! (`envoy.filters.network.wasm`), placed before `tcp_proxy`, judged by the
//! policy's `connection_rules` ([`mtls_authz_policy::connection`]).
//!
//! When the decision is made, and why then:
//!
//! * [`on_new_connection`] runs when Envoy accepts the socket, *before* the
//!   TLS handshake: there is no verified certificate yet (and some Envoy
//!   versions cached the empty value of one read that early). It pauses the
//!   filter chain, so `tcp_proxy`, the next filter, is not even initialised:
//!   no upstream connection is opened.
//! * [`on_downstream_data`] runs with the first decrypted bytes, which a TLS
//!   transport socket hands over only once the handshake is complete, so the
//!   verified certificate is there. The connection is decided then, once,
//!   from Envoy's certificate digest and, on a cache miss, the certificate
//!   itself ([`crate::http::peer_identity`], the per-VM cache the HTTP path uses).
//!   On allow the chain continues: `tcp_proxy` connects and gets these bytes
//!   first. On deny the connection is closed: no upstream connection was
//!   ever opened, so no byte went upstream in either direction.
//! * A client that sends nothing (a server-first protocol: the server speaks
//!   first) is never decided and never connected upstream; Envoy holds the
//!   socket until the client or an idle timeout ends it (see examples/mqtt).
//!
//! Every decision is counted (one of the `connections_*` metrics) and logged
//! ([`outcome::log_line`]), allows too: there is one line per connection, not per request.

use std::cell::RefCell;

use mtls_authz_policy::connection::unfit_for_connections;
use mtls_authz_policy::outcome::{self, Event, Facts};
use mtls_authz_policy::{CompiledPolicy, Decision};

use crate::cache::IdentityCache;
use crate::host::{Host, Level, Metric};
use crate::http::{peer_identity, Failure};

/// The `root_id` that makes the filter a network filter: Envoy gives a Wasm
/// plugin no other way to tell which kind of filter it was configured as.
pub const NETWORK_ROOT_ID: &str = "mtls_authz_l4";

/// What the proxy should do with the connection's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnFlow {
    /// Pass it on (to `tcp_proxy`, or from the upstream to the client).
    Continue,
    /// Hold it: nothing goes further.
    Stop,
}

/// Where one connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Accepted; no application byte yet, so no decision.
    #[default]
    Undecided,
    Allowed,
    /// Closed by the filter.
    Denied,
}

/// A new connection: hold the chain until the first data shows the handshake is done.
pub fn on_new_connection() -> ConnFlow {
    ConnFlow::Stop
}

/// Bytes from the client (`data_size` of them; `end_of_stream` when it has
/// closed its side). The first call decides the connection.
pub fn on_downstream_data<H: Host>(
    host: &H,
    policy: Option<&CompiledPolicy>,
    cache: &RefCell<IdentityCache>,
    state: &mut ConnState,
    data_size: usize,
    end_of_stream: bool,
) -> ConnFlow {
    match *state {
        ConnState::Allowed => return ConnFlow::Continue,
        ConnState::Denied => return ConnFlow::Stop,
        ConnState::Undecided => {}
    }
    if data_size == 0 && end_of_stream {
        // The client leaves without having sent a byte: there is nothing to
        // forward, so the upstream is not bothered with a connection to close.
        *state = ConnState::Denied;
        if host.close_downstream().is_err() {
            host.increment(Metric::Errors);
        }
        return ConnFlow::Stop;
    }
    let mut digest = None;
    let decision = match policy {
        None => {
            host.increment(Metric::Errors);
            host.log(Level::Error, "mtls-authz: no policy loaded in this VM; closing the connection");
            Decision::internal_error()
        }
        Some(policy) => match peer_identity(host, cache, &mut digest) {
            Ok(identity) => {
                let decision = policy.decide_connection(Some(&identity));
                report(host, policy, &decision, Some(&identity), digest.as_deref());
                return settle(host, &decision, state);
            }
            Err(Failure::Refuse(reason)) => policy.refuse(reason),
            Err(Failure::Internal(e)) => {
                host.increment(Metric::Errors);
                host.log(Level::Error, &format!("mtls-authz: internal error, closing the connection: {e}"));
                Decision::internal_error()
            }
        },
    };
    if let Some(policy) = policy {
        report(host, policy, &decision, None, digest.as_deref());
    } else {
        host.increment(Metric::ConnectionsDenied);
    }
    settle(host, &decision, state)
}

/// Bytes from the upstream: only an allowed connection has one, but hold
/// anything that comes otherwise.
pub fn on_upstream_data(state: ConnState) -> ConnFlow {
    match state {
        ConnState::Allowed => ConnFlow::Continue,
        ConnState::Undecided | ConnState::Denied => ConnFlow::Stop,
    }
}

/// Count and log one decision.
fn report<H: Host>(
    host: &H,
    policy: &CompiledPolicy,
    decision: &Decision<'_>,
    identity: Option<&mtls_authz_policy::Identity>,
    digest: Option<&str>,
) {
    let event = Event::for_connection(decision);
    host.increment(match event {
        Event::ConnectionAllow => Metric::ConnectionsAllowed,
        Event::ConnectionDryRunDeny => Metric::ConnectionsDryRunDenied,
        _ => Metric::ConnectionsDenied,
    });
    let facts = Facts { identity, digest, revision: policy.revision(), ..Facts::default() };
    host.log(Level::Info, &outcome::log_line(event, &facts, decision));
}

/// Carry out the decision: continue, or close the connection.
fn settle<H: Host>(host: &H, decision: &Decision<'_>, state: &mut ConnState) -> ConnFlow {
    if decision.is_allowed() {
        *state = ConnState::Allowed;
        return ConnFlow::Continue;
    }
    *state = ConnState::Denied;
    if let Err(e) = host.close_downstream() {
        // Stop still keeps every byte from the upstream, which was never connected.
        host.increment(Metric::Errors);
        host.log(Level::Error, &format!("mtls-authz: could not close the connection: {e}"));
    }
    ConnFlow::Stop
}

/// Whether a freshly loaded policy can run a network filter; logs why not.
/// `on_configure` returns this, so Envoy refuses the configuration.
pub fn accept_policy<H: Host>(host: &H, policy: Option<&CompiledPolicy>) -> bool {
    match policy.and_then(unfit_for_connections) {
        None => policy.is_some(),
        Some(why) => {
            host.increment(Metric::PolicyRejected);
            host.log(Level::Error, &format!("{}{why}", crate::root::REJECTED_PREFIX));
            false
        }
    }
}
