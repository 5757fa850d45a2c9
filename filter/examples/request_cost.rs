//! The filter's own work on an allowed request, without Envoy: the
//! benchmark's request (`POST /api/payment/create` from `CN=order-service`,
//! a cached certificate) decided N times against a host that answers at
//! once and records nothing, so that callgrind counts the filter's and the
//! engine's instructions alone, by function. In Envoy the same code runs
//! JIT-compiled and costs more (bench/README.md, "Issue #19").
//!
//! ```sh
//! cargo build --release -p mtls-authz-filter --example request_cost
//! valgrind --tool=callgrind target/release/examples/request_cost envoy/policy.json 100000
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```
//!
//! Run it with N = 0 too: the difference is the per-request cost.
use std::cell::RefCell;
use std::hint::black_box;

use mtls_authz_filter::cache::IdentityCache;
use mtls_authz_filter::headers::HeaderMap;
use mtls_authz_filter::host::{Host, HostError, Level, Metric};
use mtls_authz_filter::http::{on_request_headers, Flow};
use mtls_authz_filter::rule_counters::RuleCounterIds;
use mtls_authz_policy::metrics::Count;
use mtls_authz_policy::{CompiledPolicy, Identity};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

/// A host with the benchmark request's header map and certificate; writes and counters go nowhere.
struct Lean {
    map: Vec<u8>,
    digest: Vec<u8>,
    pem: Vec<u8>,
    ids: RefCell<RuleCounterIds>,
}

impl Host for Lean {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(Some(if path.last() == Some(&"peer_certificate") { self.pem.clone() } else { self.digest.clone() }))
    }
    fn request_headers(&self) -> Result<HeaderMap, HostError> {
        Ok(HeaderMap::from_bytes(self.map.clone()))
    }
    fn request_body(&self, _: usize) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
    fn replace_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        black_box((name, value));
        Ok(())
    }
    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        black_box((name, value));
        Ok(())
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        black_box(name);
        Ok(())
    }
    fn request_trailers(&self) -> Result<HeaderMap, HostError> {
        Ok(HeaderMap::default())
    }
    fn remove_request_trailer(&self, name: &str) -> Result<(), HostError> {
        black_box(name);
        Ok(())
    }
    fn send_response(&self, _: u32, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn send_grpc_response(&self, _: u32, _: &[(&str, &str)]) -> Result<(), HostError> {
        Ok(())
    }
    fn close_downstream(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn log(&self, _: Level, m: &str) {
        black_box(m);
    }
    fn increment(&self, m: Metric) {
        black_box(m);
    }
    fn counter(&self, _: &str, _: bool) -> Option<u32> {
        Some(1)
    }
    fn rule_counter(&self, key: &str, count: Count, name: &dyn Fn() -> String) -> Option<u32> {
        self.ids.borrow_mut().get_or_define(key, count, || self.counter(&name(), true))
    }
    fn increment_counter(&self, id: u32) {
        black_box(id);
    }
    fn shared_get(&self, _: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok((None, 0))
    }
    fn shared_set(&self, _: &str, _: &[u8], _: u32) -> Result<bool, HostError> {
        Ok(true)
    }
    fn now_ns(&self) -> Result<u64, HostError> {
        Ok(0)
    }
    fn vm_memory_bytes(&self) -> Option<u64> {
        None
    }
    fn set_filter_state(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, policy, n] = args.as_slice() else { return Err("usage: request_cost POLICY.json N".into()) };
    let n: usize = n.parse()?;
    let policy = CompiledPolicy::from_json(&std::fs::read_to_string(policy)?).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "order-service");
    params.distinguished_name = dn;
    let pem = params.self_signed(&KeyPair::generate()?)?.pem();
    let digest = Identity::from_pem(pem.as_bytes())?.sha256;
    // What the benchmark's client sidecar sends the server Envoy.
    let pairs: [(&[u8], &[u8]); 7] = [
        (b":authority", b"localhost:10000"),
        (b":path", b"/api/payment/create"),
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b"x-forwarded-proto", b"https"),
        (b"x-request-id", b"2f7c1e8a-8a3c-4a7e-9d55-0b6f8f0e9a11"),
        (b"x-envoy-expected-rq-timeout-ms", b"15000"),
    ];
    let map = HeaderMap::serialize(pairs).ok_or("header map")?.as_bytes().to_vec();
    let host = Lean { map, digest: digest.into_bytes(), pem: pem.into_bytes(), ids: RefCell::default() };
    let cache = RefCell::new(IdentityCache::default());
    let allowed = (0..n).filter(|_| on_request_headers(&host, Some(&policy), &cache, true) == Flow::Continue).count();
    if allowed != n {
        return Err(format!("{allowed} of {n} requests allowed: the policy does not allow the benchmark request").into());
    }
    println!("{n} requests allowed");
    Ok(())
}
