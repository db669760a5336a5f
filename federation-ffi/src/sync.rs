//! The data sync (`federation-sync`) through the C ABI: create a runtime, publish changes,
//! read their status, health and metrics. Publishing is in [`crate::sync_publish`], subscribing
//! in [`crate::sync_target`].
//!
//! **Failures prevented.** A publish waits for the broker's durable acknowledgement, which can
//! take the whole publish deadline when the broker is down; a blocking C function would pin one
//! caller thread per publish (one Go thread per goroutine). So creating the runtime (which
//! creates topics) and publishing complete through a callback, honour a cancel token (the
//! caller gave up: its callback runs at once with `FEDERATION_ERROR_CANCELLED`) and a per-call
//! deadline, and a panic inside them still completes the callback. Changes and results cross
//! the boundary as JSON, the same form the Rust types serialise to, so the C, Go and Python
//! views of a change, a stamp or an entity state cannot drift from the Rust one.

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::sync::Arc;

use federation_core::config::Config;
use federation_sync::{FederatedDataSync, SyncError, SyncErrorKind};
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::Value;

use crate::cancel::{CancelState, federation_cancel_t};
use crate::client::{federation_config_format_t, format_of};
use crate::error::{
    FEDERATION_ERROR_CANCELLED, FEDERATION_ERROR_CONFIG, FEDERATION_ERROR_INTERNAL,
    FEDERATION_ERROR_INVALID_REQUEST, FEDERATION_ERROR_TARGET, FEDERATION_ERROR_TIMEOUT,
    FEDERATION_ERROR_TRANSPORT, federation_error_kind_t, federation_error_t,
};
use crate::guard::{catch, panic_message};
use crate::input::{
    MAX_BODY, MAX_CONFIG, MAX_NAME, Tagged, c_str, free_handle, handle, invalid, opt_c_str,
};
use crate::registry::{UserData, cancel_token};
use crate::runtime::runtime;
use crate::sync_conflict::ConflictSpec;
use crate::text::{federation_string_t, give_string};

const TAG: u64 = 0x6665_642d_7379_6e31; // "fed-syn1"

/// A data sync runtime of one cluster. Thread-safe: one handle may be used from many threads.
/// Free with `federation_sync_free`.
pub struct federation_sync_t {
    tag: u64,
    pub(crate) sync: FederatedDataSync,
}

impl Tagged for federation_sync_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_sync_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

/// Completion of `federation_sync_new`: exactly one of `sync` and `error` is non-NULL and owned
/// by the callee. Runs on a library worker thread: return quickly, do not block.
pub type federation_sync_callback_t = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        sync: *mut federation_sync_t,
        error: *mut federation_error_t,
    ),
>;

/// Completion carrying JSON text (`federation_sync_publish`): exactly one of `text` and
/// `error` is non-NULL and owned by the callee. Runs on a library worker thread: return
/// quickly, do not block.
pub type federation_text_callback_t = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        text: *mut federation_string_t,
        error: *mut federation_error_t,
    ),
>;

/// The C kind of a sync error.
pub(crate) fn sync_kind(kind: SyncErrorKind) -> federation_error_kind_t {
    match kind {
        SyncErrorKind::Config => FEDERATION_ERROR_CONFIG,
        SyncErrorKind::InvalidChange => FEDERATION_ERROR_INVALID_REQUEST,
        SyncErrorKind::Timeout => FEDERATION_ERROR_TIMEOUT,
        SyncErrorKind::Kafka => FEDERATION_ERROR_TRANSPORT,
        SyncErrorKind::Target => FEDERATION_ERROR_TARGET,
        // Kinds added later.
        _ => FEDERATION_ERROR_INTERNAL,
    }
}

pub(crate) fn from_sync(error: &SyncError) -> Box<federation_error_t> {
    federation_error_t::boxed(sync_kind(error.kind()), error.to_string())
}

fn bad(message: String) -> Box<federation_error_t> {
    invalid(FEDERATION_ERROR_INVALID_REQUEST, message)
}

/// Runs `work` on the library's runtime unless `cancel` fires first (then the outcome is a
/// `CANCELLED` error naming `what`); a panic becomes an `INTERNAL` error. `complete` gets the
/// outcome exactly once, on a worker thread.
pub(crate) fn spawn_completing<T, W, C>(
    work: W,
    cancel: Arc<CancelState>,
    what: &'static str,
    complete: C,
) -> Result<(), Box<federation_error_t>>
where
    T: Send + 'static,
    W: Future<Output = Result<T, Box<federation_error_t>>> + Send + 'static,
    C: FnOnce(Result<T, Box<federation_error_t>>) + Send + 'static,
{
    runtime()?.spawn(async move {
        let work = std::pin::pin!(std::panic::AssertUnwindSafe(work).catch_unwind());
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Ok(Err(federation_error_t::boxed(
                FEDERATION_ERROR_CANCELLED,
                format!("{what} was cancelled"),
            ))),
            outcome = work => outcome,
        };
        complete(outcome.unwrap_or_else(|payload| {
            Err(federation_error_t::boxed(
                FEDERATION_ERROR_INTERNAL,
                format!("internal panic during {what}: {}", panic_message(&*payload)),
            ))
        }));
    });
    Ok(())
}

/// Splits an outcome into the two owned pointers a C completion takes.
pub(crate) fn split<T, R>(
    outcome: Result<T, Box<federation_error_t>>,
    raw: impl FnOnce(T) -> *mut R,
) -> (*mut R, *mut federation_error_t) {
    match outcome {
        Ok(value) => (raw(value), std::ptr::null_mut()),
        Err(error) => (std::ptr::null_mut(), Box::into_raw(error)),
    }
}

/// Creates a data sync runtime from configuration text (its `sync` section) and returns at once.
///
/// `local_cluster` is the cluster this process publishes as; NULL means `sync.local_cluster`.
/// Creating checks the settings, creates this cluster's topics on its brokers (so it waits for
/// them), connects the producers and starts reading acknowledgements. On success returns NULL
/// and later calls `callback(user_data, sync, error)` exactly once on a worker thread: a
/// configuration problem (no `sync` section, unknown local cluster, a `callback` policy: use
/// `federation_sync_new_with_conflict`) arrives as `CONFIG`, an unreachable broker as `TRANSPORT`.
/// Invalid input (NULL, bad UTF-8, unparsable configuration, unknown format) returns the error
/// (`CONFIG` or `INVALID_REQUEST`) and the callback never runs.
///
/// # Safety
/// `config` and `local_cluster` (NULL allowed) are NUL-terminated strings, borrowed for this
/// call only; `user_data` is handed to `callback` on another thread; `out_cancel` is NULL or
/// valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_new(
    config: *const c_char,
    format: federation_config_format_t,
    local_cluster: *const c_char,
    callback: federation_sync_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    // SAFETY: forwarded from the caller.
    catch(|| unsafe {
        start(
            config,
            format,
            local_cluster,
            None,
            callback,
            user_data,
            out_cancel,
        )
    })
}

/// `federation_sync_new` with the conflict callback (if any) of `policy: callback` types.
///
/// # Safety
/// As `federation_sync_new`.
pub(crate) unsafe fn start(
    config: *const c_char,
    format: federation_config_format_t,
    local_cluster: *const c_char,
    conflict: Option<ConflictSpec>,
    callback: federation_sync_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> Result<(), Box<federation_error_t>> {
    let callback = callback.ok_or_else(|| bad("`callback` is NULL".to_owned()))?;
    // SAFETY (both reads): forwarded from the caller.
    let text = unsafe { c_str(config, "config", MAX_CONFIG, FEDERATION_ERROR_CONFIG) }?;
    let local = unsafe { opt_c_str(local_cluster, "local_cluster", MAX_NAME) }?;
    let config = Config::parse(text, format_of(format)?)
        .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_CONFIG, e.to_string()))?;
    let rt = runtime()?;
    let mut builder = FederatedDataSync::builder(&config);
    if let Some(local) = local {
        builder = builder.local_cluster(local);
    }
    // The last fallible step is behind: from here the conflict callback's `release` runs.
    if let Some(conflict) = conflict {
        builder = conflict.register(builder);
    }
    let user_data = UserData(user_data);
    // The build runs as a task of its own that a cancel detaches rather than drops: dropping
    // rdkafka's topic creation mid-flight leaks its request (seen under valgrind). A
    // cancelled build finishes in the background and its runtime is dropped then.
    let build = rt.spawn(async move { builder.build().await });
    let work = async move {
        match build.await {
            Ok(built) => built.map_err(|e| from_sync(&e)),
            Err(e) => Err(federation_error_t::boxed(
                FEDERATION_ERROR_INTERNAL,
                format!("creating the sync failed: {e}"),
            )),
        }
    };
    spawn_completing(
        work,
        cancel_token(out_cancel),
        "creating the sync",
        move |outcome| {
            let (sync, error) = split(outcome, |sync| {
                Box::into_raw(Box::new(federation_sync_t { tag: TAG, sync }))
            });
            let user_data = user_data;
            // SAFETY: the caller supplied a callback with this signature and a `user_data` it
            // may receive on this thread; ownership of the pointers passes to it.
            unsafe { callback(user_data.0, sync, error) };
        },
    )
}

/// Writes `text` to `out`, failing when `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn give_text(
    out: *mut *mut federation_string_t,
    text: String,
    what: &str,
) -> Result<(), Box<federation_error_t>> {
    // SAFETY: forwarded from the caller.
    unsafe { give_string(out, Some(text), what) }
}

fn to_json(value: &impl Serialize) -> Result<String, Box<federation_error_t>> {
    serde_json::to_string(value)
        .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string()))
}

/// The sync status of the latest change of `entity_type`/`entity_id` published from this
/// cluster (or learnt from its acks topic), as JSON written to `out_json`: `{"event_id", "hlc",
/// "targets": {"looma": {"state": "pending"|"completed"|"failed", "effect"|"reason"}},
/// "overall": "pending"|"completed"|"failed"}`, or `null` when no change of the entity is known.
///
/// # Safety
/// `sync` is a live handle; `entity_type`, `entity_id` are NUL-terminated strings; `out_json`
/// is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_status(
    sync: *const federation_sync_t,
    entity_type: *const c_char,
    entity_id: *const c_char,
    out_json: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads): forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?;
        let entity_type = unsafe { c_str(entity_type, "entity_type", MAX_NAME, kind) }?;
        let entity_id = unsafe { c_str(entity_id, "entity_id", MAX_BODY, kind) }?;
        let json = match sync.sync.status(entity_type, entity_id) {
            None => Value::Null,
            Some(status) => {
                let overall = status.overall();
                let mut value = serde_json::to_value(&status).map_err(|e| {
                    federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string())
                })?;
                if let Value::Object(map) = &mut value {
                    map.insert(
                        "overall".into(),
                        serde_json::to_value(overall).unwrap_or_default(),
                    );
                }
                value
            }
        };
        // SAFETY: forwarded from the caller.
        unsafe { give_text(out_json, json.to_string(), "out_json") }
    })
}

/// The sync's health entry as JSON written to `out_json`: `{"local_cluster", "origins":
/// {"looma": {"consumed", "last_consumed_ms", "lag", "last_error"}}, "pending", "healthy"}`.
///
/// # Safety
/// `sync` is a live handle; `out_json` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_health(
    sync: *const federation_sync_t,
    out_json: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?;
        let health = sync.sync.health();
        let mut value = serde_json::to_value(&health)
            .map_err(|e| federation_error_t::boxed(FEDERATION_ERROR_INTERNAL, e.to_string()))?;
        if let Value::Object(map) = &mut value {
            map.insert("healthy".into(), Value::Bool(health.is_healthy()));
        }
        // SAFETY: forwarded from the caller.
        unsafe { give_text(out_json, to_json(&value)?, "out_json") }
    })
}

/// The sync metrics (`federation_sync_*`) as Prometheus text written to `out_text`.
///
/// # Safety
/// `sync` is a live handle; `out_text` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_metrics(
    sync: *const federation_sync_t,
    out_text: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let sync = unsafe { handle(sync, "sync") }?;
        // SAFETY: forwarded from the caller.
        unsafe { give_text(out_text, sync.sync.metrics_text(), "out_text") }
    })
}

/// Frees a sync handle. Publishes in flight finish (they hold the runtime); subscriptions keep
/// running until they are stopped or freed. NULL is a no-op.
///
/// # Safety
/// `sync` is NULL or a live handle; it must not be used afterwards, and no other thread may be
/// using it at the same time. Not from a completion callback (dropping the producers may wait
/// for them briefly).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_sync_free(sync: *mut federation_sync_t) {
    crate::guard::catch_or((), || {
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(sync, |s| s.tag = 0) }
    });
}
