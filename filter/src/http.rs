//! One request: identity from the connection, decision, then forward or 403.
//!
//! The caller's identity comes *only* from the TLS connection Envoy verified:
//! the certificate digest, and on a cache miss the certificate itself. No
//! request header is ever read for identity (an `x-forwarded-client-cert` or
//! `x-mtls-authz-principal` sent by the client is at best stale and at worst
//! forged), and the filter's own output headers are removed from every request
//! before it goes anywhere, from its trailers as well
//! ([`on_forwarded_request_trailers`]).
//!
//! The request headers are read once, as the whole map ([`Host::request_headers`]),
//! and scanned in one pass for `:method`, `:path`, override headers and
//! client-sent copies of the filter's own headers; the method and path are
//! borrowed from that buffer, not copied. A request that asks the backend to
//! run another method or path (`X-HTTP-Method-Override`, `X-Original-URL`, ...:
//! [`overrides::override_header`]) is refused with [`Reason::Override`],
//! because the backend might honour it and the policy judged something else.
//!
//! A `POST` that a framework would parse for a `_method` override (a form,
//! multipart or JSON body: [`BodyHeaders::plan`]) and that the policy would
//! let through has its body held until it is complete ([`Flow::ReadBody`]),
//! then is judged again with what [`overrides::body_overrides_method`]
//! found. Its headers go on at once (proxy-wasm shows a filter no body while
//! it holds the headers), but no byte of the body reaches the upstream
//! before it has been judged, so an override in it never does either.
//! Every other request is decided on its headers alone and no body is touched.
//!
//! The hot path for a known certificate is: one header-map read, one small
//! property read, one cache lookup, the decision, and up to three header
//! writes (principal, rule, and the revision when the policy has one; each can
//! be turned off with the policy's `upstream_headers`): adds, or replaces of
//! what the client sent. The counters are summed in the VM
//! ([`crate::pending`]). The client's copies of the filter's headers are
//! removed only when the map showed it sent them.
//! Everything that can fail fails closed: a 403, never a free pass.

use std::cell::RefCell;
use std::rc::Rc;

use mtls_authz_policy::overrides;
use mtls_authz_policy::{
    BodyHeaders, BodyPlan, BodyReadings, CompiledPolicy, Decision, Identity, MethodOverrides, PathRejection, Reason, Verdict,
};

use mtls_authz_policy::escape;
use mtls_authz_policy::grpc;
use mtls_authz_policy::outcome::{self, Event, Facts, UpstreamHeader};

use mtls_authz_policy::limits::{self, LimitReason, OverLimit};
use mtls_authz_policy::metrics::Count;

use crate::cache::{Entry, IdentityCache};
use crate::gateway::{self, Limits};
use crate::headers::HeaderMap;
use crate::host::{Host, HostError, Level, Metric};

/// The filter's own headers, named by the engine ([`outcome`]).
pub use mtls_authz_policy::outcome::{DRY_RUN_HEADER, OWN_HEADERS, PRINCIPAL_HEADER, REVISION_HEADER, RULE_HEADER};

const DIGEST_PROPERTY: [&str; 2] = ["connection", "sha256_peer_certificate_digest"];
const CERTIFICATE_PROPERTY: [&str; 2] = ["connection", "peer_certificate"];

/// What the proxy should do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// Forward it upstream.
    Continue,
    /// Stop: a local response has been sent (or, if even that failed, nothing goes upstream).
    Stop,
    /// Let the headers go on (with the filter's headers set), but hold the
    /// body: the request is decided when the body is complete
    /// ([`on_request_body`]).
    ReadBody(Box<Held>),
    /// From a body callback: keep buffering, the body is not complete yet.
    Buffer,
}

/// Why no decision could be reached.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request cannot be judged for a reason the engine knows (dry run applies).
    Refuse(Reason),
    /// The filter itself failed: always a 403, in dry-run mode too.
    Internal(HostError),
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        Failure::Internal(e)
    }
}

/// Which of [`OWN_HEADERS`] the client sent (bit `i` for `OWN_HEADERS[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct OwnHeaders(u8);

impl OwnHeaders {
    /// Unknown (the map could not be read): assume every one is there.
    const ALL: OwnHeaders = OwnHeaders((1 << OWN_HEADERS.len()) - 1);

    /// Note `name` if it is one of the filter's headers (any case).
    fn note(&mut self, name: &[u8]) {
        for (i, own) in OWN_HEADERS.iter().enumerate() {
            if own.as_bytes().eq_ignore_ascii_case(name) {
                self.0 |= 1 << i;
            }
        }
    }

    /// Which of the filter's headers a whole map holds.
    fn in_map(map: &HeaderMap) -> Result<OwnHeaders, HostError> {
        let mut own = OwnHeaders::default();
        for pair in map.pairs() {
            own.note(pair?.0);
        }
        Ok(own)
    }

    /// Is `name` (one of [`OWN_HEADERS`]) marked? A name not in the list is
    /// assumed present, so a caller's mistake costs a removal, not a forgery.
    fn contains(self, name: &str) -> bool {
        OWN_HEADERS.iter().position(|h| *h == name).is_none_or(|i| self.0 & (1 << i) != 0)
    }
}

/// What was learnt about the request: the decision inputs, and for the log
/// line what was asked for. Method, path and override name borrow the header map.
#[derive(Debug, Default)]
struct Request<'h> {
    method: Option<&'h [u8]>,
    path: Option<&'h [u8]>,
    /// The first override header that counts under the policy, by the name the client used.
    override_header: Option<&'h [u8]>,
    /// The headers that say whether and how the body must be read.
    body: BodyHeaders,
    /// The filter's headers the client sent; `None` until the map has been read.
    own: Option<OwnHeaders>,
    digest: Option<String>,
    identity: Option<Rc<Identity>>,
    /// The first `content-type` makes it gRPC (as Envoy reads it): refused with a gRPC status.
    grpc: bool,
    /// The first dry-run limit the request is over ([`gateway::check_limits`]).
    dry_run_limit: Option<DryRunLimit>,
}

/// A dry-run limit a request was over, kept until it is counted and logged.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRunLimit {
    limit: Box<str>,
    reason: LimitReason,
    retry_after: u32,
}

impl From<OverLimit<'_>> for DryRunLimit {
    fn from(over: OverLimit<'_>) -> Self {
        DryRunLimit { limit: over.limit.name.as_str().into(), reason: over.reason, retry_after: over.retry_after }
    }
}

impl<'h> Request<'h> {
    /// One pass over the header map. `:method` and `:path` are taken from
    /// their first occurrence (Envoy's codecs allow only one).
    /// Method-override headers count only when the policy refuses method
    /// overrides; path overrides always count.
    fn scan(&mut self, headers: &'h HeaderMap, method_overrides: MethodOverrides) -> Result<(), HostError> {
        let mut own = OwnHeaders::default();
        let mut content_type_seen = false;
        for pair in headers.pairs() {
            let (name, value) = pair?;
            match name {
                b":method" => {
                    self.method.get_or_insert(value);
                }
                b":path" => {
                    self.path.get_or_insert(value);
                }
                _ if name.starts_with(b":") => {}
                _ => {
                    if !content_type_seen && name.eq_ignore_ascii_case(b"content-type") {
                        content_type_seen = true;
                        self.grpc = grpc::is_grpc_content_type(value);
                    }
                    if self.override_header.is_none() && overrides::refuses_header(name, method_overrides) {
                        self.override_header = Some(name);
                    }
                    self.body.note(name, value);
                    own.note(name);
                }
            }
        }
        self.own = Some(own);
        Ok(())
    }

    /// Did the client send this header of ours? Yes when unknown.
    fn sent(&self, name: &str) -> bool {
        self.own.unwrap_or(OwnHeaders::ALL).contains(name)
    }

    fn facts<'a>(&'a self, policy: Option<&'a CompiledPolicy>) -> Facts<'a> {
        Facts {
            identity: self.identity.as_deref(),
            digest: self.digest.as_deref(),
            method: self.method,
            path: self.path,
            override_header: self.override_header,
            revision: policy.and_then(CompiledPolicy::revision),
            grpc: self.grpc,
        }
    }
}

/// Handle the request headers. `policy` is the snapshot this request is judged by
/// (`None` only if the VM never loaded one, which Envoy should not allow);
/// `end_of_stream` when no body follows.
pub fn on_request_headers<H: Host>(host: &H, policy: Option<&CompiledPolicy>, cache: &RefCell<IdentityCache>, end_of_stream: bool) -> Flow {
    let Some(policy) = policy else {
        host.increment(Metric::Errors);
        host.log(Level::Error, "mtls-authz: no policy loaded in this VM; refusing the request");
        return deny(host, &Decision::internal_error(), &Request::default(), None);
    };
    let headers = host.request_headers();
    let mut request = Request::default();
    // A request the policy allows takes a token from each limit on its rule first.
    let evaluated = match evaluate(host, policy, cache, headers.as_ref(), &mut request) {
        Ok(decision) if decision.verdict == Verdict::Allow => {
            match gateway::check_limits(host, policy, &decision, request.identity.as_deref()) {
                Ok(Limits::Over(over)) => return limited(host, &decision, &request, policy, &over),
                Ok(Limits::Pass { dry_run }) => {
                    request.dry_run_limit = dry_run.map(DryRunLimit::from);
                    Ok(decision)
                }
                Err(e) => Err(Failure::Internal(e)),
            }
        }
        other => other,
    };
    let evaluated = match evaluated {
        // Only a request the policy lets through needs its body looked at.
        Ok(decision) if !end_of_stream && decision.verdict == Verdict::Allow => match body_plan(policy, &request) {
            BodyPlan::Skip => Ok(decision),
            BodyPlan::Unreadable => Err(Failure::Refuse(Reason::BodyUnreadable)),
            BodyPlan::Read(readings) => {
                // A proxy-wasm filter that pauses the headers is shown no body (the
                // host stops the whole stream), so the headers go on now, with the
                // filter's own, and the body is held until it has been read.
                // Nothing is counted or logged until then.
                return match forward(host, &decision, &request, policy) {
                    Ok(()) => Flow::ReadBody(Box::new(Held::new(readings, &decision, &request))),
                    Err(e) => forward_failed(host, e, &mut request, policy),
                };
            }
        },
        other => other,
    };
    let decision = match evaluated {
        Ok(decision) => decision,
        Err(Failure::Refuse(reason)) => policy.refuse(reason),
        Err(Failure::Internal(e)) => {
            host.increment(Metric::Errors);
            host.log(Level::Error, &format!("mtls-authz: internal error, refusing the request: {e}"));
            Decision::internal_error()
        }
    };
    if decision.is_allowed() {
        if let Err(e) = forward(host, &decision, &request, policy) {
            return forward_failed(host, e, &mut request, policy);
        }
        count_allowed(host, &decision, &request, policy);
        return Flow::Continue;
    }
    deny(host, &decision, &request, Some(policy))
}

/// What a request whose body is held needs when the body is judged: the
/// proxy shows the request headers only to the header callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    readings: BodyReadings,
    /// The allow the headers got.
    rule: Option<Box<str>>,
    reason: Reason,
    method: Box<[u8]>,
    path: Box<[u8]>,
    digest: Option<Box<str>>,
    identity: Option<Rc<Identity>>,
    dry_run_limit: Option<DryRunLimit>,
}

impl Held {
    fn new(readings: BodyReadings, decision: &Decision<'_>, request: &Request<'_>) -> Held {
        Held {
            readings,
            rule: decision.rule.map(Box::from),
            reason: decision.reason,
            method: request.method.unwrap_or_default().into(),
            path: request.path.unwrap_or_default().into(),
            digest: request.digest.as_deref().map(Box::from),
            identity: request.identity.clone(),
            dry_run_limit: request.dry_run_limit.clone(),
        }
    }

    /// How the body is to be read.
    pub fn readings(&self) -> BodyReadings {
        self.readings
    }

    /// The request as the log line and the refusal see it. Its headers have
    /// gone on already, so none of the filter's is left to remove.
    fn request(&self) -> Request<'_> {
        Request {
            method: Some(&self.method),
            path: Some(&self.path),
            own: Some(OwnHeaders::default()),
            digest: self.digest.as_deref().map(str::to_owned),
            identity: self.identity.clone(),
            dry_run_limit: self.dry_run_limit.clone(),
            ..Request::default()
        }
    }
}

/// Handle a part of the body of a request held by [`Flow::ReadBody`].
/// `body_size` is what the proxy has buffered so far. A body past the
/// policy's `body_inspection_limit` is refused at once (413), without waiting
/// for the rest; a complete one is read and checked for an override.
pub fn on_request_body<H: Host>(host: &H, policy: Option<&CompiledPolicy>, held: &Held, body_size: usize, end_of_stream: bool) -> Flow {
    let limit = policy.map_or(0, |p| p.policy().body_inspection_limit);
    if u32::try_from(body_size).map_or(true, |size| size > limit) {
        return finish(host, policy, held, Ok(Some(Reason::BodyTooLarge)));
    }
    if !end_of_stream {
        return Flow::Buffer;
    }
    // An empty body is not asked for: hosts differ on a zero-length read.
    let body = if body_size == 0 { Ok(None) } else { host.request_body(body_size) };
    let outcome = body.map(|body| overrides::body_overrides_method(held.readings, body.as_deref().unwrap_or_default()).refusal());
    finish(host, policy, held, outcome)
}

/// Trailers arrived on a request held by [`Flow::ReadBody`] before its body
/// ended: the body is not known to be complete, so it is not judged complete.
/// A dry run lets the request go on anyway, and its trailers lose the
/// filter's names as any forwarded request's do.
pub fn on_request_trailers<H: Host>(host: &H, policy: Option<&CompiledPolicy>, held: &Held) -> Flow {
    match finish(host, policy, held, Ok(Some(Reason::BodyUnreadable))) {
        Flow::Continue => on_forwarded_request_trailers(host, policy),
        refused => refused,
    }
}

/// Trailers arrived on a request whose headers went on. A client can send
/// the filter's header names as trailers, and a backend that merges trailers
/// into the headers would read them as the filter's, so every copy is
/// removed, as from the headers; when the trailers cannot be read, every one
/// of the names is removed. If a removal fails the request is refused with a
/// local reply, which also cuts off what the upstream has been sent of it.
pub fn on_forwarded_request_trailers<H: Host>(host: &H, policy: Option<&CompiledPolicy>) -> Flow {
    let sent = host.request_trailers().and_then(|map| OwnHeaders::in_map(&map)).unwrap_or(OwnHeaders::ALL);
    for name in OWN_HEADERS {
        if !sent.contains(name) {
            continue;
        }
        if let Err(e) = host.remove_request_trailer(name) {
            host.increment(Metric::Errors);
            host.log(Level::Error, &format!("mtls-authz: internal error, refusing the request at its trailers: {e}"));
            return send(host, &outcome::local_reply(policy, &Decision::internal_error()));
        }
    }
    Flow::Continue
}

/// The held request's body has been judged (`Ok` with the refusal it
/// means, if any; `Err` when the host failed): let it go on, or refuse it.
fn finish<H: Host>(host: &H, policy: Option<&CompiledPolicy>, held: &Held, outcome: Result<Option<Reason>, HostError>) -> Flow {
    let request = held.request();
    let Some(policy) = policy else {
        host.increment(Metric::Errors);
        return deny(host, &Decision::internal_error(), &request, None);
    };
    let head = Decision { verdict: Verdict::Allow, enforced: Verdict::Allow, rule: held.rule.as_deref(), reason: held.reason };
    let decision = match outcome {
        Ok(refusal) => policy.with_body_check(head, refusal),
        Err(e) => {
            host.increment(Metric::Errors);
            host.log(Level::Error, &format!("mtls-authz: internal error, refusing the request: {e}"));
            Decision::internal_error()
        }
    };
    if decision.is_allowed() {
        // A dry-run deny found in the body is logged and counted, but the
        // headers have gone on already: the upstream gets no dry-run marker.
        count_allowed(host, &decision, &request, policy);
        return Flow::Continue;
    }
    deny(host, &decision, &request, Some(policy))
}

/// Count (and for a dry-run deny, log) a request that goes on.
fn count_allowed<H: Host>(host: &H, decision: &Decision<'_>, request: &Request<'_>, policy: &CompiledPolicy) {
    let facts = request.facts(Some(policy));
    let identity = request.identity.as_deref();
    let verdict = if decision.is_dry_run_deny() {
        host.increment(Metric::RequestsDryRunDenied);
        gateway::count(host, policy, decision, identity, Count::DryRunDenied);
        host.log(Level::Info, &outcome::log_line(Event::DryRunDeny, &facts, decision));
        "dry_run_deny"
    } else {
        host.increment(Metric::RequestsAllowed);
        gateway::count(host, policy, decision, identity, Count::Allowed);
        "allow"
    };
    match &request.dry_run_limit {
        Some(over) => {
            host.increment(Metric::RequestsRateLimitedDryRun);
            gateway::count(host, policy, decision, identity, Count::RateLimitedDryRun);
            host.log(Level::Info, &limits::log_line(true, &facts, decision.rule, &over.limit, over.reason, over.retry_after));
            gateway::audit(host, policy, &facts, "rate_limited_dry_run", decision.rule, over.reason.as_str(), Some(&over.limit));
        }
        None => gateway::audit(host, policy, &facts, verdict, decision.rule, decision.reason.as_str(), None),
    }
}

/// Setting the upstream headers failed: refuse, as an internal error.
fn forward_failed<H: Host>(host: &H, e: HostError, request: &mut Request<'_>, policy: &CompiledPolicy) -> Flow {
    host.increment(Metric::Errors);
    host.log(Level::Error, &format!("mtls-authz: internal error, refusing the request: {e}"));
    // Forwarding stopped half-way: which of our headers are there is no longer known.
    request.own = None;
    deny(host, &Decision::internal_error(), request, Some(policy))
}

/// Whether the body of an allowed request must be read before it goes on.
fn body_plan(policy: &CompiledPolicy, request: &Request<'_>) -> BodyPlan {
    // The engine allowed the request, so its method is a canonical (ASCII) token.
    match request.method.and_then(|m| std::str::from_utf8(m).ok()) {
        Some(method) => policy.body_plan(&request.body, method),
        None => BodyPlan::Unreadable,
    }
}

/// Gather the request facts and ask the engine.
fn evaluate<'p, 'h, H: Host>(
    host: &H,
    policy: &'p CompiledPolicy,
    cache: &RefCell<IdentityCache>,
    headers: Result<&'h HeaderMap, &HostError>,
    request: &mut Request<'h>,
) -> Result<Decision<'p>, Failure> {
    // Read before identifying, so that even a refusal's log line says what was asked for.
    request.scan(headers.map_err(|e| *e)?, policy.policy().method_overrides)?;
    let identity = identify(host, cache, request)?;
    let (Some(method), Some(path)) = (request.method, request.path) else {
        return Err(Failure::Refuse(Reason::MissingRequestData));
    };
    // Not UTF-8 means not a canonical method or path; the engine would refuse either way.
    let method = std::str::from_utf8(method).map_err(|_| Failure::Refuse(Reason::Method))?;
    let path = std::str::from_utf8(path).map_err(|_| Failure::Refuse(Reason::Path(PathRejection::InvalidCharacter)))?;
    Ok(policy.decide_head(Some(identity.as_ref()), method, path, request.override_header.is_some()))
}

/// The verified certificate's identity: from the cache by digest, else parsed
/// from the PEM Envoy holds for the connection.
fn identify<H: Host>(host: &H, cache: &RefCell<IdentityCache>, request: &mut Request<'_>) -> Result<Rc<Identity>, Failure> {
    let identity = peer_identity(host, cache, &mut request.digest)?;
    request.identity = Some(Rc::clone(&identity));
    Ok(identity)
}

/// The connection's verified certificate as an identity (the HTTP request
/// path and the L4 connection path both ask here); `digest` gets Envoy's
/// digest of it, for the log line, as soon as it is known.
pub(crate) fn peer_identity<H: Host>(
    host: &H,
    cache: &RefCell<IdentityCache>,
    digest_slot: &mut Option<String>,
) -> Result<Rc<Identity>, Failure> {
    let mut digest = match host.property(&DIGEST_PROPERTY)? {
        Some(d) if !d.is_empty() => d,
        _ => return Err(Failure::Refuse(Reason::NoPeerCertificate)),
    };
    // Envoy reports lower-case hex; normalise in place anyway so the cache key is canonical.
    digest.make_ascii_lowercase();
    let digest = String::from_utf8(digest).map_err(|_| HostError("connection.sha256_peer_certificate_digest is not text"))?;
    let digest: &str = digest_slot.insert(digest);

    let mut cache = cache.try_borrow_mut().map_err(|_| HostError("identity cache is busy"))?;
    let entry = match cache.get(digest) {
        Some(entry) => entry,
        None => {
            let entry = parse_peer_certificate(host, digest)?;
            cache.insert(digest, entry.clone());
            entry
        }
    };
    match entry {
        Entry::Parsed(identity) => Ok(identity),
        Entry::Unreadable => {
            host.increment(Metric::Errors);
            Err(Failure::Refuse(Reason::UnreadableCertificate))
        }
    }
}

/// Fetch and parse the peer certificate; check it is the one the digest names.
/// Host failures are returned (not cached); a certificate that cannot be used is
/// returned as [`Entry::Unreadable`] so the cache remembers it.
fn parse_peer_certificate<H: Host>(host: &H, digest: &str) -> Result<Entry, Failure> {
    let shown = escape::log_field(digest.as_bytes());
    let Some(pem) = host.property(&CERTIFICATE_PROPERTY)?.filter(|pem| !pem.is_empty()) else {
        // A digest without a certificate: the connection is in a state we do not understand.
        host.increment(Metric::Errors);
        host.log(Level::Warn, &format!("mtls-authz: the connection has a certificate digest but no certificate sha256={shown}"));
        return Err(Failure::Refuse(Reason::UnreadableCertificate));
    };
    match mtls_authz_policy::Identity::from_pem(&pem) {
        Err(e) => {
            host.log(
                Level::Warn,
                &format!("mtls-authz: cannot read the client certificate sha256={shown}: {}", escape::log_field(e.to_string().as_bytes())),
            );
            Ok(Entry::Unreadable)
        }
        Ok(identity) if !identity.sha256.eq_ignore_ascii_case(digest) => {
            host.log(
                Level::Warn,
                &format!(
                    "mtls-authz: the client certificate does not match the connection's digest sha256={shown} parsed={}",
                    escape::log_field(identity.sha256.as_bytes())
                ),
            );
            Ok(Entry::Unreadable)
        }
        Ok(identity) => {
            host.increment(Metric::CertificatesParsed);
            Ok(Entry::Parsed(Rc::new(identity)))
        }
    }
}

/// Let the request through, carrying the filter's (and only the filter's)
/// headers. A header the client also sent is replaced, which drops every
/// copy, duplicates included; one it did not send (the usual request) is
/// added, which spares Envoy the search for copies a replace makes (about
/// 1.7k instructions a header: bench/README.md). A header of ours that is not
/// set on this request (turned off by the policy's `upstream_headers`, or with
/// nothing to say) is removed only if the client sent it, so the usual
/// request costs no host call for it.
fn forward<H: Host>(host: &H, decision: &Decision<'_>, request: &Request<'_>, policy: &CompiledPolicy) -> Result<(), HostError> {
    // Before the request goes on: Envoy's rate limit filters after this one read it.
    gateway::publish(host, policy, decision, request.identity.as_deref());
    for header in outcome::upstream_headers(policy, decision, request.identity.as_deref()) {
        match header {
            UpstreamHeader::Set(name, value) if request.sent(name) => host.replace_request_header(name, &value)?,
            UpstreamHeader::Set(name, value) => host.add_request_header(name, &value)?,
            UpstreamHeader::Clear(name) => remove_if_sent(host, request, name)?,
        }
    }
    Ok(())
}

fn remove_if_sent<H: Host>(host: &H, request: &Request<'_>, name: &str) -> Result<(), HostError> {
    if request.sent(name) {
        host.remove_request_header(name)?;
    }
    Ok(())
}

/// Refuse the request: count, log, 403. `policy` is `None` when there is none to name.
fn deny<H: Host>(host: &H, decision: &Decision<'_>, request: &Request<'_>, policy: Option<&CompiledPolicy>) -> Flow {
    host.increment(Metric::RequestsDenied);
    remove_own_headers(host, request);
    let facts = request.facts(policy);
    host.log(Level::Info, &outcome::log_line(Event::Deny, &facts, decision));
    if let Some(policy) = policy {
        gateway::count(host, policy, decision, request.identity.as_deref(), Count::Denied);
        gateway::audit(host, policy, &facts, "deny", decision.rule, decision.reason.as_str(), None);
    }
    send(host, &outcome::refusal(policy, decision, &facts))
}

/// The request never reaches the upstream, but access logs and tap filters
/// still see its headers: do not let a forged principal show up there.
fn remove_own_headers<H: Host>(host: &H, request: &Request<'_>) {
    for name in OWN_HEADERS {
        if request.sent(name) && host.remove_request_header(name).is_err() {
            host.increment(Metric::Errors);
        }
    }
}

/// Send a refusal and stop the request.
fn send<H: Host>(host: &H, reply: &outcome::LocalReply) -> Flow {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let sent = match reply.grpc_status {
        Some(status) => host.send_grpc_response(status, &headers),
        None => host.send_response(reply.status, &headers, &reply.body),
    };
    if let Err(e) = sent {
        // Nothing more can be done; Stop still keeps the request from the upstream.
        host.increment(Metric::Errors);
        host.log(Level::Error, &format!("mtls-authz: could not send the {}: {e}", reply.status));
    }
    Flow::Stop
}

/// Refuse a request the policy allows but a rate limit does not: 429 with
/// `Retry-After`. Counted as denied and as rate limited.
fn limited<H: Host>(host: &H, decision: &Decision<'_>, request: &Request<'_>, policy: &CompiledPolicy, over: &OverLimit<'_>) -> Flow {
    host.increment(Metric::RequestsDenied);
    host.increment(Metric::RequestsRateLimited);
    remove_own_headers(host, request);
    let facts = request.facts(Some(policy));
    gateway::count(host, policy, decision, request.identity.as_deref(), Count::RateLimited);
    host.log(Level::Info, &limits::log_line(false, &facts, decision.rule, &over.limit.name, over.reason, over.retry_after));
    gateway::audit(host, policy, &facts, "rate_limited", decision.rule, over.reason.as_str(), Some(&over.limit.name));
    send(host, &limits::refusal(policy.policy().deny_response.details, policy.revision(), decision.rule, over, facts.grpc))
}
