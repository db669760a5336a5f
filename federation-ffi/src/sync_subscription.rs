//! A running subscription through the C ABI: `federation_sync_subscribe` starts consuming into
//! a C store (the callbacks of [`crate::sync_target`]), `federation_sync_subscription_stop`
//! finishes the events in hand and commits them, `federation_sync_subscription_free` releases
//! the handle (aborting a subscription still running, as a crash would).

use std::ffi::c_void;
use std::sync::{Arc, Mutex, PoisonError};

use federation_sync::{Subscription, SyncTarget};

use crate::cancel::CancelState;
use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_t};
use crate::guard::{catch, catch_or};
use crate::input::{Tagged, free_handle, handle, invalid, write_out};
use crate::registry::{UserData, federation_done_callback_t};
use crate::runtime::runtime;
use crate::sync::{federation_sync_t, from_sync, spawn_completing};
use crate::sync_target::{c_target, federation_sync_target_t};

const SUB_TAG: u64 = 0x6665_642d_7375_6231; // "fed-sub1"

/// A running subscription. Free with `federation_sync_subscription_free`.
pub struct federation_sync_subscription_t {
    tag: u64,
    subscription: Mutex<Option<Subscription>>,
}

impl Tagged for federation_sync_subscription_t {
    const TAG: u64 = SUB_TAG;
    const NAME: &'static str = "federation_sync_subscription_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

/// Starts consuming every other cluster's changes into the store `target` (copied), passing
/// `user_data` to its callbacks, and writes the subscription to `out_subscription`.
///
/// Events arrive in order per entity; for each, the library calls `read`, decides (duplicate,
/// causal successor, conflict and its policy), and calls `write` for what is to be stored; the
/// offset is committed after the write answered `OK` or the event was dead-lettered. Calls for
/// one entity never overlap; calls for different entities may run concurrently on different
/// worker threads. On success returns NULL and `target->release(user_data)` runs exactly once
/// when the subscription has ended (stopped or freed) and no callback runs any more; on error
/// (NULL or invalid handle, NULL `read`/`write`, a consumer that cannot be created) nothing is
/// started and `release` never runs.
///
/// # Safety
/// `sync` is a live handle; `target` points to a valid struct (copied); `user_data` is handed
/// to the callbacks on worker threads, concurrently; `out_subscription` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_subscribe(
    sync: *const federation_sync_t,
    target: *const federation_sync_target_t,
    user_data: *mut c_void,
    out_subscription: *mut *mut federation_sync_subscription_t,
) -> *mut federation_error_t {
    catch(|| {
        let bad = |m: &str| invalid(FEDERATION_ERROR_INVALID_REQUEST, m.to_owned());
        // SAFETY: forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?;
        if out_subscription.is_null() {
            return Err(bad("`out_subscription` is NULL"));
        }
        // SAFETY: forwarded from the caller.
        let target = unsafe { c_target(target, user_data) }?;
        let _entered = runtime()?.enter();
        let subscription = match sync
            .sync
            .subscribe(Arc::clone(&target) as Arc<dyn SyncTarget>)
        {
            Ok(subscription) => subscription,
            Err(error) => {
                target.disarm();
                return Err(from_sync(&error));
            }
        };
        let raw = Box::into_raw(Box::new(federation_sync_subscription_t {
            tag: SUB_TAG,
            subscription: Mutex::new(Some(subscription)),
        }));
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_subscription, raw, "out_subscription") }
    })
}

/// Stops the subscription after the events in hand are finished and committed, then calls
/// `callback(user_data, NULL)` once on a worker thread (a second stop completes at once). The
/// handle stays valid: free it with `federation_sync_subscription_free`.
///
/// # Safety
/// `subscription` is a live handle; `user_data` is handed to `callback` on another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_subscription_stop(
    subscription: *const federation_sync_subscription_t,
    callback: federation_done_callback_t,
    user_data: *mut c_void,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let subscription = unsafe { handle(subscription, "subscription") }?;
        let callback = callback.ok_or_else(|| {
            invalid(
                FEDERATION_ERROR_INVALID_REQUEST,
                "`callback` is NULL".to_owned(),
            )
        })?;
        let taken = subscription
            .subscription
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let user_data = UserData(user_data);
        let work = async move {
            if let Some(subscription) = taken {
                subscription.stop().await;
            }
            Ok(())
        };
        let never = Arc::new(CancelState::default());
        spawn_completing(work, never, "stopping the subscription", move |outcome| {
            let error = outcome.err().map_or(std::ptr::null_mut(), Box::into_raw);
            let user_data = user_data;
            // SAFETY: the caller supplied a callback with this signature and a `user_data` it
            // may receive on this thread; ownership of `error` passes to it.
            unsafe { callback(user_data.0, error) };
        })
    })
}

/// Frees a subscription; one still running is aborted (events in hand are not committed and
/// will be delivered again, as after a crash). NULL is a no-op.
///
/// # Safety
/// `subscription` is NULL or a live handle; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_subscription_free(
    subscription: *mut federation_sync_subscription_t,
) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(subscription, |s| s.tag = 0) }
    });
}
