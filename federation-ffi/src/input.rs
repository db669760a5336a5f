//! Reading C inputs safely: NULL checks, size limits and UTF-8 validation.
//!
//! A C caller can pass NULL, a string that never ends, or bytes that are not UTF-8. Each of
//! those becomes a specific error naming the argument instead of a crash: strings are scanned
//! for their NUL terminator only up to the argument's limit, so an unterminated or huge string
//! is rejected as oversized without reading far past the limit.

use std::ffi::c_char;

use crate::error::{FEDERATION_ERROR_INVALID_REQUEST, federation_error_kind_t, federation_error_t};

/// Longest service, cluster or method name, in bytes.
pub(crate) const MAX_NAME: usize = 256;
/// Longest path and query, in bytes.
pub(crate) const MAX_PATH: usize = 16 * 1024;
/// Most request headers.
pub(crate) const MAX_HEADERS: usize = 512;
/// Longest header name or value, in bytes.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest request body, in bytes.
pub(crate) const MAX_BODY: usize = 256 * 1024 * 1024;
/// Largest configuration text or file path, in bytes.
pub(crate) const MAX_CONFIG: usize = 16 * 1024 * 1024;

/// An input problem, with the error kind to report it as.
pub(crate) fn invalid(kind: federation_error_kind_t, message: String) -> Box<federation_error_t> {
    federation_error_t::boxed(kind, message)
}

/// A NUL-terminated UTF-8 string argument of at most `max` bytes.
///
/// # Safety
/// `ptr` is NULL or points to memory readable up to its NUL terminator or `max + 1` bytes,
/// whichever comes first, that stays unchanged for `'a`.
pub(crate) unsafe fn c_str<'a>(
    ptr: *const c_char,
    what: &str,
    max: usize,
    kind: federation_error_kind_t,
) -> Result<&'a str, Box<federation_error_t>> {
    if ptr.is_null() {
        return Err(invalid(kind, format!("`{what}` is NULL")));
    }
    let mut len = 0usize;
    // SAFETY: the caller guarantees readability up to the terminator or max + 1 bytes; we stop
    // at whichever comes first.
    while unsafe { *ptr.add(len) } != 0 {
        len += 1;
        if len > max {
            return Err(invalid(
                kind,
                format!("`{what}` is longer than {max} bytes"),
            ));
        }
    }
    // SAFETY: `len` bytes from `ptr` were just read.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes)
        .map_err(|e| invalid(kind, format!("`{what}` is not valid UTF-8: {e}")))
}

/// A NUL-terminated string argument that may be NULL (meaning "not given").
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn opt_c_str<'a>(
    ptr: *const c_char,
    what: &str,
    max: usize,
) -> Result<Option<&'a str>, Box<federation_error_t>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { c_str(ptr, what, max, FEDERATION_ERROR_INVALID_REQUEST) }.map(Some)
    }
}

/// Most strings in one list argument (per-call tags).
pub(crate) const MAX_LIST: usize = 64;

/// A list argument: `count` NUL-terminated strings one after another from `ptr` (each at most
/// `max` bytes, none empty), or `None` when `ptr` is NULL.
///
/// # Safety
/// When `ptr` is not NULL, it points to `count` consecutive NUL-terminated strings.
pub(crate) unsafe fn c_str_list(
    ptr: *const c_char,
    count: usize,
    what: &str,
    max: usize,
) -> Result<Option<Vec<String>>, Box<federation_error_t>> {
    let kind = FEDERATION_ERROR_INVALID_REQUEST;
    if ptr.is_null() {
        return Ok(None);
    }
    if count > MAX_LIST {
        return Err(invalid(
            kind,
            format!("`{what}` has {count} entries; the limit is {MAX_LIST}"),
        ));
    }
    let mut list = Vec::with_capacity(count);
    let mut at = ptr;
    for i in 0..count {
        let name = format!("{what}[{i}]");
        // SAFETY: the caller guarantees `count` strings from `ptr`; `at` is the start of the
        // `i`-th (just after the previous terminator).
        let item = unsafe { c_str(at, &name, max, kind) }?;
        if item.is_empty() {
            return Err(invalid(kind, format!("`{name}` is empty")));
        }
        // SAFETY: `item` and its terminator were just read.
        at = unsafe { at.add(item.len() + 1) };
        list.push(item.to_owned());
    }
    Ok(Some(list))
}

/// A byte buffer argument: `(ptr, len)`; NULL is allowed when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` points to `len` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
    max: usize,
) -> Result<&'a [u8], Box<federation_error_t>> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!("`{what}` is NULL but its length is {len}"),
        ));
    }
    if len > max {
        return Err(invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!("`{what}` is {len} bytes, more than the limit of {max}"),
        ));
    }
    // SAFETY: the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Writes `value` to an out-parameter, or fails when it is NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(
    out: *mut T,
    value: T,
    what: &str,
) -> Result<(), Box<federation_error_t>> {
    if out.is_null() {
        return Err(invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!("`{what}` is NULL"),
        ));
    }
    // SAFETY: non-NULL and valid for a write per the caller.
    unsafe { out.write(value) };
    Ok(())
}

/// A handle tag check, shared by every opaque type.
pub(crate) trait Tagged {
    /// The type's tag value.
    const TAG: u64;
    /// The C name, for messages.
    const NAME: &'static str;
    /// The tag stored in this value.
    fn tag(&self) -> u64;
}

/// Borrows a handle, checking NULL and its tag.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` created by this library.
pub(crate) unsafe fn handle<'a, T: Tagged>(
    ptr: *const T,
    what: &str,
) -> Result<&'a T, Box<federation_error_t>> {
    // SAFETY: NULL is checked by `as_ref`; otherwise the caller guarantees a live `T`.
    let value = unsafe { ptr.as_ref() }.ok_or_else(|| {
        invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!("`{what}` is NULL"),
        )
    })?;
    if value.tag() != T::TAG {
        return Err(invalid(
            FEDERATION_ERROR_INVALID_REQUEST,
            format!(
                "`{what}` is not a live {} (freed or wrong handle type)",
                T::NAME
            ),
        ));
    }
    Ok(value)
}

/// Frees a boxed handle created by this library, clearing its tag first. NULL is a no-op;
/// a wrong tag is ignored (leaked rather than freed twice).
///
/// # Safety
/// `ptr` is NULL or was returned by this library as a `T` and not freed yet.
pub(crate) unsafe fn free_handle<T: Tagged>(ptr: *mut T, clear: impl FnOnce(&mut T)) {
    // SAFETY: the caller guarantees a live `T` or NULL.
    let Some(value) = (unsafe { ptr.as_mut() }) else {
        return;
    };
    if value.tag() != T::TAG {
        return;
    }
    clear(value);
    // SAFETY: created with `Box::into_raw` by this library and not freed (tag still set).
    drop(unsafe { Box::from_raw(ptr) });
}
