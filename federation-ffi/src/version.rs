//! The library's version, for the bindings' own `Version()`.
//!
//! **Failure prevented.** A binding that writes its version into its own source drifts from the
//! library it links (a Go module tagged 0.2.0 around a 0.1.0 static library reports the wrong
//! one). The version here is the crate's, which is the workspace's, compiled into the library, so
//! every binding that asks it reports the version of the code that actually runs.

use std::ffi::{CStr, c_char};

/// The version as a static C string (`CARGO_PKG_VERSION` of the workspace).
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
    };

/// The library's version (`"0.1.0"`): the same as `federation --version` and the Python
/// package's `federation.__version__`. The string is static: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn federation_version() -> *const c_char {
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_workspace_version() {
        // SAFETY: federation_version returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(federation_version()) };
        assert_eq!(text.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
        assert!(!env!("CARGO_PKG_VERSION").is_empty());
    }
}
