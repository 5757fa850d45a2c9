//! An [`Outcome`] as people and programs see it: the headers the upstream
//! gets, or the reply the client gets, and the log line, as plain values.
//!
//! `mtls-authz explain --format json` prints it and the browser playground
//! shows it, so both describe what Envoy does in the same words.

use serde::Serialize;

use crate::compile::{CompiledPolicy, RequestParts};
use crate::outcome::{self, Facts, Outcome, UpstreamHeader};
use crate::{Decision, Identity};

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeView {
    /// Allowed: the filter's headers on the upstream request as `[name, value]`
    /// (headers it clears are not listed).
    pub upstream_headers: Option<Vec<(&'static str, String)>>,
    /// Refused: the local reply as sent.
    pub response: Option<ResponseView>,
    /// The log line, for a deny or a dry-run deny.
    pub log_line: Option<String>,
}

/// The local reply that refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseView {
    pub status: u32,
    /// For a gRPC request, the `grpc-status` of the trailers-only reply (7); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl OutcomeView {
    /// The view of `outcome`.
    pub fn new(outcome: Outcome<'_>) -> OutcomeView {
        let upstream = outcome.upstream.map(|headers| {
            headers
                .into_iter()
                .filter_map(|h| match h {
                    UpstreamHeader::Set(name, value) => Some((name, value.into_owned())),
                    UpstreamHeader::Clear(_) => None,
                })
                .collect()
        });
        let response = outcome.reply.map(|r| ResponseView {
            status: r.status,
            grpc_status: r.grpc_status,
            headers: r.headers,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        });
        OutcomeView { upstream_headers: upstream, response, log_line: outcome.log }
    }
}

/// Decide `request` for `identity` and say what the proxy does with it, with
/// the facts the filter's log line reports (the first override header that
/// counts, the certificate's SHA-256 as Envoy's digest). `explain` and the
/// playground both call this, so they report the same outcome.
pub fn explain<'a>(policy: &'a CompiledPolicy, identity: Option<&'a Identity>, request: &RequestParts<'a>) -> (Decision<'a>, OutcomeView) {
    let decision = policy.decide_request(identity, request);
    let method_overrides = policy.policy().method_overrides;
    let override_header =
        request.headers.iter().map(|(name, _)| *name).find(|name| crate::overrides::refuses_header(name, method_overrides));
    let facts = Facts {
        identity,
        digest: identity.map(|i| i.sha256.as_str()),
        method: Some(request.method.as_bytes()),
        path: Some(request.target.as_bytes()),
        override_header,
        revision: policy.revision(),
        // Envoy reads the first content-type, and so does the filter.
        grpc: request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(b"content-type"))
            .is_some_and(|(_, value)| crate::grpc::is_grpc_content_type(value)),
    };
    (decision, OutcomeView::new(outcome::outcome(policy, decision, &facts)))
}
