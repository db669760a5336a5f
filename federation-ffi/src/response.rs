//! Response handles: status, headers, body and how the call was served.
//!
//! The body and header bytes are exposed as borrowed `(pointer, length)` views into the handle,
//! so reading a response copies nothing until the caller chooses to; they stay valid until
//! `federation_response_free`. Header values may be any bytes (not only UTF-8).

use std::ffi::c_char;

use bytes::Bytes;
use federation_core::client::{CacheStatus, Response};
use http::{HeaderName, HeaderValue};

use crate::attempts::{AttemptList, federation_attempt_timing_t};
use crate::call::federation_header_t;
use crate::guard::catch_or;
use crate::input::{Tagged, free_handle, handle};

/// Whether the cache served a call: one of the `FEDERATION_CACHE_*` values.
pub type federation_cache_status_t = u32;
/// Unknown (a newer status, or an invalid handle).
pub const FEDERATION_CACHE_UNKNOWN: federation_cache_status_t = 0;
/// Served from the cache; no attempt was made.
pub const FEDERATION_CACHE_HIT: federation_cache_status_t = 1;
/// Cacheable, fetched upstream.
pub const FEDERATION_CACHE_MISS: federation_cache_status_t = 2;
/// Served from the cache past its TTL.
pub const FEDERATION_CACHE_STALE: federation_cache_status_t = 3;
/// Not cacheable.
pub const FEDERATION_CACHE_BYPASS: federation_cache_status_t = 4;

fn cache_code(status: CacheStatus) -> federation_cache_status_t {
    match status {
        CacheStatus::Hit => FEDERATION_CACHE_HIT,
        CacheStatus::Miss => FEDERATION_CACHE_MISS,
        CacheStatus::Stale => FEDERATION_CACHE_STALE,
        CacheStatus::Bypass => FEDERATION_CACHE_BYPASS,
        // `CacheStatus` is non-exhaustive: a newer status is reported as unknown.
        _ => FEDERATION_CACHE_UNKNOWN,
    }
}

const TAG: u64 = 0x6665_642d_7273_7031; // "fed-rsp1"

/// A response. Owned by the callback's receiver; free with `federation_response_free`.
/// Immutable, so it may be read from several threads at once.
pub struct federation_response_t {
    tag: u64,
    status: u16,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    attempts: u32,
    /// The answering cluster and instance (lead strings 0 and 1), then every attempt.
    attempt_list: AttemptList,
    cache: federation_cache_status_t,
    /// The split of a service with a `split`: its strings are lead strings 2 (assigned arm),
    /// 3 (serving arm) and 4 (fallback reason).
    split: Option<SplitLead>,
}

/// Which of a split's optional strings are present (`SplitOutcome::served_arm`, `fallback`).
#[derive(Clone, Copy)]
struct SplitLead {
    served_arm: bool,
    fallback: bool,
}

impl Tagged for federation_response_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_response_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl federation_response_t {
    /// The C form of a core response.
    pub(crate) fn raw(response: Response) -> *mut Self {
        let served = response.served();
        let split = served.split();
        let mut lead = vec![served.cluster(), served.instance()];
        if let Some(split) = split {
            lead.extend([
                split.arm(),
                split.served_arm().unwrap_or(""),
                split.fallback().unwrap_or(""),
            ]);
        }
        let value = Self {
            tag: TAG,
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            attempts: u32::try_from(served.attempts().len()).unwrap_or(u32::MAX),
            attempt_list: AttemptList::with_lead(&lead, served.attempts()),
            cache: cache_code(served.cache()),
            split: split.map(|s| SplitLead {
                served_arm: s.served_arm().is_some(),
                fallback: s.fallback().is_some(),
            }),
            body: response.bytes(),
        };
        Box::into_raw(Box::new(value))
    }
}

const EMPTY: &std::ffi::CStr = c"";

/// The HTTP status (0 for NULL or an invalid handle).
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_status(response: *const federation_response_t) -> u16 {
    // SAFETY: forwarded from the caller.
    catch_or(0, || {
        unsafe { handle(response, "response") }.map_or(0, |r| r.status)
    })
}

/// The body: a pointer to its bytes (borrowed until the response is freed; not NUL-terminated,
/// possibly NULL when empty) with the length written to `out_len`.
///
/// # Safety
/// `response` is NULL or a live response; `out_len` is NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_body(
    response: *const federation_response_t,
    out_len: *mut usize,
) -> *const u8 {
    catch_or(std::ptr::null(), || {
        // SAFETY: forwarded from the caller.
        let (ptr, len) = match unsafe { handle(response, "response") } {
            Ok(r) if !r.body.is_empty() => (r.body.as_ptr(), r.body.len()),
            _ => (std::ptr::null(), 0),
        };
        if !out_len.is_null() {
            // SAFETY: non-NULL and valid per the caller.
            unsafe { out_len.write(len) };
        }
        ptr
    })
}

/// How many header fields the response has (a repeated header counts once per value).
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_header_count(
    response: *const federation_response_t,
) -> usize {
    // SAFETY: forwarded from the caller.
    catch_or(0, || {
        unsafe { handle(response, "response") }.map_or(0, |r| r.headers.len())
    })
}

/// Header field `index` (0-based, in received order): writes borrowed views of its lower-case
/// name and its value to `out_header` and returns true; false (nothing written) when `index`
/// is out of range or an argument is NULL.
///
/// # Safety
/// `response` is NULL or a live response; `out_header` is NULL or valid for a write. The views
/// are valid until the response is freed. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_header(
    response: *const federation_response_t,
    index: usize,
    out_header: *mut federation_header_t,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        let Ok(r) = (unsafe { handle(response, "response") }) else {
            return false;
        };
        let Some((name, value)) = r.headers.get(index) else {
            return false;
        };
        if out_header.is_null() {
            return false;
        }
        let header = federation_header_t {
            name: name.as_str().as_ptr(),
            name_len: name.as_str().len(),
            value: value.as_bytes().as_ptr(),
            value_len: value.as_bytes().len(),
        };
        // SAFETY: non-NULL and valid for a write per the caller.
        unsafe { out_header.write(header) };
        true
    })
}

/// The cluster that answered: NUL-terminated, borrowed until the response is freed; "" for a
/// NULL or invalid handle.
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_cluster(
    response: *const federation_response_t,
) -> *const c_char {
    catch_or(EMPTY.as_ptr(), || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(response, "response") }.map_or(EMPTY.as_ptr(), |r| {
            r.attempt_list.lead(0).unwrap_or(EMPTY.as_ptr())
        })
    })
}

/// The instance id that answered: NUL-terminated, borrowed until the response is freed; ""
/// for a NULL or invalid handle.
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_instance(
    response: *const federation_response_t,
) -> *const c_char {
    catch_or(EMPTY.as_ptr(), || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(response, "response") }.map_or(EMPTY.as_ptr(), |r| {
            r.attempt_list.lead(1).unwrap_or(EMPTY.as_ptr())
        })
    })
}

/// How many attempts the call made (0 for a cache hit).
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_attempts(
    response: *const federation_response_t,
) -> u32 {
    // SAFETY: forwarded from the caller.
    catch_or(0, || {
        unsafe { handle(response, "response") }.map_or(0, |r| r.attempts)
    })
}

/// Where attempt `index` (0-based, in order, below `federation_response_attempts`) went: writes
/// its cluster and instance id (NUL-terminated, borrowed until the response is freed) to the
/// non-NULL out-parameters. False, writing nothing, when out of range or for an invalid handle.
///
/// # Safety
/// `response` is NULL or a live response; `out_cluster`, `out_instance` are each NULL or valid
/// for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_attempt(
    response: *const federation_response_t,
    index: usize,
    out_cluster: *mut *const c_char,
    out_instance: *mut *const c_char,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(response, "response") }.is_ok_and(|r| {
            // SAFETY: forwarded from the caller.
            unsafe { r.attempt_list.write(index, out_cluster, out_instance) }
        })
    })
}

/// When and how attempt `index` (0-based, below `federation_response_attempts`) went: writes
/// its timing to `out` when non-NULL. False, writing nothing, when out of range or for an
/// invalid handle.
///
/// # Safety
/// `response` is NULL or a live response; `out` is NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_attempt_timing(
    response: *const federation_response_t,
    index: usize,
    out: *mut federation_attempt_timing_t,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(response, "response") }.is_ok_and(|r| {
            // SAFETY: forwarded from the caller.
            unsafe { r.attempt_list.write_timing(index, out) }
        })
    })
}

/// Whether the cache served the call (`FEDERATION_CACHE_*`).
///
/// # Safety
/// `response` is NULL or a live response. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_cache(
    response: *const federation_response_t,
) -> federation_cache_status_t {
    catch_or(FEDERATION_CACHE_UNKNOWN, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(response, "response") }.map_or(FEDERATION_CACHE_UNKNOWN, |r| r.cache)
    })
}

/// How a call of a service with a `split` was assigned: writes the arm its key chose, the arm
/// that served it (NULL when no arm could and the service's usual routing took the call) and
/// why the assigned arm was left (`"empty: …"` or `"ejected: …"`; NULL when it served) to the
/// non-NULL out-parameters (NUL-terminated, borrowed until the response is freed). False,
/// writing nothing, for a service without a split, a per-call tag or cluster override (which
/// bypasses the split) or an invalid handle.
///
/// # Safety
/// `response` is NULL or a live response; `out_arm`, `out_served_arm`, `out_fallback` are each
/// NULL or valid for a write. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_split(
    response: *const federation_response_t,
    out_arm: *mut *const c_char,
    out_served_arm: *mut *const c_char,
    out_fallback: *mut *const c_char,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        let Ok(r) = (unsafe { handle(response, "response") }) else {
            return false;
        };
        let Some(split) = r.split else {
            return false;
        };
        let string = |index: usize, present: bool| {
            let text = r.attempt_list.lead(index).unwrap_or(EMPTY.as_ptr());
            if present { text } else { std::ptr::null() }
        };
        for (out, value) in [
            (out_arm, string(2, true)),
            (out_served_arm, string(3, split.served_arm)),
            (out_fallback, string(4, split.fallback)),
        ] {
            if !out.is_null() {
                // SAFETY: a non-NULL out-parameter is valid for a write (the caller's contract).
                unsafe { *out = value };
            }
        }
        true
    })
}

/// Frees a response. NULL is a no-op.
///
/// # Safety
/// `response` is NULL or a live response; it and every view taken from it must not be used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_response_free(response: *mut federation_response_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(response, |r| r.tag = 0) }
    });
}
