//! A [`Host`] for tests: the proxy as the filter sees it, in memory. It
//! records every host call, can make any of them fail, and serializes the
//! request headers as the proxy-wasm host does, so every test also runs the
//! header-map parser. The filter's unit tests and the CLI's case-corpus
//! runner (feature `mock-host`) both drive the filter through it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crate::headers::HeaderMap;
use crate::host::{Host, HostError, Level, Metric};

/// A local response: status, headers, body.
pub type Response = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Default)]
pub struct MockHost {
    /// Properties by dotted path, e.g. "connection.peer_certificate".
    pub properties: HashMap<String, Vec<u8>>,
    pub headers: RefCell<Vec<(String, Vec<u8>)>>,
    pub response: RefCell<Option<Response>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub metrics: RefCell<HashMap<Metric, u64>>,
    pub property_reads: RefCell<Vec<String>>,
    /// Every host call made, by name ("property", "headers", "body", "replace",
    /// "remove", "send"), except logging and counters.
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

    /// Every value of a request header, after what the filter did to them.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers.borrow().iter().filter(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
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
        let headers = self.headers.borrow();
        HeaderMap::serialize(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()))).ok_or(HostError("headers (map too large)"))
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

    /// Envoy's header names are case-insensitive (`LowerCaseString`).
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.fail("remove")?;
        self.headers.borrow_mut().retain(|(n, _)| !n.eq_ignore_ascii_case(name));
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
}
