//! Cancel tokens: stop a call that is already running.
//!
//! A caller that gives up (Go context cancelled, request aborted) must stop the upstream work
//! too, or abandoned calls keep connections and breaker permits busy. A token is shared between
//! the caller's handle and the spawned call; cancelling sets a flag and wakes the call, which
//! drops its in-flight future (closing the upstream connection) and completes with
//! `FEDERATION_ERROR_CANCELLED`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::guard::catch_or;
use crate::input::{Tagged, free_handle, handle};

/// The state shared by a token handle and its call.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelState {
    /// Marks the call cancelled and wakes it.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        // notify_one stores a permit when the call is not waiting yet, so no wake-up is lost.
        self.notify.notify_one();
    }

    /// Completes once the call is cancelled.
    pub(crate) async fn cancelled(&self) {
        while !self.cancelled.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

const TAG: u64 = 0x6665_642d_636e_6c31; // "fed-cnl1"

/// A cancel token of one call. Free with `federation_cancel_free` (freeing does not cancel).
pub struct federation_cancel_t {
    tag: u64,
    pub(crate) state: Arc<CancelState>,
}

impl Tagged for federation_cancel_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_cancel_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl federation_cancel_t {
    pub(crate) fn raw(state: Arc<CancelState>) -> *mut Self {
        Box::into_raw(Box::new(Self { tag: TAG, state }))
    }
}

/// A new cancel token for `federation_client_call_blocking` (which runs on the thread that
/// would cancel it, so the token must exist before the call). Free it with
/// `federation_cancel_free`; NULL only if out of memory.
///
/// # Safety
/// Always safe to call, from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn federation_cancel_new() -> *mut federation_cancel_t {
    catch_or(std::ptr::null_mut(), || {
        federation_cancel_t::raw(Arc::new(CancelState::default()))
    })
}

/// Cancels the call of `cancel`: if it has not completed yet, its callback runs soon with a
/// `FEDERATION_ERROR_CANCELLED` error and any upstream request in flight is abandoned. After
/// completion it does nothing. NULL or an invalid handle is ignored.
///
/// # Safety
/// `cancel` is NULL or a live token from `federation_client_call` or `federation_cancel_new`.
/// Thread-safe: may be called
/// from any thread, also concurrently with the callback, but not concurrently with
/// `federation_cancel_free` of the same token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_cancel_cancel(cancel: *const federation_cancel_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        if let Ok(token) = unsafe { handle(cancel, "cancel") } {
            token.state.cancel();
        }
    });
}

/// Frees a cancel token (it does not cancel the call). NULL is a no-op.
///
/// # Safety
/// `cancel` is NULL or a live token; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_cancel_free(cancel: *mut federation_cancel_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(cancel, |t| t.tag = 0) }
    });
}
