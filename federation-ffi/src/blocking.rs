//! Blocking calls driven by the calling thread, for callers that wait anyway.
//!
//! **Failure prevented.** A caller that blocks until its call completes (a Go goroutine waiting
//! inside cgo, a C program without an event loop) gains nothing from the asynchronous API but
//! pays its thread hand-offs: calling thread → library worker → (response) → library worker →
//! calling thread, each a wake-up of a sleeping CPU. `federation_client_call_blocking` runs the
//! call on the calling thread instead ([`federation_core::bindings::run_here`]): the thread
//! writes the request, sleeps on the socket and reads the response itself, with connections
//! pooled per thread. It blocks one OS thread per call, so it is meant for a bounded number of
//! concurrent callers (the Go module uses it for at most `FEDERATION_GO_WAITERS` calls at a
//! time and the asynchronous API beyond that).

use std::cell::Cell;
use std::ffi::c_char;
use std::sync::Arc;

use federation_core::bindings::{DrivenError, run_here};

use crate::call::{build_request, federation_call_options_t, federation_header_t, outcome};
use crate::cancel::{CancelState, federation_cancel_t};
use crate::client::federation_client_t;
use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::catch;
use crate::input::{MAX_NAME, c_str, handle, invalid};
use crate::response::federation_response_t;
use crate::runtime::{block_sigpipe_on_this_thread, runtime};

thread_local! {
    static SIGPIPE_BLOCKED: Cell<bool> = const { Cell::new(false) };
}

/// Blocks SIGPIPE on this thread once: the thread now writes to sockets itself (see
/// [`block_sigpipe_on_this_thread`]).
fn block_sigpipe_once() {
    SIGPIPE_BLOCKED.with(|done| {
        if !done.replace(true) {
            block_sigpipe_on_this_thread();
        }
    });
}

/// Runs a call of `method` `path` on logical service `service` on the calling thread and
/// returns when it has completed: NULL with the response written to `*out_response`, or an
/// error (nothing written).
///
/// The calling thread does the call's network I/O itself, with connection pools of its own
/// (kept between its calls), which saves the hand-offs to and from the library's worker
/// threads that `federation_client_call` makes. Everything else is shared with every other
/// call of the client: discovery, balancing, breakers, retry budgets, the cache and metrics.
/// It blocks the thread until the call completes, so use it for a bounded number of concurrent
/// calls and `federation_client_call` beyond that. The first call on a thread blocks SIGPIPE on
/// it (a write to a connection the peer closed then fails with `EPIPE` instead of killing the
/// process) and sets up a small per-thread event loop, released when the thread exits.
///
/// `cancel` is NULL or a token from `federation_cancel_new`: cancelling it from another thread
/// abandons the call (the upstream request too) and makes this function return an error of
/// kind `FEDERATION_ERROR_CANCELLED`; a token cancelled before the call starts ends it at once.
///
/// Errors: invalid input as for `federation_client_call` (kind
/// `FEDERATION_ERROR_INVALID_REQUEST`, also when `out_response` is NULL or when the calling
/// thread is a library worker, e.g. inside a completion callback), and every error the call
/// itself meets (unknown service, no instance, timeout, ...).
///
/// # Safety
/// - As for `federation_client_call` for `client`, `service`, `method`, `path`, `headers`,
///   `headers_len`, `body`, `body_len` and `options` (all borrowed only until this function
///   returns).
/// - `cancel` is NULL or a live token, not freed before this function returns.
/// - `out_response` is valid for a write.
///
/// Thread-safe: any number of threads may make blocking calls on one client concurrently, also
/// alongside asynchronous calls.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_call_blocking(
    client: *const federation_client_t,
    service: *const c_char,
    method: *const c_char,
    path: *const c_char,
    headers: *const federation_header_t,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    options: *const federation_call_options_t,
    cancel: *const federation_cancel_t,
    out_response: *mut *mut federation_response_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        if out_response.is_null() {
            return Err(invalid(kind, "`out_response` is NULL".to_owned()));
        }
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = unsafe { handle(client, "client") }?;
        let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?;
        let request =
            unsafe { build_request(method, path, headers, headers_len, body, body_len, options) }?;
        let cancel = if cancel.is_null() {
            Arc::new(CancelState::default())
        } else {
            Arc::clone(&unsafe { handle(cancel, "cancel") }?.state)
        };
        let rt = runtime()?;
        block_sigpipe_once();
        let call = outcome(client.client.clone(), service.to_owned(), request, cancel);
        let (response, error) = run_here(rt.handle(), call).map_err(|e| match e {
            DrivenError::InsideRuntime => invalid(kind, e.to_string()),
            DrivenError::Runtime(_) => {
                federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string())
            }
        })?;
        if error.is_null() {
            // SAFETY: non-NULL (checked above) and valid for a write per the caller.
            unsafe { out_response.write(response) };
            Ok(())
        } else {
            // SAFETY: `outcome` hands over exactly one owned pointer: this error.
            Err(unsafe { Box::from_raw(error) })
        }
    })
}
