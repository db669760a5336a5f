//! Subscribing through the C ABI: the service's store is a pair of C callbacks (read an
//! entity's stored state, write a decided change), each answered through a reply handle.
//!
//! **Failures prevented.** A store call that blocks a library worker thread (a database write,
//! a Go handler) stalls every other consumer and publish on that worker, and a store that can
//! only answer synchronously forces the host to block. So each callback gets a
//! `federation_sync_reply_t` and returns at once; the host answers with `federation_sync_reply`
//! exactly once, right there or later from any thread, and the subscriber awaits the answer
//! without holding a thread. An error answer is a handler error: retried with backoff, then
//! the event is dead-lettered and the partition goes on, as in Rust. A `STALE` answer is the
//! compare-and-set miss of `SyncTarget::write`. The host learns when the library is done with
//! its `user_data` through the `release` callback, so it can free it without guessing.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use federation_sync::model::{ChangeEvent, Effect, EntityState};
use federation_sync::{AppliedChange, SyncTarget, TargetError};
use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_t, to_c_string};
use crate::guard::catch;
use crate::input::{MAX_BODY, Tagged, free_handle, handle, invalid, opt_c_str};
use crate::registry::UserData;

/// How a reply ends a target operation: one of the `FEDERATION_SYNC_REPLY_*` values.
pub type federation_sync_reply_status_t = u32;
/// Done. For a read, `text` is the stored entity state JSON, or NULL when none is stored.
pub const FEDERATION_SYNC_REPLY_OK: federation_sync_reply_status_t = 0;
/// Failed; `text` is the reason. Retried with backoff, then the event is dead-lettered.
pub const FEDERATION_SYNC_REPLY_ERROR: federation_sync_reply_status_t = 1;
/// A write only: the stored state is no longer the change's `previous` (compare-and-set miss);
/// the subscriber reads again and decides again, without counting an attempt.
pub const FEDERATION_SYNC_REPLY_STALE: federation_sync_reply_status_t = 2;

const REPLY_TAG: u64 = 0x6665_642d_7270_6c31; // "fed-rpl1"

/// One pending target operation. Answer it with `federation_sync_reply` exactly once (that
/// frees it).
pub struct federation_sync_reply_t {
    tag: u64,
    sender: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl Tagged for federation_sync_reply_t {
    const TAG: u64 = REPLY_TAG;
    const NAME: &'static str = "federation_sync_reply_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

type Answer = (federation_sync_reply_status_t, Option<String>);

/// The service's store as C callbacks. Each runs on a library worker thread and must return
/// quickly without blocking: answer through `reply` there or later, from any thread.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_sync_target_t {
    /// Read the stored state of `entity_type`/`entity_id` (NUL-terminated, valid during the
    /// callback). Answer `OK` with the state JSON exactly as it was written (or NULL: nothing
    /// stored), or `ERROR` with the reason.
    pub read: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            entity_type: *const c_char,
            entity_id: *const c_char,
            reply: *mut federation_sync_reply_t,
        ),
    >,
    /// Store a decided change. `change_json` (NUL-terminated, `change_len` bytes, valid during
    /// the callback) is `{"event": <change event>, "effect": "applied"|"merged"|"superseded",
    /// "state": <entity state: store it whole with the record>, "previous": <the state this
    /// decision was made from, or null>}`. Answer `OK`, `ERROR` with the reason, or `STALE`
    /// when the stored state is no longer `previous`.
    pub write: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            change_json: *const c_char,
            change_len: usize,
            reply: *mut federation_sync_reply_t,
        ),
    >,
    /// Called exactly once when the library no longer uses `user_data` (the subscription ended
    /// and no callback runs any more); may be NULL.
    pub release: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// The adapter over `target`'s callbacks, armed: its `release` runs when it is dropped (unless
/// disarmed).
///
/// # Safety
/// `target` is NULL or points to a valid struct; `user_data` may be used from worker threads.
pub(crate) unsafe fn c_target(
    target: *const federation_sync_target_t,
    user_data: *mut c_void,
) -> Result<Arc<CTarget>, Box<federation_error_t>> {
    let bad = |m: &str| invalid(FEDERATION_ERROR_INVALID_REQUEST, m.to_owned());
    // SAFETY: NULL or a valid struct per the caller.
    let target = unsafe { target.as_ref() }.ok_or_else(|| bad("`target` is NULL"))?;
    Ok(Arc::new(CTarget {
        read: target.read.ok_or_else(|| bad("`target->read` is NULL"))?,
        write: target.write.ok_or_else(|| bad("`target->write` is NULL"))?,
        release: target.release,
        user_data: UserData(user_data),
        armed: AtomicBool::new(true),
    }))
}

/// A [`SyncTarget`] over the C callbacks.
pub(crate) struct CTarget {
    read: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        *mut federation_sync_reply_t,
    ),
    write: unsafe extern "C" fn(*mut c_void, *const c_char, usize, *mut federation_sync_reply_t),
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    user_data: UserData,
    /// Cleared when subscribing failed: the host keeps ownership of `user_data` then.
    armed: AtomicBool,
}

impl CTarget {
    /// Keeps `release` from running when this adapter is dropped: subscribing failed and the
    /// host keeps ownership of `user_data`.
    pub(crate) fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
    }
}

// SAFETY: `federation_sync_subscribe` documents that the callbacks and `user_data` are used
// from library worker threads, concurrently for different entities; the caller guarantees that.
unsafe impl Sync for CTarget {}

impl Drop for CTarget {
    fn drop(&mut self) {
        if let Some(release) = self.release
            && self.armed.load(Ordering::Acquire)
        {
            // SAFETY: the caller of `federation_sync_subscribe` supplied this callback for this
            // `user_data`; this is the one call, after every other callback returned.
            unsafe { release(self.user_data.0) };
        }
    }
}

/// The JSON a write callback gets.
#[derive(Serialize)]
struct ChangeJson<'a> {
    event: &'a ChangeEvent,
    effect: Effect,
    state: &'a EntityState,
    previous: Option<&'a EntityState>,
}

/// A reply handle for C and the receiver of its answer.
pub(crate) fn reply() -> (*mut federation_sync_reply_t, oneshot::Receiver<Answer>) {
    let (sender, receiver) = oneshot::channel();
    let raw = Box::into_raw(Box::new(federation_sync_reply_t {
        tag: REPLY_TAG,
        sender: Mutex::new(Some(sender)),
    }));
    (raw, receiver)
}

/// Waits for the answer to a target operation; `what` names it in errors.
async fn answer(
    receiver: oneshot::Receiver<Answer>,
    what: &str,
) -> Result<Option<String>, TargetError> {
    match receiver.await {
        Ok((FEDERATION_SYNC_REPLY_OK, text)) => Ok(text),
        Ok((FEDERATION_SYNC_REPLY_STALE, _)) => Err(TargetError::stale()),
        Ok((_, text)) => Err(TargetError::new(format!(
            "the target's {what} failed: {}",
            text.unwrap_or_else(|| "no reason given".into())
        ))),
        Err(_) => Err(TargetError::new(format!(
            "the target's {what} reply was freed without an answer"
        ))),
    }
}

impl SyncTarget for CTarget {
    fn read<'a>(
        &'a self,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<EntityState>, TargetError>> {
        Box::pin(async move {
            let (raw, receiver) = reply();
            let (t, id) = (
                to_c_string(entity_type.to_owned()),
                to_c_string(entity_id.to_owned()),
            );
            // SAFETY: the caller of `federation_sync_subscribe` supplied this callback; the
            // strings live until it returns; ownership of `raw` passes to it.
            unsafe { (self.read)(self.user_data.0, t.as_ptr(), id.as_ptr(), raw) };
            match answer(receiver, "read").await? {
                None => Ok(None),
                Some(json) => serde_json::from_str::<Option<EntityState>>(&json).map_err(|e| {
                    TargetError::new(format!(
                        "the target's read of {entity_type}/{entity_id} returned invalid state JSON: {e}"
                    ))
                }),
            }
        })
    }

    fn write<'a>(&'a self, change: &'a AppliedChange) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let json = serde_json::to_string(&ChangeJson {
                event: &change.event,
                effect: change.effect,
                state: &change.state,
                previous: change.previous.as_ref(),
            })
            .map_err(|e| TargetError::new(format!("encoding the change: {e}")))?;
            let len = json.len();
            let text = to_c_string(json);
            let (raw, receiver) = reply();
            // SAFETY: as in `read`.
            unsafe { (self.write)(self.user_data.0, text.as_ptr(), len, raw) };
            answer(receiver, "write").await.map(|_| ())
        })
    }
}

/// Answers a target operation and frees `reply`: `status` is `FEDERATION_SYNC_REPLY_OK`,
/// `_ERROR` or `_STALE`; `text` (NULL allowed; copied) is the state JSON of an `OK` read or the
/// reason of an `ERROR`. Returns NULL, or an `INVALID_REQUEST` error for a NULL or invalid
/// handle, an unknown status, `STALE` to a read or invalid UTF-8 (`reply` is then still freed
/// and the operation fails as a handler error, unless the handle itself was invalid). Answering
/// after the subscription was stopped is fine (the answer is dropped).
///
/// # Safety
/// `reply` is a handle passed to a target callback and not answered yet; `text` is NULL or a
/// NUL-terminated string. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_reply(
    reply: *mut federation_sync_reply_t,
    status: federation_sync_reply_status_t,
    text: *const c_char,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sender = unsafe { handle(reply, "reply") }?
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // SAFETY: checked live above; the caller gives up the handle here.
        unsafe { free_handle(reply, |r| r.tag = 0) };
        // SAFETY: forwarded from the caller.
        let text = unsafe { opt_c_str(text, "text", MAX_BODY) }.map(|t| t.map(str::to_owned));
        let (answer, outcome) = match (status, text) {
            (_, Err(e)) => ((FEDERATION_SYNC_REPLY_ERROR, None), Err(e)),
            (
                FEDERATION_SYNC_REPLY_OK
                | FEDERATION_SYNC_REPLY_ERROR
                | FEDERATION_SYNC_REPLY_STALE,
                Ok(text),
            ) => ((status, text), Ok(())),
            (other, Ok(_)) => (
                (
                    FEDERATION_SYNC_REPLY_ERROR,
                    Some(format!("unknown reply status {other}")),
                ),
                Err(invalid(
                    FEDERATION_ERROR_INVALID_REQUEST,
                    format!(
                        "unknown reply status {other}; use FEDERATION_SYNC_REPLY_OK, _ERROR or _STALE"
                    ),
                )),
            ),
        };
        if let Some(sender) = sender {
            let _ = sender.send(answer);
        }
        outcome
    })
}

#[cfg(test)]
#[path = "sync_target_tests.rs"]
mod tests;
