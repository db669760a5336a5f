//! Owned strings handed to C (health JSON, metrics text, sandbox configuration).
//!
//! Returning a `char *` allocated by Rust invites the caller to `free()` it with the C
//! allocator, which corrupts the heap. So owned text is an opaque `federation_string_t` with its
//! own `_free`, and its bytes are read through an accessor that also gives the length.

use std::ffi::{CString, c_char};

use crate::error::to_c_string;
use crate::guard::catch_or;
use crate::input::{Tagged, free_handle, handle};

const TAG: u64 = 0x6665_642d_7374_7231; // "fed-str1"

/// An owned NUL-terminated UTF-8 string. Free with `federation_string_free`.
pub struct federation_string_t {
    tag: u64,
    text: CString,
}

impl Tagged for federation_string_t {
    const TAG: u64 = TAG;
    const NAME: &'static str = "federation_string_t";
    fn tag(&self) -> u64 {
        self.tag
    }
}

impl federation_string_t {
    /// An owned raw string.
    pub(crate) fn raw(text: String) -> *mut Self {
        Box::into_raw(Box::new(Self {
            tag: TAG,
            text: to_c_string(text),
        }))
    }
}

/// Hands `text` (NULL for `None`) to C through the out-parameter `out`, failing (and freeing
/// it) when `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for a write.
pub(crate) unsafe fn give_string(
    out: *mut *mut federation_string_t,
    text: Option<String>,
    what: &str,
) -> Result<(), Box<crate::error::federation_error_t>> {
    if out.is_null() {
        return Err(crate::input::invalid(
            crate::error::FEDERATION_ERROR_INVALID_REQUEST,
            format!("`{what}` is NULL"),
        ));
    }
    let raw = text.map_or(std::ptr::null_mut(), federation_string_t::raw);
    // SAFETY: non-NULL and valid for a write per the caller.
    unsafe { out.write(raw) };
    Ok(())
}

/// The bytes of `string` (NUL-terminated), borrowed until it is freed; its length without the
/// terminator is written to `out_len` when that is not NULL. NULL for a NULL or invalid handle.
///
/// # Safety
/// `string` is NULL or a live string from this library; `out_len` is NULL or valid for a write.
/// Thread-safe: a string is immutable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_string_data(
    string: *const federation_string_t,
    out_len: *mut usize,
) -> *const c_char {
    catch_or(std::ptr::null(), || {
        // SAFETY: forwarded from the caller.
        let Ok(s) = (unsafe { handle(string, "string") }) else {
            return std::ptr::null();
        };
        if !out_len.is_null() {
            // SAFETY: non-NULL and valid for a write per the caller.
            unsafe { out_len.write(s.text.as_bytes().len()) };
        }
        s.text.as_ptr()
    })
}

/// Frees a string. NULL is a no-op.
///
/// # Safety
/// `string` is NULL or a live string from this library; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn federation_string_free(string: *mut federation_string_t) {
    catch_or((), || {
        // SAFETY: forwarded from the caller.
        unsafe { free_handle(string, |s| s.tag = 0) }
    });
}
