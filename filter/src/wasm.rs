//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out.
//!
//! Deliberately thin: each method forwards to [`crate::root`] or
//! [`crate::http`]. It calls `proxy_wasm::hostcalls` directly instead of the
//! SDK's `Context` helpers, because those `unwrap()` every result (and
//! `get_http_request_header` panics on non-UTF-8 values): a panic aborts the
//! VM, and the filter wants to answer 403 itself wherever it can. The header
//! map is read through the raw `proxy_get_header_map_pairs` import, because
//! the SDK's `get_map_bytes` panics on a status other than `Ok` and on a name
//! that is not UTF-8, and indexes the buffer unchecked.
//!
//! State per VM (one VM per Envoy worker thread, plus the main thread): the
//! metric ids, defined once, and the identity cache, shared by every root
//! context (every filter configuration) in the VM: a certificate parses to the
//! same identity whichever policy judges it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mtls_authz_policy::CompiledPolicy;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use crate::cache::IdentityCache;
use crate::headers::HeaderMap;
use crate::host::{Host, HostError, Level, Metric};
use crate::http::{self, Flow};
use crate::root::PolicyHolder;

/// Metric ids from `define_metric`; `None` where defining failed (counting is best effort).
type MetricIds = [Option<u32>; Metric::ALL.len()];

/// What one VM shares between its contexts.
struct Vm {
    cache: Rc<RefCell<IdentityCache>>,
    metrics: Cell<Option<MetricIds>>,
}

thread_local! {
    static VM: Vm = Vm { cache: Rc::new(RefCell::new(IdentityCache::default())), metrics: Cell::new(None) };
}

/// The metric ids of this VM, defining the metrics on first use. Defining takes
/// a lock in Envoy's stats store, so it happens once per VM, in `on_configure`.
fn metric_ids() -> MetricIds {
    VM.with(|vm| {
        if let Some(ids) = vm.metrics.get() {
            return ids;
        }
        let mut ids: MetricIds = [None; Metric::ALL.len()];
        for metric in Metric::ALL {
            let id = hostcalls::define_metric(MetricType::Counter, metric.name()).ok();
            if let Some(slot) = ids.get_mut(metric.index()) {
                *slot = id;
            }
        }
        vm.metrics.set(Some(ids));
        ids
    })
}

// The import the SDK wraps in `hostcalls::get_map_bytes`. The map type and the
// status are plain `u32`s here, not the SDK's enums: a status the enum does not
// list must be an error, not undefined behaviour.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
}

/// The whole request header map in one host call. The host writes the map
/// into memory it allocates through the SDK's exported
/// `proxy_on_memory_allocate` (a boxed `[u8]` of exactly `size` bytes), and
/// this side owns it from then on, as in the SDK's `get_map_bytes`.
fn request_header_map() -> Result<HeaderMap, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes one pointer and one length through the two
    // out-pointers, which point at live locals of the right types.
    let status = unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) };
    if status != Status::Ok as u32 {
        return Err(HostError("get_header_map_pairs"));
    }
    if data.is_null() {
        // The host's answer for a map without entries: no allocation, size 0.
        return match size {
            0 => Ok(HeaderMap::default()),
            _ => Err(HostError("get_header_map_pairs (no buffer, non-zero size)")),
        };
    }
    // SAFETY: `data` is the start of an allocation of `size` bytes made by
    // `proxy_on_memory_allocate` (`Vec::<u8>::with_capacity(size)`, turned
    // into a boxed slice and leaked), fully written by the host, and not
    // referenced by anyone else: capacity = length = `size`, element type u8.
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    Ok(HeaderMap::from_bytes(bytes))
}

/// [`Host`] over the proxy-wasm ABI, for the context currently being called.
#[derive(Clone, Copy)]
pub struct EnvoyHost {
    metrics: MetricIds,
}

impl Host for EnvoyHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_property(path.to_vec()).map_err(|_| HostError("get_property"))
    }

    fn request_headers(&self) -> Result<HeaderMap, HostError> {
        request_header_map()
    }

    fn replace_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).map_err(|_| HostError("replace_header"))
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).map_err(|_| HostError("remove_header"))
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body)).map_err(|_| HostError("send_local_response"))
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Nowhere to report a failed log call.
        let _ = hostcalls::log(level, message);
    }

    fn increment(&self, metric: Metric) {
        if let Some(Some(id)) = self.metrics.get(metric.index()) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

/// One filter configuration in one VM.
pub struct Root {
    policy: PolicyHolder,
    cache: Rc<RefCell<IdentityCache>>,
    /// Filled in by `on_configure`, then copied into every request.
    host: EnvoyHost,
}

impl Root {
    pub fn new() -> Root {
        Root {
            policy: PolicyHolder::new(),
            cache: VM.with(|vm| Rc::clone(&vm.cache)),
            host: EnvoyHost { metrics: [None; Metric::ALL.len()] },
        }
    }
}

impl Default for Root {
    fn default() -> Self {
        Root::new()
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.host = EnvoyHost { metrics: metric_ids() };
        // An unreadable buffer is treated like a missing one: refused.
        let configuration = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        self.policy.configure(&self.host, configuration.as_deref())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Always Some: the SDK panics on None. Without a policy the context refuses everything.
        Some(Box::new(Request {
            policy: self.policy.snapshot(),
            cache: Rc::clone(&self.cache),
            host: self.host,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP request, holding the policy snapshot it is judged by.
struct Request {
    policy: Option<Rc<CompiledPolicy>>,
    cache: Rc<RefCell<IdentityCache>>,
    host: EnvoyHost,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match http::on_request_headers(&self.host, self.policy.as_deref(), &self.cache) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }
}

/// Register the root context with the SDK; called from `_initialize` when the VM starts.
pub fn register() {
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(Root::new()) });
}
