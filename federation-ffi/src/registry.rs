//! Self-registration: announce a service instance in a cluster's Consul, keep its TTL checks
//! alive, deregister it.
//!
//! **Failures prevented.** A Go or C service that registers with a TTL check has to heartbeat
//! it; doing that from the caller costs a timer and a thread per check and dies silently with
//! the caller's scheduler. Here the heartbeats run in the core on the library's runtime, owned
//! by the `federation_registration_t` handle: they run while the handle lives, stop when it is
//! freed (the check then lapses to critical, as for a crashed process) and stop before
//! `federation_registration_deregister` removes the instance. Like calls, registration and
//! deregistration complete through a callback, so no caller thread blocks on Consul.
//!
//! **Input.** The registration is JSON (parsed strictly: unknown fields are errors), the same
//! way the configuration is text, so the ABI does not grow a struct per optional field:
//!
//! ```json
//! {"name": "order-svc", "id": "order-1", "address": "10.8.3.14", "port": 7443,
//!  "tags": ["v1"], "meta": {"team": "looma"},
//!  "http_check": {"url": "http://10.8.3.14:7443/health", "interval_ms": 10000, "timeout_ms": 2000},
//!  "ttl_ms": 15000}
//! ```
//!
//! `id` defaults to `name`; `http_check.interval_ms` to 10000; `timeout_ms` 0 means Consul's
//! default; `ttl_ms` adds a TTL check heartbeated every third of the TTL.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use federation_core::client::Registered;
use federation_core::discovery::{Registration, RegistrationCheck};
use federation_core::error::Error;
use futures_util::FutureExt;
use serde::Deserialize;

use crate::cancel::{CancelState, federation_cancel_t};
use crate::client::federation_client_t;
use crate::error::{
    FEDERATION_ERROR_INTERNAL, FEDERATION_ERROR_INVALID_REQUEST, federation_error_t, to_c_string,
};
use crate::guard::{catch, catch_or, panic_message};
use crate::input::{MAX_CONFIG, MAX_NAME, Tagged, c_str, free_handle, handle, invalid};
use crate::runtime::runtime;

const TAG: u64 = 0x6665_642d_7267_7331; // "fed-rgs1"

/// A service instance registered through `federation_client_register`. Owns the heartbeats of
/// its TTL checks. Free with `federation_registration_free` (which stops the heartbeats but
/// does not deregister).
pub struct federation_registration_t {
    tag: u64,
    service_id: CString,
    registered: Mutex<Option<Registered>>,
}

impl Tagged for federation_registration_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_registration_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

/// Completion of `federation_client_register`: exactly one of `registration` and `error` is
/// non-NULL and owned by the callee. Runs on a library worker thread: return quickly.
pub type federation_registration_callback_t = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        registration: *mut federation_registration_t,
        error: *mut federation_error_t,
    ),
>;

/// Completion of a deregistration: `error` is NULL on success, otherwise owned by the callee.
/// Runs on a library worker thread: return quickly.
pub type federation_done_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, error: *mut federation_error_t)>;

/// The caller's opaque pointer, handed back on a worker thread.
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the functions taking `user_data` document that it is passed to the callback on
// another thread; the caller guarantees that is sound for its data.
unsafe impl Send for UserData {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationJson {
    name: String,
    #[serde(default)]
    id: String,
    address: String,
    port: u16,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    http_check: Option<HttpCheckJson>,
    #[serde(default)]
    ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpCheckJson {
    url: String,
    #[serde(default = "default_interval_ms")]
    interval_ms: u64,
    #[serde(default)]
    timeout_ms: u64,
}

fn default_interval_ms() -> u64 {
    10_000
}

fn parse(json: &str) -> Result<Registration, Box<federation_error_t>> {
    let parsed: RegistrationJson = serde_json::from_str(json).map_err(|e| {
        invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!("`registration_json` is not a valid registration: {e}"),
        )
    })?;
    let mut reg = Registration::new(parsed.id, parsed.name, parsed.address, parsed.port);
    reg.tags = parsed.tags;
    reg.meta = parsed.meta;
    if let Some(check) = parsed.http_check {
        reg.checks.push(RegistrationCheck::Http {
            url: check.url,
            interval: Duration::from_millis(check.interval_ms),
            timeout: Duration::from_millis(check.timeout_ms),
            deregister_critical_after: None,
        });
    }
    if let Some(ttl) = parsed.ttl_ms {
        reg.checks.push(RegistrationCheck::Ttl {
            check_id: None,
            ttl: Duration::from_millis(ttl),
            deregister_critical_after: None,
        });
    }
    Ok(reg)
}

/// Runs `work` unless cancelled first; a panic becomes an internal error.
async fn guarded<T>(
    cancel: Arc<CancelState>,
    label: String,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Box<federation_error_t>> {
    let work = std::panic::AssertUnwindSafe(work).catch_unwind();
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(Err(Error::cancelled(label))),
        outcome = work => outcome,
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(federation_error_t::from_core(&error)),
        Err(payload) => Err(federation_error_t::boxed(
            FEDERATION_ERROR_INTERNAL,
            format!(
                "internal panic during registration: {}",
                panic_message(&*payload)
            ),
        )),
    }
}

/// Spawns `work`, completing `callback(user_data, error)` once.
fn spawn_done(
    work: impl Future<Output = Result<(), Error>> + Send + 'static,
    label: String,
    callback: federation_done_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> Result<(), Box<federation_error_t>> {
    let callback = callback.ok_or_else(|| {
        invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            "`callback` is NULL".to_owned(),
        )
    })?;
    let rt = runtime()?;
    let cancel = cancel_token(out_cancel);
    let user_data = UserData(user_data);
    rt.spawn(async move {
        let error = match guarded(cancel, label, work).await {
            Ok(()) => std::ptr::null_mut(),
            Err(error) => Box::into_raw(error),
        };
        let user_data = user_data;
        // SAFETY: the caller supplied a callback with this signature and a `user_data` it may
        // receive on this thread; ownership of `error` passes to it.
        unsafe { callback(user_data.0, error) };
    });
    Ok(())
}

/// A new cancel token, written to `out_cancel` when that is not NULL.
pub(crate) fn cancel_token(out_cancel: *mut *mut federation_cancel_t) -> Arc<CancelState> {
    let cancel = Arc::new(CancelState::default());
    if !out_cancel.is_null() {
        // SAFETY: non-NULL and valid for a write per the caller.
        unsafe { out_cancel.write(federation_cancel_t::raw(Arc::clone(&cancel))) };
    }
    cancel
}

/// Registers a service instance with the Consul agent of `cluster`, and returns at once.
///
/// `registration_json` is an object with `name` and `address` (strings), `port` (1-65535) and
/// optional `id` (default: `name`), `tags` (strings), `meta` (string map), `http_check`
/// (`{"url", "interval_ms" = 10000, "timeout_ms" = 0: Consul's default}`) and `ttl_ms` (a TTL
/// check, heartbeated every third of the TTL while the returned handle lives); unknown fields
/// are errors. On success returns NULL and later calls
/// `callback(user_data, registration, error)` exactly once on a worker thread. Invalid input
/// (NULL handle or callback, bad UTF-8, malformed JSON) returns an `INVALID_REQUEST` error and
/// the callback never runs. An unknown or static cluster and an invalid registration arrive
/// through the callback as `INVALID_REQUEST`; Consul failures as `DISCOVERY`.
///
/// Cancelling (`out_cancel`) completes with `CANCELLED`; the agent may still have registered the
/// instance.
///
/// # Safety
/// `client` is a live client; `cluster` and `registration_json` are NUL-terminated strings,
/// borrowed for this call only; `user_data` is handed to `callback` on another thread;
/// `out_cancel` is NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_register(
    client: *const federation_client_t,
    cluster: *const c_char,
    registration_json: *const c_char,
    callback: federation_registration_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = unsafe { handle(client, "client") }?.client.clone();
        let callback = callback.ok_or_else(|| invalid(kind, "`callback` is NULL".to_owned()))?;
        let cluster = unsafe { c_str(cluster, "cluster", MAX_NAME, kind) }?.to_owned();
        let json = unsafe { c_str(registration_json, "registration_json", MAX_CONFIG, kind) }?;
        let reg = parse(json)?;
        let rt = runtime()?;
        let cancel = cancel_token(out_cancel);
        let user_data = UserData(user_data);
        let label = reg.service_id().to_owned();
        rt.spawn(async move {
            let work = async { client.register(&cluster, &reg).await };
            let (registration, error) = match guarded(cancel, label, work).await {
                Ok(registered) => (raw_registration(registered), std::ptr::null_mut()),
                Err(error) => (std::ptr::null_mut(), Box::into_raw(error)),
            };
            let user_data = user_data;
            // SAFETY: the caller supplied a callback with this signature and a `user_data` it
            // may receive on this thread; ownership of the pointers passes to it.
            unsafe { callback(user_data.0, registration, error) };
        });
        Ok(())
    })
}

fn raw_registration(registered: Registered) -> *mut federation_registration_t {
    Box::into_raw(Box::new(federation_registration_t {
        tag: TAG,
        service_id: to_c_string(registered.service_id().to_owned()),
        registered: Mutex::new(Some(registered)),
    }))
}

/// Removes the instance `service_id` (and its checks) from the Consul agent of `cluster`;
/// completes through `callback(user_data, error)` as `federation_client_register` does. An
/// unknown id arrives as a `DISCOVERY` error (Consul's 404).
///
/// # Safety
/// As for `federation_client_register`; `service_id` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_deregister(
    client: *const federation_client_t,
    cluster: *const c_char,
    service_id: *const c_char,
    callback: federation_done_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = unsafe { handle(client, "client") }?.client.clone();
        let cluster = unsafe { c_str(cluster, "cluster", MAX_NAME, kind) }?.to_owned();
        let id = unsafe { c_str(service_id, "service_id", MAX_NAME, kind) }?.to_owned();
        let label = id.clone();
        let work = async move { client.deregister(&cluster, &id).await };
        spawn_done(work, label, callback, user_data, out_cancel)
    })
}

/// Stops the heartbeats of `registration` and removes its instance from the agent; completes
/// through `callback(user_data, error)`. A second call completes with success and does
/// nothing. The handle stays valid (free it with `federation_registration_free`).
///
/// # Safety
/// `registration` is a live handle; `user_data` is handed to `callback` on another thread;
/// `out_cancel` is NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_registration_deregister(
    registration: *const federation_registration_t,
    callback: federation_done_callback_t,
    user_data: *mut c_void,
    out_cancel: *mut *mut federation_cancel_t,
) -> *mut federation_error_t {
    catch(|| {
        // SAFETY: forwarded from the caller.
        let registration = unsafe { handle(registration, "registration") }?;
        let taken = registration
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let label = registration.service_id.to_string_lossy().into_owned();
        let work = async move {
            match taken {
                Some(registered) => registered.deregister().await,
                None => Ok(()),
            }
        };
        spawn_done(work, label, callback, user_data, out_cancel)
    })
}

/// The instance id as Consul knows it: NUL-terminated, borrowed from the handle and valid until
/// it is freed. Never NULL (an invalid handle gives an empty string).
///
/// # Safety
/// `registration` is NULL or a live handle. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_registration_service_id(
    registration: *const federation_registration_t,
) -> *const c_char {
    catch_or(c"".as_ptr(), || {
        // SAFETY: forwarded from the caller.
        match unsafe { handle(registration, "registration") } {
            Ok(r) => r.service_id.as_ptr(),
            Err(_) => c"".as_ptr(),
        }
    })
}

/// Frees a registration handle: its heartbeats stop, the instance stays registered (its TTL
/// checks lapse to critical). NULL is a no-op.
///
/// # Safety
/// `registration` is NULL or a live handle; it must not be used afterwards, and no other
/// thread may be using it at the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_registration_free(
    registration: *mut federation_registration_t,
) {
    catch_or((), || {
        let _entered = runtime().ok().map(|rt| rt.enter());
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(registration, |r| r.tag = 0) }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_a_registration_with_checks() {
        let reg = parse(
            r#"{"name": "svc", "address": "10.0.0.1", "port": 80, "tags": ["a"],
                "http_check": {"url": "http://10.0.0.1/health"}, "ttl_ms": 3000}"#,
        )
        .unwrap_or_else(|_| panic!("a valid registration"));
        assert_eq!(reg.service_id(), "svc");
        assert_eq!(reg.tags, ["a"]);
        assert_eq!(reg.ttl_check_ids(), ["svc:ttl"]);
        assert!(matches!(
            reg.checks[0],
            RegistrationCheck::Http { interval, .. } if interval == Duration::from_secs(10)
        ));
    }

    #[test]
    fn unknown_fields_and_bad_ports_are_rejected() {
        for bad in [
            r#"{"name": "svc", "address": "a", "port": 80, "ttl": 3}"#,
            r#"{"name": "svc", "address": "a", "port": 70000}"#,
            r#"{"name": "svc"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
