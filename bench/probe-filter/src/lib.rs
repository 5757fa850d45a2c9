//! Host calls only. The plugin configuration is a comma-separated list of
//! steps, run in order on every request's headers:
//!
//! - `method`, `path`: read the `:method` / `:path` header (bytes)
//! - `digest`: read the `connection.sha256_peer_certificate_digest` property
//! - `set-principal`, `set-rule`: replace `x-mtls-authz-principal` / `-rule`
//! - `remove-dry-run`: remove `x-mtls-authz-dry-run`
//! - `metric`: increment a counter (`wasmcustom.bench_probe.requests`)
//!
//! and, to price alternatives the filter does not use (yet):
//!
//! - `conn-id`: read the top-level `connection_id` property
//! - `all-headers`: read every request header in one call
//! - `absent`: read a request header that is not there (the host finds
//!   nothing, so it does not call back into the VM to allocate a result:
//!   this prices a read without its result copy)
//! - `add-principal`, `add-rule`: add `x-mtls-authz-principal` / `-rule`
//!   (`proxy_add_header_map_value`: no look-up of an existing copy, which a
//!   replace makes first)
//!
//! `STEP*N` repeats a step N times (to price one call above the noise).
//!
//! `all-headers`, `digest`, `set-principal`, `set-rule` and `metric` are the
//! calls mtls-authz makes on an allowed request (`all-headers` through the raw
//! import, as mtls-authz reads the map; the others through the SDK's
//! `hostcalls`, which cost the same host call). Results are read and dropped; a
//! failed call is ignored. Benchmark profiling only.

use std::rc::Rc;

use mtls_authz_policy::outcome::{DRY_RUN_HEADER, PRINCIPAL_HEADER, RULE_HEADER};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

#[derive(Clone, Copy)]
enum Step {
    Method,
    Path,
    Digest,
    SetPrincipal,
    SetRule,
    AddPrincipal,
    AddRule,
    RemoveDryRun,
    Metric,
    ConnId,
    AllHeaders,
    Absent,
}

struct Root {
    steps: Rc<Vec<Step>>,
    metric: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten().unwrap_or_default();
        let text = String::from_utf8_lossy(&config);
        let mut steps = Vec::new();
        for token in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, times) = match token.split_once('*') {
                Some((name, n)) => match n.parse::<usize>() {
                    Ok(n) if n > 0 && n <= 1000 => (name, n),
                    _ => return false,
                },
                None => (token, 1),
            };
            let step = match name {
                "method" => Step::Method,
                "path" => Step::Path,
                "digest" => Step::Digest,
                "set-principal" => Step::SetPrincipal,
                "set-rule" => Step::SetRule,
                "add-principal" => Step::AddPrincipal,
                "add-rule" => Step::AddRule,
                "remove-dry-run" => Step::RemoveDryRun,
                "metric" => Step::Metric,
                "conn-id" => Step::ConnId,
                "all-headers" => Step::AllHeaders,
                "absent" => Step::Absent,
                _ => return false,
            };
            steps.extend(std::iter::repeat_n(step, times));
        }
        if self.metric.is_none() {
            self.metric = hostcalls::define_metric(MetricType::Counter, "bench_probe.requests").ok();
        }
        self.steps = Rc::new(steps);
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { steps: Rc::clone(&self.steps), metric: self.metric }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    steps: Rc<Vec<Step>>,
    metric: Option<u32>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut seen = 0usize;
        for step in self.steps.iter() {
            match step {
                Step::Method => seen += len(hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":method")),
                Step::Path => seen += len(hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":path")),
                Step::Digest => seen += len(hostcalls::get_property(vec!["connection", "sha256_peer_certificate_digest"])),
                Step::SetPrincipal => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        PRINCIPAL_HEADER,
                        Some("spiffe://shop.test/ns/prod/sa/order"),
                    );
                }
                Step::SetRule => {
                    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, RULE_HEADER, Some("orders-create-payment"));
                }
                Step::AddPrincipal => {
                    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, PRINCIPAL_HEADER, "spiffe://shop.test/ns/prod/sa/order");
                }
                Step::AddRule => {
                    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, RULE_HEADER, "orders-create-payment");
                }
                Step::RemoveDryRun => {
                    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, DRY_RUN_HEADER);
                }
                Step::Metric => {
                    if let Some(id) = self.metric {
                        let _ = hostcalls::increment_metric(id, 1);
                    }
                }
                Step::ConnId => seen += len(hostcalls::get_property(vec!["connection_id"])),
                Step::AllHeaders => seen += header_map_len(),
                Step::Absent => seen += len(hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "x-bench-absent")),
            }
        }
        std::hint::black_box(seen);
        Action::Continue
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
}

/// The request header map as one buffer, as mtls-authz reads it (filter/src/abi.rs):
/// the SDK's `get_map_bytes` would also copy every name and value into owned strings.
fn header_map_len() -> usize {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes one pointer and one length through the out-pointers.
    let status = unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) };
    if status != 0 || data.is_null() {
        return 0;
    }
    // SAFETY: the host allocated `size` bytes through the SDK's proxy_on_memory_allocate and filled them.
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    bytes.len()
}

fn len<E>(r: Result<Option<Vec<u8>>, E>) -> usize {
    r.ok().flatten().map_or(0, |v| v.len())
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(Root { steps: Rc::new(Vec::new()), metric: None }) });
}}
