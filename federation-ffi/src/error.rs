//! Errors across the C boundary: one `uint32_t` kind plus a message.
//!
//! C callers branch on the kind (the same set as the Rust `ErrorKind`, plus
//! `FEDERATION_ERROR_INTERNAL` for a caught panic or a kind newer than this library) and show the
//! message to humans. The mapping from the Rust kinds lives here, in one match, so the C, Go and
//! Rust kinds cannot drift apart silently.

use std::ffi::{CString, c_char};

use federation_core::error::{Error, ErrorKind};

use crate::attempts::{AttemptList, federation_attempt_timing_t};
use crate::guard::catch_or;
use crate::input::{Tagged, free_handle, handle};

/// An error kind: one of the `FEDERATION_ERROR_*` values.
pub type federation_error_kind_t = u32;

/// The configuration is unusable (or could not be read).
pub const FEDERATION_ERROR_CONFIG: federation_error_kind_t = 1;
/// A registry (Consul) could not be used.
pub const FEDERATION_ERROR_DISCOVERY: federation_error_kind_t = 2;
/// No instance of the service is available in any cluster; nothing was sent.
pub const FEDERATION_ERROR_NO_HEALTHY_INSTANCE: federation_error_kind_t = 3;
/// Every candidate instance has an open circuit breaker.
pub const FEDERATION_ERROR_CIRCUIT_OPEN: federation_error_kind_t = 4;
/// The call's deadline passed.
pub const FEDERATION_ERROR_TIMEOUT: federation_error_kind_t = 5;
/// The connection failed or the response could not be read.
pub const FEDERATION_ERROR_TRANSPORT: federation_error_kind_t = 6;
/// A retry was needed but the retry budget was spent.
pub const FEDERATION_ERROR_BUDGET_EXHAUSTED: federation_error_kind_t = 7;
/// The service's concurrency or rate limit is reached; nothing was sent.
pub const FEDERATION_ERROR_OVERLOADED: federation_error_kind_t = 8;
/// The call was cancelled through its `federation_cancel_t`.
pub const FEDERATION_ERROR_CANCELLED: federation_error_kind_t = 9;
/// The request or an argument is invalid (unknown service, NULL pointer, bad UTF-8, too large).
pub const FEDERATION_ERROR_INVALID_REQUEST: federation_error_kind_t = 10;
/// A bug: a caught panic, or an error kind this version of the C ABI does not know.
pub const FEDERATION_ERROR_INTERNAL: federation_error_kind_t = 11;
/// The service's sync store (a `federation_sync_target_t` callback) failed or answered
/// something unusable (`federation_sync_apply_local`).
pub const FEDERATION_ERROR_TARGET: federation_error_kind_t = 12;

/// The C kind of a Rust error kind.
pub(crate) fn kind_code(kind: ErrorKind) -> federation_error_kind_t {
    match kind {
        ErrorKind::Config => FEDERATION_ERROR_CONFIG,
        ErrorKind::Discovery => FEDERATION_ERROR_DISCOVERY,
        ErrorKind::NoHealthyInstance => FEDERATION_ERROR_NO_HEALTHY_INSTANCE,
        ErrorKind::CircuitOpen => FEDERATION_ERROR_CIRCUIT_OPEN,
        ErrorKind::Timeout => FEDERATION_ERROR_TIMEOUT,
        ErrorKind::Transport => FEDERATION_ERROR_TRANSPORT,
        ErrorKind::BudgetExhausted => FEDERATION_ERROR_BUDGET_EXHAUSTED,
        ErrorKind::Overloaded => FEDERATION_ERROR_OVERLOADED,
        ErrorKind::Cancelled => FEDERATION_ERROR_CANCELLED,
        ErrorKind::InvalidRequest => FEDERATION_ERROR_INVALID_REQUEST,
        // `ErrorKind` is non-exhaustive: a kind added later is reported, not hidden.
        _ => FEDERATION_ERROR_INTERNAL,
    }
}

const TAG: u64 = 0x6665_642d_6572_7231; // "fed-err1"

/// An error: a kind and a message. Owned by the caller; free with `federation_error_free`.
pub struct federation_error_t {
    tag: u64,
    kind: federation_error_kind_t,
    message: CString,
    attempts: u32,
    attempt_list: AttemptList,
}

impl Tagged for federation_error_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_error_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl federation_error_t {
    /// A boxed error of `kind` with `message` (interior NULs are replaced).
    pub(crate) fn boxed(kind: federation_error_kind_t, message: String) -> Box<Self> {
        Box::new(Self {
            tag: TAG,
            kind,
            message: to_c_string(message),
            attempts: 0,
            attempt_list: AttemptList::default(),
        })
    }

    /// An owned raw error of `kind` with `message`.
    pub(crate) fn raw(kind: federation_error_kind_t, message: String) -> *mut Self {
        Box::into_raw(Self::boxed(kind, message))
    }

    /// The message (tests).
    #[cfg(test)]
    pub(crate) fn message_text(&self) -> String {
        self.message.to_string_lossy().into_owned()
    }

    /// The C form of a core error.
    pub(crate) fn from_core(error: &Error) -> Box<Self> {
        let mut boxed = Self::boxed(kind_code(error.kind()), error.to_string());
        boxed.attempts = u32::try_from(error.attempts().len()).unwrap_or(u32::MAX);
        boxed.attempt_list = AttemptList::of(error.attempts());
        boxed
    }
}

/// A `CString` from text that may contain NUL bytes (replaced by U+FFFD).
pub(crate) fn to_c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let cleaned = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\u{FFFD}");
        CString::new(cleaned).unwrap_or_default()
    })
}

/// The kind of `error` (`FEDERATION_ERROR_*`); `FEDERATION_ERROR_INVALID_REQUEST` for NULL or
/// a handle that is not a live error.
///
/// # Safety
/// `error` is NULL or a pointer returned by this library and not yet freed. Thread-safe: an
/// error is immutable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_kind(
    error: *const federation_error_t,
) -> federation_error_kind_t {
    catch_or(FEDERATION_ERROR_INTERNAL, || {
        // SAFETY: forwarded from the caller.
        match unsafe { handle(error, "error") } {
            Ok(e) => e.kind,
            Err(_) => FEDERATION_ERROR_INVALID_REQUEST,
        }
    })
}

/// The message of `error`: NUL-terminated UTF-8, borrowed from the error and valid until it is
/// freed. Never NULL (a NULL or invalid handle gives a static message).
///
/// # Safety
/// `error` is NULL or a pointer returned by this library and not yet freed. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_message(
    error: *const federation_error_t,
) -> *const c_char {
    const INVALID: &std::ffi::CStr = c"invalid federation_error_t handle";
    catch_or(INVALID.as_ptr(), || {
        // SAFETY: forwarded from the caller.
        match unsafe { handle(error, "error") } {
            Ok(e) => e.message.as_ptr(),
            Err(_) => INVALID.as_ptr(),
        }
    })
}

/// Where attempt `index` (0-based, in order, below `federation_error_attempts`) went: writes its
/// cluster and instance id (NUL-terminated, borrowed until the error is freed) to the non-NULL
/// out-parameters. False, writing nothing, when out of range or for an invalid handle.
///
/// # Safety
/// `error` is NULL or a live error; `out_cluster`, `out_instance` are each NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_attempt(
    error: *const federation_error_t,
    index: usize,
    out_cluster: *mut *const c_char,
    out_instance: *mut *const c_char,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(error, "error") }.is_ok_and(|e| {
            // SAFETY: forwarded from the caller.
            unsafe { e.attempt_list.write(index, out_cluster, out_instance) }
        })
    })
}

/// When and how attempt `index` (0-based, below `federation_error_attempts`) went: writes its
/// timing to `out` when non-NULL. False, writing nothing, when out of range or for an invalid
/// handle.
///
/// # Safety
/// `error` is NULL or a live error; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_attempt_timing(
    error: *const federation_error_t,
    index: usize,
    out: *mut federation_attempt_timing_t,
) -> bool {
    catch_or(false, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(error, "error") }.is_ok_and(|e| {
            // SAFETY: forwarded from the caller.
            unsafe { e.attempt_list.write_timing(index, out) }
        })
    })
}

/// How many attempts were made before the call failed (0 when nothing was sent).
///
/// # Safety
/// `error` is NULL or a pointer returned by this library and not yet freed. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_attempts(error: *const federation_error_t) -> u32 {
    catch_or(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { handle(error, "error") }.map_or(0, |e| e.attempts)
    })
}

/// Frees an error. NULL is a no-op.
///
/// # Safety
/// `error` is NULL or a pointer returned by this library and not yet freed; after this call it
/// must not be used. Not to be called concurrently with other uses of the same error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_error_free(error: *mut federation_error_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(error, |e| e.tag = 0) }
    });
}
