//! No panic crosses the C boundary.
//!
//! Unwinding out of an `extern "C"` function aborts the process (or worse, with foreign
//! frames), so every entry point runs its body through [`catch`], which turns a panic into a
//! `FEDERATION_ERROR_INTERNAL` error (or a neutral value for accessors) with the panic message.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{FEDERATION_ERROR_INTERNAL, federation_error_t};

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs `f`; a returned `Err` or a panic becomes an owned error pointer, success is NULL.
pub(crate) fn catch(
    f: impl FnOnce() -> Result<(), Box<federation_error_t>>,
) -> *mut federation_error_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(error)) => Box::into_raw(error),
        Err(payload) => federation_error_t::raw(
            FEDERATION_ERROR_INTERNAL,
            format!(
                "internal panic in the federation library: {}",
                panic_message(&*payload)
            ),
        ),
    }
}

/// Runs an accessor; a panic gives `fallback`.
pub(crate) fn catch_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}
