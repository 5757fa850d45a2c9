//! A [`Host`] for tests: the proxy as the filter sees it, in memory. It
//! records every host call, can make any of them fail, and serializes the
//! request headers as the proxy-wasm host does, so every test also runs the
//! header-map parser. The filter's unit tests and the CLI's case-corpus
//! runner (feature `mock-host`) both drive the filter through it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::headers::HeaderMap;
use crate::host::{Host, HostError, Level, Metric};
use crate::rule_counters::RuleCounterIds;
use mtls_authz_policy::metrics::Count;

/// Shared data: key -> (value, CAS token).
pub type SharedData = HashMap<String, (Vec<u8>, u32)>;

/// A local response: status, headers, body.
pub type Response = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Default)]
pub struct MockHost {
    /// Properties by dotted path, e.g. "connection.peer_certificate".
    pub properties: HashMap<String, Vec<u8>>,
    pub headers: RefCell<Vec<(String, Vec<u8>)>>,
    /// The request trailers, as `headers`.
    pub trailers: RefCell<Vec<(String, Vec<u8>)>>,
    pub response: RefCell<Option<Response>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub metrics: RefCell<HashMap<Metric, u64>>,
    pub property_reads: RefCell<Vec<String>>,
    /// Every host call made, by name ("property", "headers", "body", "replace",
    /// "add", "remove", "trailers", "remove_trailer", "send", ...), except
    /// logging and counters.
    pub calls: RefCell<Vec<&'static str>>,
    /// Host calls that fail, by the same names.
    pub failing: HashSet<&'static str>,
    /// Return this buffer from `request_headers` instead of the serialized headers.
    pub raw_header_map: Option<Vec<u8>>,
    /// The request body the proxy has buffered.
    pub body: Vec<u8>,
    /// The `grpc-status` of a gRPC local response, when one was sent.
    pub grpc_status: RefCell<Option<u32>>,
    /// The downstream connection was closed (L4 mode).
    pub closed: RefCell<bool>,
    /// Shared data with CAS tokens; clone the `Rc` into the next request's
    /// host to share it, as Envoy's workers do.
    pub shared: Rc<RefCell<SharedData>>,
    /// Counters named at run time, by definition order (the index is the id);
    /// shared like `shared`, as if one VM.
    pub counters: Rc<RefCell<Vec<(String, u64)>>>,
    /// The per-rule counter ids kept by rule key, shared with `counters`.
    pub rule_counter_ids: Rc<RefCell<RuleCounterIds>>,
    /// The clock, nanoseconds.
    pub now: u64,
    /// What `vm_memory_bytes` answers.
    pub vm_memory: Option<u64>,
    /// Filter state set on this request.
    pub filter_state: RefCell<Vec<(String, Vec<u8>)>>,
    /// How many of the next conditional stores lose to "another worker":
    /// the value is changed under them and the store reports a CAS mismatch.
    pub cas_races: std::cell::Cell<u32>,
}

impl MockHost {
    /// A request with these pseudo-headers and an authority, no certificate yet.
    pub fn request(method: &str, path: &str) -> MockHost {
        let host = MockHost::default();
        host.add_header(":method", method.as_bytes());
        host.add_header(":path", path.as_bytes());
        host.add_header(":authority", b"payments.test");
        host
    }

    /// The connection carries this verified certificate (PEM) with this digest.
    pub fn with_certificate(mut self, pem: &str, digest: &str) -> MockHost {
        self.properties.insert("connection.sha256_peer_certificate_digest".into(), digest.as_bytes().to_vec());
        self.properties.insert("connection.peer_certificate".into(), pem.as_bytes().to_vec());
        self
    }

    pub fn add_header(&self, name: &str, value: &[u8]) {
        self.headers.borrow_mut().push((name.into(), value.to_vec()));
    }

    pub fn add_trailer(&self, name: &str, value: &[u8]) {
        self.trailers.borrow_mut().push((name.into(), value.to_vec()));
    }

    /// The trailer names left, in order, after what the filter did to them.
    pub fn trailer_names(&self) -> Vec<String> {
        self.trailers.borrow().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Every value of a request header, after what the filter did to them.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers.borrow().iter().filter(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// A counter named at run time, 0 when never defined.
    pub fn counter_value(&self, name: &str) -> u64 {
        self.counters.borrow().iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
    }

    /// The filter state `name` set on this request, as text.
    pub fn filter_state_value(&self, name: &str) -> Option<String> {
        self.filter_state.borrow().iter().rev().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// A host for the next request that shares this one's shared data and counters.
    pub fn next(&self, method: &str, path: &str) -> MockHost {
        let mut host = MockHost::request(method, path);
        host.properties = self.properties.clone();
        host.shared = Rc::clone(&self.shared);
        host.counters = Rc::clone(&self.counters);
        host.rule_counter_ids = Rc::clone(&self.rule_counter_ids);
        host.now = self.now;
        host
    }

    pub fn metric(&self, m: Metric) -> u64 {
        self.metrics.borrow().get(&m).copied().unwrap_or(0)
    }

    /// The local response's status, if one was sent.
    pub fn status(&self) -> Option<u32> {
        self.response.borrow().as_ref().map(|(s, _, _)| *s)
    }

    pub fn logs_containing(&self, needle: &str) -> Vec<String> {
        self.logs.borrow().iter().filter(|(_, l)| l.contains(needle)).map(|(_, l)| l.clone()).collect()
    }

    pub fn reads_of(&self, property: &str) -> usize {
        self.property_reads.borrow().iter().filter(|p| *p == property).count()
    }

    /// The host calls made, in order, without logs and counters.
    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.borrow().clone()
    }

    fn fail(&self, call: &'static str) -> Result<(), HostError> {
        self.calls.borrow_mut().push(call);
        if self.failing.contains(call) {
            Err(HostError(call))
        } else {
            Ok(())
        }
    }
}

/// A header or trailer list as the proxy-wasm host serializes it.
fn serialized(map: &[(String, Vec<u8>)], too_large: &'static str) -> Result<HeaderMap, HostError> {
    HeaderMap::serialize(map.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()))).ok_or(HostError(too_large))
}

impl Host for MockHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        self.fail("property")?;
        let key = path.join(".");
        self.property_reads.borrow_mut().push(key.clone());
        Ok(self.properties.get(&key).cloned())
    }

    /// The headers serialized as the proxy-wasm host does.
    fn request_headers(&self) -> Result<HeaderMap, HostError> {
        self.fail("headers")?;
        if let Some(raw) = &self.raw_header_map {
            return Ok(HeaderMap::from_bytes(raw.clone()));
        }
        serialized(&self.headers.borrow(), "headers (map too large)")
    }

    fn request_body(&self, len: usize) -> Result<Option<Vec<u8>>, HostError> {
        self.fail("body")?;
        Ok(Some(self.body.iter().copied().take(len).collect()).filter(|b: &Vec<u8>| !b.is_empty()))
    }

    /// Envoy's `replaceHeaderMapValue`: every copy goes, one new value is added.
    fn replace_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.fail("replace")?;
        let mut headers = self.headers.borrow_mut();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.into(), value.as_bytes().to_vec()));
        Ok(())
    }

    /// Envoy's `addHeaderMapValue`: a copy already there stays.
    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.fail("add")?;
        self.headers.borrow_mut().push((name.into(), value.as_bytes().to_vec()));
        Ok(())
    }

    /// Envoy's header names are case-insensitive (`LowerCaseString`).
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.fail("remove")?;
        self.headers.borrow_mut().retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn request_trailers(&self) -> Result<HeaderMap, HostError> {
        self.fail("trailers")?;
        serialized(&self.trailers.borrow(), "trailers (map too large)")
    }

    fn remove_request_trailer(&self, name: &str) -> Result<(), HostError> {
        self.fail("remove_trailer")?;
        self.trailers.borrow_mut().retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        self.fail("send")?;
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let previous = self.response.borrow_mut().replace((status, headers, body.to_vec()));
        assert!(previous.is_none(), "two local responses for one request");
        Ok(())
    }

    /// Recorded as the local response Envoy sends (status 200, the
    /// headers, no body) with the `grpc-status` in [`MockHost::grpc_status`].
    fn send_grpc_response(&self, grpc_status: u32, headers: &[(&str, &str)]) -> Result<(), HostError> {
        self.send_response(200, headers, &[])?;
        *self.grpc_status.borrow_mut() = Some(grpc_status);
        Ok(())
    }

    fn close_downstream(&self) -> Result<(), HostError> {
        self.fail("close")?;
        *self.closed.borrow_mut() = true;
        Ok(())
    }

    fn log(&self, level: Level, message: &str) {
        assert!(!message.contains('\n') && !message.contains('\r'), "multi-line log: {message:?}");
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    fn increment(&self, metric: Metric) {
        *self.metrics.borrow_mut().entry(metric).or_insert(0) += 1;
    }

    fn counter(&self, name: &str, define: bool) -> Option<u32> {
        let mut counters = self.counters.borrow_mut();
        let found = counters.iter().position(|(n, _)| n == name);
        let index = match found {
            Some(i) => i,
            None if define => {
                counters.push((name.to_owned(), 0));
                counters.len() - 1
            }
            None => return None,
        };
        u32::try_from(index).ok()
    }

    fn rule_counter(&self, key: &str, count: Count, name: &dyn Fn() -> String) -> Option<u32> {
        self.rule_counter_ids.borrow_mut().get_or_define(key, count, || self.counter(&name(), true))
    }

    fn increment_counter(&self, id: u32) {
        if let Some((_, v)) = self.counters.borrow_mut().get_mut(id as usize) {
            *v += 1;
        }
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.fail("shared_get")?;
        Ok(self.shared.borrow().get(key).map_or((None, 0), |(v, cas)| (Some(v.clone()), *cas)))
    }

    /// Envoy's rule: a non-zero `cas` must match the stored token; every store bumps it.
    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, HostError> {
        self.fail("shared_set")?;
        let mut shared = self.shared.borrow_mut();
        let mut current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && self.cas_races.get() > 0 {
            // Another worker stored first (the same bytes will do: the token is what changes).
            self.cas_races.set(self.cas_races.get() - 1);
            current += 1;
            if let Some(entry) = shared.get_mut(key) {
                entry.1 = current;
            }
        }
        if cas != 0 && cas != current {
            return Ok(false);
        }
        shared.insert(key.to_owned(), (value.to_vec(), current + 1));
        Ok(true)
    }

    fn now_ns(&self) -> Result<u64, HostError> {
        self.fail("now")?;
        Ok(self.now)
    }

    fn vm_memory_bytes(&self) -> Option<u64> {
        self.vm_memory
    }

    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.fail("filter_state")?;
        self.filter_state.borrow_mut().push((name.to_owned(), value.to_vec()));
        Ok(())
    }
}
