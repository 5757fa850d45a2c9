//! The proxy-wasm host functions the filter calls, declared here rather than
//! taken from `proxy_wasm::hostcalls`.
//!
//! Two reasons, both about the request path:
//!
//! - **No panic.** The SDK's wrappers `panic!` on any status they do not
//!   expect (`set_map_value`, `remove_map_value`, `get_property`,
//!   `increment_metric`, `send_http_response`, `log`), and declare the status
//!   as a Rust enum, so a value the enum does not list is undefined
//!   behaviour. A panic aborts the VM and with it every request on the
//!   worker. Here every status is a plain `u32`, and anything but the expected
//!   one is a [`HostError`], which the filter turns into a 403.
//! - **No allocation it does not need.** `get_property` in the SDK takes a
//!   `Vec<&str>` and serializes it into another `Vec` on every call; the
//!   property paths here are serialized into a stack buffer.
//!
//! Buffers the host returns (header map, property value) are allocated by the
//! host through the SDK's exported `proxy_on_memory_allocate`
//! (`Vec::<u8>::with_capacity(size)`, leaked) and owned by this side from
//! then on, exactly as the SDK's own wrappers take them.

use proxy_wasm::types::{BufferType, MapType, Status};

use crate::headers::HeaderMap;
use crate::host::HostError;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_get_property(path_data: *const u8, path_size: usize, return_value_data: *mut *mut u8, return_value_size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize)
        -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_set_property(path_data: *const u8, path_size: usize, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
}

const OK: u32 = Status::Ok as u32;
const CAS_MISMATCH: u32 = Status::CasMismatch as u32;
const COUNTER: u32 = proxy_wasm::types::MetricType::Counter as u32;
const NOT_FOUND: u32 = Status::NotFound as u32;
const REQUEST_HEADERS: u32 = MapType::HttpRequestHeaders as u32;
const REQUEST_TRAILERS: u32 = MapType::HttpRequestTrailers as u32;
const REQUEST_BODY: u32 = BufferType::HttpRequestBody as u32;

/// `Ok` for the status `Ok`; any other status, known or not, is an error naming `what`.
fn check(status: u32, what: &'static str) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError(what))
    }
}

/// Take ownership of a buffer the host allocated and filled, or `None` when it
/// returned none. `what` names the call for the error.
///
/// # Safety
/// `data` must be null or the start of an allocation of exactly `size` bytes
/// made by `proxy_on_memory_allocate` and fully written by the host, referenced
/// by nobody else.
unsafe fn take_host_buffer(data: *mut u8, size: usize, what: &'static str) -> Result<Option<Vec<u8>>, HostError> {
    if data.is_null() {
        // The host allocates nothing for an empty value: null with size 0.
        return if size == 0 { Ok(None) } else { Err(HostError(what)) };
    }
    // SAFETY: as the caller promises: capacity = length = `size`, element type u8.
    Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) }))
}

/// The whole request header map in one host call.
pub fn request_header_map() -> Result<HeaderMap, HostError> {
    header_map(REQUEST_HEADERS)
}

/// The whole request trailer map in one host call (empty when the request has none).
pub fn request_trailer_map() -> Result<HeaderMap, HostError> {
    header_map(REQUEST_TRAILERS)
}

fn header_map(map_type: u32) -> Result<HeaderMap, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes one pointer and one length through the two
    // out-pointers, which point at live locals of the right types.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    if status != OK {
        return Err(HostError("get_header_map_pairs"));
    }
    // SAFETY: on Ok the host returned a buffer it allocated through the SDK's allocator, or none.
    let bytes = unsafe { take_host_buffer(data, size, "get_header_map_pairs (no buffer, non-zero size)") }?;
    Ok(bytes.map(HeaderMap::from_bytes).unwrap_or_default())
}

/// The first `len` bytes of the request body Envoy has buffered for this
/// stream; `Ok(None)` when there is none.
pub fn request_body(len: usize) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes one pointer and one length through the two
    // out-pointers, which point at live locals of the right types.
    let status = unsafe { proxy_get_buffer_bytes(REQUEST_BODY, 0, len, &mut data, &mut size) };
    match status {
        // SAFETY: on Ok the host returned a buffer it allocated through the SDK's allocator, or none.
        OK => unsafe { take_host_buffer(data, size, "get_buffer_bytes (no buffer, non-zero size)") },
        NOT_FOUND => Ok(None),
        _ => Err(HostError("get_buffer_bytes")),
    }
}

/// Longest serialized property path served from the stack; longer ones are refused.
const MAX_PROPERTY_PATH: usize = 128;

/// A property (`["connection", "peer_certificate"]`): `Ok(None)` when the host
/// does not have it.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let mut buffer = [0u8; MAX_PROPERTY_PATH];
    let serialized = property_path(path, &mut buffer).ok_or(HostError("get_property (path too long)"))?;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the path pointer and length describe `serialized`; the host
    // writes one pointer and one length through the out-pointers.
    let status = unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match status {
        // SAFETY: on Ok the host returned a buffer it allocated through the SDK's allocator, or none.
        OK => unsafe { take_host_buffer(data, size, "get_property (no buffer, non-zero size)") },
        NOT_FOUND => Ok(None),
        _ => Err(HostError("get_property")),
    }
}

/// The ABI's form of a property path, the parts joined by NUL, written into
/// `buffer`; `None` if it does not fit.
fn property_path<'b>(path: &[&str], buffer: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = 0usize;
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            *buffer.get_mut(len)? = 0;
            len += 1;
        }
        let end = len.checked_add(part.len())?;
        buffer.get_mut(len..end)?.copy_from_slice(part.as_bytes());
        len = end;
    }
    buffer.get(..len)
}

/// Set a request header, replacing every copy.
pub fn replace_request_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both pointer and length pairs describe live string slices.
    let status = unsafe { proxy_replace_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check(status, "replace_header")
}

/// Add a request header, beside any copy already there.
pub fn add_request_header(name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: both pointer and length pairs describe live string slices.
    let status = unsafe { proxy_add_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check(status, "add_header")
}

/// Remove every copy of a request header.
pub fn remove_request_header(name: &str) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live string slice.
    let status = unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) };
    check(status, "remove_header")
}

/// Remove every copy of a request trailer.
pub fn remove_request_trailer(name: &str) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live string slice.
    let status = unsafe { proxy_remove_header_map_value(REQUEST_TRAILERS, name.as_ptr(), name.len()) };
    check(status, "remove_trailer")
}

/// Add `by` to a counter defined with `define_metric`.
pub fn increment_metric(id: u32, by: u64) -> Result<(), HostError> {
    let by = i64::try_from(by).unwrap_or(i64::MAX);
    // SAFETY: no pointers.
    let status = unsafe { proxy_increment_metric(id, by) };
    check(status, "increment_metric")
}

/// Have the host call the current root context's `on_tick` every
/// `period_ms` (0 stops it). From a root context's callback only: from a
/// stream's, the tick would go to its root context.
pub fn set_tick_period(period_ms: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    let status = unsafe { proxy_set_tick_period_milliseconds(period_ms) };
    check(status, "set_tick_period_milliseconds")
}

/// Answer the request locally instead of forwarding it.
pub fn send_local_response(status_code: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
    // -1 means "not a gRPC response", as the SDK passes.
    local_response(status_code, headers, body, -1)
}

/// Answer a gRPC request locally: Envoy sends a trailers-only response with
/// this `grpc-status`, and adds `headers` (the `grpc-message`) to it.
pub fn send_grpc_local_response(grpc_status: u32, headers: &[(&str, &str)]) -> Result<(), HostError> {
    let grpc_status = i32::try_from(grpc_status).map_err(|_| HostError("send_local_response (grpc status out of range)"))?;
    local_response(200, headers, &[], grpc_status)
}

fn local_response(status_code: u32, headers: &[(&str, &str)], body: &[u8], grpc_status: i32) -> Result<(), HostError> {
    let headers = HeaderMap::serialize(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
        .ok_or(HostError("send_local_response (headers too large)"))?;
    let headers = headers.as_bytes();
    // SAFETY: every pointer and length pair describes a live slice; no details string (null, 0).
    let status = unsafe {
        proxy_send_local_response(status_code, std::ptr::null(), 0, body.as_ptr(), body.len(), headers.as_ptr(), headers.len(), grpc_status)
    };
    check(status, "send_local_response")
}

/// Close the downstream connection of the current network context.
pub fn close_downstream() -> Result<(), HostError> {
    // SAFETY: no pointers; the stream type is the ABI's "downstream" (2).
    let status = unsafe { proxy_close_stream(proxy_wasm::types::StreamType::Downstream as u32) };
    check(status, "close_stream")
}

/// A shared-data value and its CAS token; `(None, 0)` when the key is unset.
/// Shared data is one store per Envoy process (per `vm_id`), seen by every worker.
pub fn shared_get(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: the key pointer and length describe a live slice; the host
    // writes a pointer, a length and a CAS through out-pointers to live locals.
    let status = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        // SAFETY: on Ok the host returned a buffer it allocated through the SDK's allocator, or none.
        OK => Ok((unsafe { take_host_buffer(data, size, "get_shared_data (no buffer, non-zero size)") }?, cas)),
        NOT_FOUND => Ok((None, 0)),
        _ => Err(HostError("get_shared_data")),
    }
}

/// Store a shared-data value if its CAS token is still `cas` (0: unconditionally).
/// `Ok(false)` when another worker changed it first.
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<bool, HostError> {
    // SAFETY: both pointer and length pairs describe live slices.
    let status = unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        OK => Ok(true),
        CAS_MISMATCH => Ok(false),
        _ => Err(HostError("set_shared_data")),
    }
}

/// The proxy's wall clock, in nanoseconds since the Unix epoch.
pub fn now_ns() -> Result<u64, HostError> {
    let mut now: u64 = 0;
    // SAFETY: the host writes one u64 through a pointer to a live local.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut now) };
    check(status, "get_current_time_nanoseconds").map(|()| now)
}

/// Set filter state `wasm.<name>` (Envoy's prefix) on the current stream,
/// readable by access logs (`%FILTER_STATE(wasm.<name>:PLAIN)%`) and CEL (`filter_state`).
pub fn set_filter_state(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: both pointer and length pairs describe live slices.
    let status = unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check(status, "set_property")
}

/// Define a counter by name (Envoy returns the same stat for the same name).
/// Called on the request path for per-rule and per-identity counters, so
/// not through the SDK, whose `define_metric` panics on an unexpected status.
pub fn define_counter(name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: the name pointer and length describe a live slice; the host writes one u32.
    let status = unsafe { proxy_define_metric(COUNTER, name.as_ptr(), name.len(), &mut id) };
    check(status, "define_metric").map(|()| id)
}

/// Write a line to the proxy's log at `level` (a `proxy_wasm::types::LogLevel` as `u32`).
pub fn log(level: u32, message: &str) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live string slice.
    let status = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
    check(status, "log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_are_joined_by_nul_without_a_trailing_one() {
        let mut buffer = [0xffu8; MAX_PROPERTY_PATH];
        assert_eq!(
            property_path(&["connection", "sha256_peer_certificate_digest"], &mut buffer),
            Some(&b"connection\0sha256_peer_certificate_digest"[..])
        );
        assert_eq!(property_path(&["connection_id"], &mut buffer), Some(&b"connection_id"[..]));
        assert_eq!(property_path(&[], &mut buffer), Some(&b""[..]));
    }

    #[test]
    fn a_property_path_that_does_not_fit_is_refused() {
        let mut small = [0u8; 10];
        assert_eq!(property_path(&["connection", "x"], &mut small), None, "11 bytes into 10");
        assert_eq!(property_path(&["0123456789"], &mut small), Some(&b"0123456789"[..]), "exactly full");
        let long = "x".repeat(MAX_PROPERTY_PATH + 1);
        assert_eq!(property_path(&[&long], &mut [0u8; MAX_PROPERTY_PATH]), None);
    }
}
