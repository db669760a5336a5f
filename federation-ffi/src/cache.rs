//! The result cache from C: invalidating a path or prefix (every process sharing `cache.l2`
//! drops it too), invalidating an entity through `cache.entities`, and warming a service's
//! cache ahead of traffic.
//!
//! **Failure prevented.** A C or Go program that cannot invalidate keeps serving a record it
//! just changed until the TTL passes; one that cannot warm sends its first minutes of traffic
//! upstream. These are the same operations the Rust and Python APIs have, with the same
//! bounds on input.

use std::ffi::c_char;

use crate::client::federation_client_t;
use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_t};
use crate::guard::catch;
use crate::input::{MAX_CONFIG, MAX_NAME, MAX_PATH, c_str, handle, invalid, write_out};
use crate::runtime::runtime;
use crate::text::federation_string_t;

/// Drops `service`'s cached responses for exactly `path` (or, when `prefix` is true, for every
/// path starting with it), here and in every process sharing its `cache.l2`. Writes whether
/// the service has a cache to `out_cached`.
///
/// # Safety
/// `client` is a live client; `service` and `path` are NUL-terminated strings; `out_cached` is
/// valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_invalidate(
    client: *const federation_client_t,
    service: *const c_char,
    path: *const c_char,
    prefix: bool,
    out_cached: *mut bool,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = &unsafe { handle(client, "client") }?.client;
        let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?;
        let path = unsafe { c_str(path, "path", MAX_PATH, kind) }?;
        let cached = if prefix {
            client.invalidate_prefix(service, path)
        } else {
            client.invalidate(service, path)
        };
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_cached, cached, "out_cached") }
    })
}

/// Drops the cached answers of entity `entity` with this `id` in every service whose
/// `cache.entities` maps the type; writes how many paths or prefixes were dropped to
/// `out_count`.
///
/// # Safety
/// `client` is a live client; `entity` and `id` are NUL-terminated strings; `out_count` is
/// valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_invalidate_entity(
    client: *const federation_client_t,
    entity: *const c_char,
    id: *const c_char,
    out_count: *mut u32,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = &unsafe { handle(client, "client") }?.client;
        let entity = unsafe { c_str(entity, "entity", MAX_NAME, kind) }?;
        let id = unsafe { c_str(id, "id", MAX_PATH, kind) }?;
        let count = u32::try_from(client.invalidate_entity(entity, id)).unwrap_or(u32::MAX);
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_count, count, "out_count") }
    })
}

/// Fetches the paths of `service` given as a JSON array of strings (`["/a", "/b"]`) into its
/// cache, at most `cache.warm_concurrency` at once, **blocking** the calling thread until done;
/// writes `{"fetched": n, "failed": m}` to `out_json`. Call it from a thread that may block
/// (not from a completion callback).
///
/// # Safety
/// `client` is a live client; `service` and `paths_json` are NUL-terminated strings;
/// `out_json` is valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_client_warm(
    client: *const federation_client_t,
    service: *const c_char,
    paths_json: *const c_char,
    out_json: *mut *mut federation_string_t,
) -> *mut federation_error_t {
    catch(|| {
        let kind = FEDERATION_ERROR_INVALID_REQUEST;
        // SAFETY (all reads below): forwarded from the caller's guarantees.
        let client = unsafe { handle(client, "client") }?.client.clone();
        let service = unsafe { c_str(service, "service", MAX_NAME, kind) }?.to_owned();
        let text = unsafe { c_str(paths_json, "paths_json", MAX_CONFIG, kind) }?;
        let paths: Vec<String> = serde_json::from_str(text).map_err(|e| {
            invalid(
                kind,
                format!("`paths_json` must be a JSON array of strings: {e}"),
            )
        })?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(invalid(
                kind,
                "federation_client_warm blocks; call it from a thread that is not running async \
                 tasks (not from a completion callback)"
                    .to_owned(),
            ));
        }
        let rt = runtime()?;
        let report = rt
            .block_on(async move { client.warm(&service, &paths).await })
            .map_err(|e| federation_error_t::from_core(&e))?;
        let json = format!(
            "{{\"fetched\":{},\"failed\":{}}}",
            report.fetched, report.failed
        );
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out_json, federation_string_t::raw(json), "out_json") }
    })
}
