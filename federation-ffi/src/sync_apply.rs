//! Recording the service's own published change in its store through the C target, the way the
//! subscriber applies remote ones.
//!
//! **Failure prevented.** A service that stores the published state directly overwrites a
//! remote change its subscriber applied between the publish and that store: the local copy
//! then lacks a change the other cluster keeps. `federation_sync_apply_local` runs the change
//! through the same read, decide and compare-and-set write as the subscriber, so a remote change
//! that landed in between is kept (resolved by the type's policy, the same way on both sides).

use std::ffi::{c_char, c_void};

use federation_sync::model::{ChangeEvent, Effect, EntityState};
use serde::Serialize;

use crate::cancel::federation_cancel_t;
use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t,
};
use crate::guard::catch;
use crate::input::{MAX_BODY, c_str, handle, invalid};
use crate::registry::{UserData, cancel_token};
use crate::runtime::runtime;
use crate::sync::{
    federation_sync_t, federation_text_callback_t, from_sync, spawn_completing, split,
};
use crate::sync_target::{c_target, federation_sync_target_t};
use crate::text::federation_string_t;

/// What recording the change did, as C receives it.
#[derive(Serialize)]
struct DecisionJson<'a> {
    effect: Effect,
    state: Option<&'a EntityState>,
    conflict: bool,
}

/// Records a change published by this process (`event_json`: the `event` of
/// `federation_sync_publish`'s result) in the store `target`, through the same read, decide and
/// compare-and-set write the subscriber uses; returns at once.
///
/// On success returns NULL, later calls `callback(user_data, text, error)` exactly once on a
/// worker thread with `{"effect": "applied"|"merged"|"superseded"|"duplicate", "state": <what
/// was written, or null>, "conflict": bool}`, and runs `target->release(target_user_data)`
/// once the library is done with the target. A target error arrives as `INTERNAL` with the
/// target's reason (it is not retried); cancelling as `CANCELLED`. Invalid input (NULL handle,
/// callback, `read`/`write`; malformed event JSON) returns an `INVALID_REQUEST` error: the
/// callback and `release` then never run.
///
/// # Safety
/// `sync` is a live handle; `target` points to a valid struct (copied); `target_user_data` is
/// handed to its callbacks on worker threads; `event_json` is a NUL-terminated string, borrowed
/// for this call only; `user_data` is handed to `callback` on another thread; `out_cancel` is
/// NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_apply_local(
    sync: *const federation_sync_t,
    target: *const federation_sync_target_t,
    target_user_data: *mut c_void,
    event_json: *const c_char,
    callback: federation_text_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (both reads): forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?.sync.clone();
        let json = unsafe { c_str(event_json, "event_json", MAX_BODY, kind) }?;
        let callback = callback.ok_or_else(|| invalid(kind, "`callback` is NULL".to_owned()))?;
        let event: ChangeEvent = serde_json::from_str(json)
            .map_err(|e| invalid(kind, format!("`event_json` is not a change event: {e}")))?;
        runtime()?;
        // SAFETY: forwarded from the caller. The last fallible step: from here `release` runs.
        let target = unsafe { c_target(target, target_user_data) }?;
        let user_data = UserData(user_data);
        let work = async move {
            let decision = sync
                .apply_local(target.as_ref(), &event)
                .await
                .map_err(|e| from_sync(&e))?;
            serde_json::to_string(&DecisionJson {
                effect: decision.effect,
                state: decision.next.as_ref(),
                conflict: decision.conflict.is_some(),
            })
            .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string()))
        };
        let what = "recording the change locally";
        spawn_completing(work, cancel_token(out_cancel), what, move |outcome| {
            let (text, error) = split(outcome, federation_string_t::raw);
            let user_data = user_data;
            // SAFETY: the caller supplied a callback with this signature and a `user_data` it
            // may receive on this thread; ownership of the pointers passes to it.
            unsafe { callback(user_data.0, text, error) };
        })
    })
}
