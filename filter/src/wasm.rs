//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out.
//!
//! Deliberately thin: each method forwards to [`crate::root`] or
//! [`crate::http`]. Host calls on the request path go through [`crate::abi`],
//! not the SDK's `Context` helpers (which `unwrap()` every result) nor its
//! `hostcalls` (which panic on an unexpected status): a panic aborts the VM,
//! and the filter wants to answer 403 itself wherever it can. Start-up calls
//! (`define_metric`, reading the configuration) still use `hostcalls`.
//!
//! State per VM (one VM per Envoy worker thread, plus the main thread): the
//! metric ids, defined once, the counts not yet handed to Envoy
//! ([`crate::pending`]: flushed on each root context's tick and when a root
//! context goes away), and the identity cache, shared by every root context
//! (every filter configuration) in the VM: a certificate parses to the same
//! identity whichever policy judges it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mtls_authz_policy::CompiledPolicy;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType};

use crate::abi;

use crate::cache::IdentityCache;
use crate::headers::HeaderMap;
use crate::host::{Host, HostError, Level, Metric};
use crate::http::{self, Flow, Held};
use crate::network::{self, ConnFlow, ConnState, NETWORK_ROOT_ID};
use crate::pending::{PendingCounts, FLUSH_PERIOD_MS};
use crate::root::PolicyHolder;
use crate::rule_counters::RuleCounterIds;
use mtls_authz_policy::metrics::Count;

/// Metric ids from `define_metric`; `None` where defining failed (counting is best effort).
type MetricIds = [Option<u32>; Metric::ALL.len()];

/// What one VM shares between its contexts.
struct Vm {
    cache: Rc<RefCell<IdentityCache>>,
    metrics: Cell<Option<MetricIds>>,
    /// Counters named at run time (per rule, per identity), by name. Bounded
    /// by the engine: it names at most the rules' and `max_identities`' counters.
    named: RefCell<rustc_hash::FxHashMap<Box<str>, u32>>,
    /// The per-rule ones again, by rule key: found without building a name.
    rule_counters: RefCell<RuleCounterIds>,
    /// Counts summed since the last flush, and how many root contexts tick.
    pending: RefCell<PendingCounts>,
}

thread_local! {
    static VM: Vm = Vm {
        cache: Rc::new(RefCell::new(IdentityCache::default())),
        metrics: Cell::new(None),
        named: RefCell::new(rustc_hash::FxHashMap::default()),
        rule_counters: RefCell::new(RuleCounterIds::default()),
        pending: RefCell::new(PendingCounts::default()),
    };
}

/// Count one for metric `id`: summed until the next flush while a tick will
/// come, else handed to Envoy now.
fn count(id: u32) {
    let summed = VM.with(|vm| vm.pending.try_borrow_mut().is_ok_and(|mut p| p.add(id)));
    if !summed {
        let _ = abi::increment_metric(id, 1);
    }
}

/// Hand every summed count to Envoy.
fn flush() {
    let _ = VM.try_with(|vm| {
        let Ok(mut pending) = vm.pending.try_borrow_mut() else { return };
        if pending.is_empty() {
            return;
        }
        for (id, sum) in pending.drain() {
            // Nowhere to report a failed count.
            let _ = abi::increment_metric(id, sum);
        }
    });
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

/// [`Host`] over the proxy-wasm ABI, for the context currently being called.
#[derive(Clone, Copy)]
pub struct EnvoyHost {
    metrics: MetricIds,
}

impl Host for EnvoyHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        abi::property(path)
    }

    fn request_headers(&self) -> Result<HeaderMap, HostError> {
        abi::request_header_map()
    }

    fn request_body(&self, len: usize) -> Result<Option<Vec<u8>>, HostError> {
        abi::request_body(len)
    }

    fn replace_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        abi::replace_request_header(name, value)
    }

    fn add_request_header(&self, name: &str, value: &str) -> Result<(), HostError> {
        abi::add_request_header(name, value)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        abi::remove_request_header(name)
    }

    fn request_trailers(&self) -> Result<HeaderMap, HostError> {
        abi::request_trailer_map()
    }

    fn remove_request_trailer(&self, name: &str) -> Result<(), HostError> {
        abi::remove_request_trailer(name)
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        abi::send_local_response(status, headers, body)
    }

    fn send_grpc_response(&self, grpc_status: u32, headers: &[(&str, &str)]) -> Result<(), HostError> {
        abi::send_grpc_local_response(grpc_status, headers)
    }

    fn close_downstream(&self) -> Result<(), HostError> {
        abi::close_downstream()
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        // Nowhere to report a failed log call.
        let _ = abi::log(level as u32, message);
    }

    fn increment(&self, metric: Metric) {
        if let Some(Some(id)) = self.metrics.get(metric.index()) {
            count(*id);
        }
    }

    fn counter(&self, name: &str, define: bool) -> Option<u32> {
        VM.with(|vm| {
            let mut named = vm.named.try_borrow_mut().ok()?;
            if let Some(id) = named.get(name) {
                return Some(*id);
            }
            if !define {
                return None;
            }
            let id = abi::define_counter(name).ok()?;
            named.insert(name.into(), id);
            Some(id)
        })
    }

    fn rule_counter(&self, key: &str, count: Count, name: &dyn Fn() -> String) -> Option<u32> {
        VM.with(|vm| vm.rule_counters.try_borrow_mut().ok()?.get_or_define(key, count, || self.counter(&name(), true)))
    }

    fn increment_counter(&self, id: u32) {
        count(id);
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        abi::shared_get(key)
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<bool, HostError> {
        abi::shared_set(key, value, cas)
    }

    fn now_ns(&self) -> Result<u64, HostError> {
        abi::now_ns()
    }

    fn set_filter_state(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::set_filter_state(name, value)
    }

    fn vm_memory_bytes(&self) -> Option<u64> {
        #[cfg(target_arch = "wasm32")]
        return Some(core::arch::wasm32::memory_size(0) as u64 * 65536);
        #[cfg(not(target_arch = "wasm32"))]
        None
    }
}

/// One filter configuration in one VM.
pub struct Root {
    policy: PolicyHolder,
    cache: Rc<RefCell<IdentityCache>>,
    /// Filled in by `on_configure`, then copied into every request.
    host: EnvoyHost,
    /// Configured as a network filter (`root_id` [`NETWORK_ROOT_ID`]): the
    /// contexts Envoy asks for are connections, not HTTP streams.
    network: bool,
    /// This root context's flush tick is running (counted in `Vm::pending`).
    ticks: bool,
}

impl Root {
    pub fn new() -> Root {
        Root {
            policy: PolicyHolder::new(),
            cache: VM.with(|vm| Rc::clone(&vm.cache)),
            host: EnvoyHost { metrics: [None; Metric::ALL.len()] },
            network: false,
            ticks: false,
        }
    }

    /// Start the flush tick, once; if the host will not tick, counts go to it one by one.
    fn start_ticking(&mut self) {
        if self.ticks || abi::set_tick_period(FLUSH_PERIOD_MS).is_err() {
            return;
        }
        self.ticks = VM.with(|vm| vm.pending.try_borrow_mut().map(|mut p| p.tick_started()).is_ok());
    }
}

/// The SDK drops a root context when the host deletes it (the filter
/// configuration is gone, or the VM shuts down): its tick stops, so what is
/// summed goes to Envoy now.
impl Drop for Root {
    fn drop(&mut self) {
        if self.ticks {
            let _ = VM.try_with(|vm| vm.pending.try_borrow_mut().map(|mut p| p.tick_stopped()));
        }
        flush();
    }
}

impl Default for Root {
    fn default() -> Self {
        Root::new()
    }
}

impl Context for Root {}

/// Like [`Request`]'s: `on_log` and `on_done` are not exported from the built
/// module (filter/trim-wasm.py), so implementing them here needs that list changed.
impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.host = EnvoyHost { metrics: metric_ids() };
        self.start_ticking();
        // An unreadable buffer is treated like a missing one: refused.
        let configuration = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        self.network = abi::property(&["plugin_root_id"]).ok().flatten().is_some_and(|id| id == NETWORK_ROOT_ID.as_bytes());
        let loaded = self.policy.configure(&self.host, configuration);
        let accepted = loaded && (!self.network || network::accept_policy(&self.host, self.policy.snapshot().as_deref()));
        // A VM whose configuration is refused is torn down without another
        // callback: what this one counted (`policy_rejected`) goes now.
        flush();
        accepted
    }

    fn on_tick(&mut self) {
        flush();
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Connection {
            policy: self.policy.snapshot(),
            cache: Rc::clone(&self.cache),
            host: self.host,
            state: ConnState::default(),
        }))
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Always Some: the SDK panics on None. Without a policy the context refuses everything.
        Some(Box::new(Request { policy: self.policy.snapshot(), cache: Rc::clone(&self.cache), host: self.host, reading_body: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.network { ContextType::StreamContext } else { ContextType::HttpContext })
    }
}

/// One HTTP request, holding the policy snapshot it is judged by.
struct Request {
    policy: Option<Rc<CompiledPolicy>>,
    cache: Rc<RefCell<IdentityCache>>,
    host: EnvoyHost,
    /// Set while the request's body is held ([`Flow::ReadBody`]).
    reading_body: Option<Box<Held>>,
}

impl Request {
    /// Translate what a body or trailer callback decided into what Envoy is
    /// told: pausing there buffers the body (StopIterationAndBuffer).
    fn act(&mut self, flow: Flow) -> Action {
        match flow {
            Flow::Continue => {
                self.reading_body = None;
                Action::Continue
            }
            Flow::Stop => {
                self.reading_body = None;
                Action::Pause
            }
            Flow::Buffer | Flow::ReadBody(_) => Action::Pause,
        }
    }
}

impl Context for Request {}

/// Request headers, and the request body for the few requests held to read
/// it (a request that is not held costs one early return per body part);
/// request trailers, which Envoy hands over only when a request has them.
/// filter/trim-wasm.py removes the exports of the callbacks left to the
/// SDK's defaults (response headers, response body and trailers, log,
/// done), so that Envoy does not call into the VM for them on every request. Implementing one of them here means taking it off the
/// script's `UNUSED_CALLBACKS` list, or Envoy will never call it.
impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        match http::on_request_headers(&self.host, self.policy.as_deref(), &self.cache, end_of_stream) {
            // Pausing here would stop the whole stream, body callbacks included
            // (the host turns a paused header callback into StopAllIteration).
            Flow::ReadBody(held) => {
                self.reading_body = Some(held);
                Action::Continue
            }
            Flow::Continue | Flow::Buffer => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(held) = self.reading_body.as_deref() else { return Action::Continue };
        let flow = http::on_request_body(&self.host, self.policy.as_deref(), held, body_size, end_of_stream);
        self.act(flow)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let flow = match self.reading_body.as_deref() {
            Some(held) => http::on_request_trailers(&self.host, self.policy.as_deref(), held),
            None => http::on_forwarded_request_trailers(&self.host, self.policy.as_deref()),
        };
        self.act(flow)
    }
}

/// One TCP connection (L4 mode), holding the policy snapshot it is judged by.
struct Connection {
    policy: Option<Rc<CompiledPolicy>>,
    cache: Rc<RefCell<IdentityCache>>,
    host: EnvoyHost,
    state: ConnState,
}

fn action(flow: ConnFlow) -> Action {
    match flow {
        ConnFlow::Continue => Action::Continue,
        ConnFlow::Stop => Action::Pause,
    }
}

impl Context for Connection {}

impl StreamContext for Connection {
    fn on_new_connection(&mut self) -> Action {
        action(network::on_new_connection())
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        action(network::on_downstream_data(&self.host, self.policy.as_deref(), &self.cache, &mut self.state, data_size, end_of_stream))
    }

    fn on_upstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        action(network::on_upstream_data(self.state))
    }
}

/// Register the root context with the SDK; called from `_initialize` when the VM starts.
pub fn register() {
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(Root::new()) });
}
