//! Calls: copy the request, poll it once, spawn it on the runtime if it has to wait, complete
//! through the callback.
//!
//! **Failure prevented.** A blocking call API costs the caller one OS thread per in-flight
//! call (for Go, one pinned thread per goroutine inside cgo). Here `federation_client_call`
//! validates and copies its inputs, polls the call once on the calling thread (a call that
//! needs no I/O, such as a cache hit or an unknown service, completes right there), spawns it
//! on the global runtime otherwise and returns without waiting; when the call finishes, the
//! callback is invoked exactly once with either a response or an error. A cancel token races the call: cancelling drops the in-flight future
//! (abandoning the upstream request) and completes with `FEDERATION_ERROR_CANCELLED`. A panic
//! inside the call is caught and completes the callback with `FEDERATION_ERROR_INTERNAL`, so a
//! caller is never left waiting.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use federation_core::client::{FederatedServiceClient, Request};
use federation_core::error::Error;
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue};
use tokio::runtime::Runtime;

use crate::cancel::{CancelState, federation_cancel_t};
use crate::client::federation_client_t;
use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::{catch, panic_message};
use crate::input::{
    MAX_BODY, MAX_HEADER_BYTES, MAX_HEADERS, MAX_NAME, MAX_PATH, bytes, c_str, c_str_list, handle,
    invalid, opt_c_str,
};
use crate::response::federation_response_t;
use crate::runtime::runtime;

/// One header field as a pair of byte views (not NUL-terminated). Used for request headers
/// (borrowed for the duration of `federation_client_call`) and response headers (borrowed from
/// the response).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_header_t {
    /// Header name bytes (ASCII token).
    pub name: *const u8,
    /// Length of `name`.
    pub name_len: usize,
    /// Header value bytes (visible ASCII or obs-text; no CR/LF).
    pub value: *const u8,
    /// Length of `value`.
    pub value_len: usize,
}

/// Per-call options. Zeroed fields mean "use the service's configured default".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_call_options_t {
    /// Total deadline across all attempts in milliseconds; 0: the service's `timeout.total`.
    pub timeout_ms: u64,
    /// Per-attempt timeout in milliseconds; 0: the service's `timeout.attempt`.
    pub attempt_timeout_ms: u64,
    /// 1: may be retried after reaching a server; 0: not; any other value: by method.
    pub idempotent: i32,
    /// Send only to this cluster (no failover); NULL: automatic ranking.
    pub cluster: *const c_char,
    /// Instance tags for this call instead of the service's `tags` (e.g. `model=v3`):
    /// `tags_count` NUL-terminated strings one after another (`"model=v3\0zone=a\0"`). NULL: the
    /// service's tags; non-NULL with `tags_count` 0: no tag filter.
    pub tags: *const c_char,
    /// Number of strings at `tags` (at most 64).
    pub tags_count: usize,
}

/// Completion callback: exactly one of `response` and `error` is non-NULL and owned by the
/// callee (free it). Runs on a library worker thread, or on the calling thread before
/// `federation_client_call` returns when the call completed without waiting: return quickly
/// and do not block, take no lock the caller may hold while calling `federation_client_call`,
/// and do not call `federation_client_free` or sandbox functions from it.
pub type federation_callback_t = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        response: *mut federation_response_t,
        error: *mut federation_error_t,
    ),
>;

/// The caller's opaque pointer, handed back on a worker thread (or the calling thread).
struct UserData(*mut c_void);

// SAFETY: `federation_client_call` documents that `user_data` is passed to the callback on
// another thread; the caller guarantees that is sound for its data.
unsafe impl Send for UserData {}

fn invalid_request(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INVALID_REQUEST, message)
}

/// Checks the C inputs of a call (method, path, headers, body, options) and builds the core
/// request from them.
///
/// # Safety
/// As for `federation_client_call`.
pub(crate) unsafe fn build_request(
    method: *const c_char,
    path: *const c_char,
    headers: *const federation_header_t,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    options: *const federation_call_options_t,
) -> Result<Request, Box<federation_error_t>> {
    let kind = FEDERATION_ERROR_INVALID_REQUEST;
    // SAFETY (these three reads): forwarded from the caller's guarantees.
    let method = unsafe { c_str(method, "method", MAX_NAME, kind) }?;
    let path = unsafe { c_str(path, "path", MAX_PATH, kind) }?;
    let body = unsafe { bytes(body, body_len, "body", MAX_BODY) }?;
    let mut request =
        Request::try_new(method, path).map_err(|e| federation_error_t::from_core(&e))?;
    if headers_len > MAX_HEADERS {
        return Err(invalid_request(format!(
            "{headers_len} headers given; the limit is {MAX_HEADERS}"
        )));
    }
    if headers_len > 0 && headers.is_null() {
        return Err(invalid_request(format!(
            "`headers` is NULL but `headers_len` is {headers_len}"
        )));
    }
    for i in 0..headers_len {
        // SAFETY: the caller guarantees `headers_len` readable elements.
        let h = unsafe { headers.add(i).read() };
        // SAFETY: the caller guarantees each view is readable.
        let name = unsafe { bytes(h.name, h.name_len, "header name", MAX_HEADER_BYTES) }?;
        // SAFETY: as above.
        let value = unsafe { bytes(h.value, h.value_len, "header value", MAX_HEADER_BYTES) }?;
        let name = HeaderName::from_bytes(name).map_err(|_| {
            invalid_request(format!(
                "header {i}: invalid name {:?}",
                String::from_utf8_lossy(name)
            ))
        })?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| invalid_request(format!("header `{name}`: invalid value")))?;
        request.headers_mut().append(name, value);
    }
    request.set_body(body.to_vec());
    // SAFETY: NULL or a valid options struct per the caller.
    if let Some(options) = unsafe { options.as_ref() } {
        if options.timeout_ms > 0 {
            request.set_timeout(Duration::from_millis(options.timeout_ms));
        }
        if options.attempt_timeout_ms > 0 {
            request.set_attempt_timeout(Duration::from_millis(options.attempt_timeout_ms));
        }
        match options.idempotent {
            0 => request.set_idempotent(false),
            1 => request.set_idempotent(true),
            _ => {}
        }
        // SAFETY: NULL or a NUL-terminated string per the caller.
        if let Some(cluster) = unsafe { opt_c_str(options.cluster, "options.cluster", MAX_NAME) }? {
            request.set_cluster(cluster);
        }
        // SAFETY: NULL or `tags_count` consecutive NUL-terminated strings per the caller.
        let tags =
            unsafe { c_str_list(options.tags, options.tags_count, "options.tags", MAX_NAME) }?;
        if let Some(tags) = tags {
            request.set_tags(tags);
        }
    }
    Ok(request)
}

/// Runs one call to completion (or cancellation) and converts its outcome into exactly one of
/// an owned response and an owned error.
pub(crate) async fn outcome(
    client: FederatedServiceClient,
    service: String,
    request: Request,
    cancel: Arc<CancelState>,
) -> (*mut federation_response_t, *mut federation_error_t) {
    // Pinned where it is made: `select!` then polls it through a reference instead of moving
    // the whole call future (a few KiB) into its own state.
    let call =
        std::pin::pin!(std::panic::AssertUnwindSafe(client.call(&service, request)).catch_unwind());
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(Err(Error::cancelled(service.clone()))),
        outcome = call => outcome,
    };
    match outcome {
        Ok(Ok(response)) => (federation_response_t::raw(response), std::ptr::null_mut()),
        Ok(Err(error)) => (
            std::ptr::null_mut(),
            Box::into_raw(federation_error_t::from_core(&error)),
        ),
        Err(payload) => (
            std::ptr::null_mut(),
            federation_error_t::raw(
                FEDERATION_ERROR_INTERNAL,
                format!(
                    "internal panic during the call: {}",
                    panic_message(&*payload)
                ),
            ),
        ),
    }
}

/// Runs one call to completion and hands the outcome to the callback.
async fn run(
    client: FederatedServiceClient,
    service: String,
    request: Request,
    cancel: Arc<CancelState>,
    callback: unsafe extern "C" fn(
        *mut c_void,
        *mut federation_response_t,
        *mut federation_error_t,
    ),
    user_data: UserData,
) {
    let (response, error) = outcome(client, service, request, cancel).await;
    // SAFETY: the caller of `federation_client_call` supplied a callback with this signature
    // and a `user_data` it may receive on this thread; ownership of the pointers passes to it.
    unsafe { callback(user_data.0, response, error) };
}

/// Polls `call` once on the calling thread and hands it to the runtime only when it has to
/// wait, at its first wake-up ([`federation_core::bindings::poll_then_spawn`]).
///
/// **Failure prevented.** Handing every call to a worker thread costs two thread hand-offs
/// (caller -> worker, worker -> the thread the caller waits on), tens of microseconds on a
/// loaded machine, even for a call that never waits: a cache hit, an unknown service, a circuit
/// that is open. Polled here first, such a call completes (and runs its callback) before
/// `federation_client_call` returns; a call that waits for I/O has already started its work
/// (picked an instance, queued its request on a connection) and moves to the worker that
/// wakes it, without a wake-up of its own.
fn start(rt: &Runtime, call: BoxedCall) {
    federation_core::bindings::poll_then_spawn_boxed(rt.handle(), call);
}

/// A call's future, boxed where it is made (it is a few KiB: passing it on by value would copy
/// it each time).
pub(crate) type BoxedCall = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a call of `method` `path` on logical service `service` and returns without waiting
/// for it.
///
/// On success returns NULL: `callback(user_data, response, error)` is invoked exactly once when
/// the call completes (also after cancellation, and also if the client handle is freed
/// meanwhile). A call that completes without waiting for I/O (a cache hit, an unknown service,
/// an open circuit) invokes it on the calling thread before this function returns; any other
/// call continues on a library worker thread, which invokes it there. When `out_cancel` is not NULL a cancel token
/// is written there (free it with `federation_cancel_free`, after the callback or whenever it
/// is no longer needed).
///
/// On invalid input (NULL or invalid handle, NULL callback, invalid UTF-8, unknown method,
/// oversized input, bad header) returns an error of kind `FEDERATION_ERROR_INVALID_REQUEST`; the
/// callback is then never invoked and nothing is written to `out_cancel`. Errors the call itself
/// meets (unknown service, no instance, timeout, ...) arrive through the callback.
///
/// Limits: names 256 bytes, path 16 KiB, 512 headers of 64 KiB each, body 256 MiB.
///
/// # Safety
/// - `client` is a live client (not concurrently being freed).
/// - `service`, `method` (e.g. `"GET"`) and `path` (e.g. `"/api/v1/users/42?x=1"`) are
///   NUL-terminated strings.
/// - `headers` points to `headers_len` elements (may be NULL when `headers_len` is 0) whose
///   views are readable; `body` points to `body_len` bytes (may be NULL when 0).
/// - `options` is NULL (all defaults) or a valid options struct.
/// - All inputs are borrowed only until this function returns; they are copied.
/// - `user_data` is handed to `callback` on this or another thread; the caller must make that
///   sound.
/// - `out_cancel` is NULL or valid for a write.
///
/// Thread-safe: any number of threads may start calls on one client concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_call(
    client: *const federation_client_t,
    service: *const c_char,
    method: *const c_char,
    path: *const c_char,
    headers: *const federation_header_t,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    options: *const federation_call_options_t,
    callback: federation_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller's guarantees.
        let (call, cancel) = unsafe {
            prepare(
                client,
                service,
                method,
                path,
                headers,
                headers_len,
                body,
                body_len,
                options,
                callback,
                user_data,
            )
        }?;
        start(runtime()?, call);
        // SAFETY: forwarded from the caller.
        unsafe { give_cancel(out_cancel, cancel) };
        Ok(())
    })
}

/// Writes the call's cancel token to `out_cancel` unless it is NULL.
///
/// # Safety
/// `out_cancel` is NULL or valid for a write.
pub(crate) unsafe fn give_cancel(
    out_cancel: *mut *mut federation_cancel_t,
    cancel: Arc<CancelState>,
) {
    if !out_cancel.is_null() {
        // SAFETY: non-NULL and valid for a write per the caller.
        unsafe { out_cancel.write(federation_cancel_t::raw(cancel)) };
    }
}

/// Checks and copies a call's inputs (see `federation_client_call`) into the future that runs
/// it and completes through `callback`, and the call's cancel state.
///
/// # Safety
/// As for `federation_client_call`.
#[expect(
    clippy::too_many_arguments,
    reason = "the C ABI's parameter list, checked here once"
)]
pub(crate) unsafe fn prepare(
    client: *const federation_client_t,
    service: *const c_char,
    method: *const c_char,
    path: *const c_char,
    headers: *const federation_header_t,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    options: *const federation_call_options_t,
    callback: federation_callback_t,
    user_data: *mut c_void,
) -> Result<(BoxedCall, Arc<CancelState>), Box<federation_error_t>> {
    let kind = FEDERATION_ERROR_INVALID_REQUEST;
    // SAFETY (all reads below): forwarded from the caller's guarantees.
    let client = unsafe { handle(client, "client") }?;
    let callback = callback.ok_or_else(|| invalid_request("`callback` is NULL".to_owned()))?;
    let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?;
    let request =
        unsafe { build_request(method, path, headers, headers_len, body, body_len, options) }?;
    let cancel = Arc::new(CancelState::default());
    let call = Box::pin(run(
        client.client.clone(),
        service.to_owned(),
        request,
        Arc::clone(&cancel),
        callback,
        UserData(user_data),
    ));
    Ok((call, cancel))
}
