//! Which instance each attempt of a call went to, for responses and errors.
//!
//! A count of attempts says a call was retried, not where: a caller checking that a dead
//! instance stopped receiving traffic (or a conformance runner counting attempts per instance)
//! needs the (cluster, instance id) of every attempt, in order. The strings are converted once,
//! when the handle is made, and borrowed from it afterwards.

use std::ffi::{CString, c_char};

use federation_core::client::Attempt;

use crate::error::to_c_string;

/// The (cluster, instance id) of every attempt, in order.
#[derive(Debug, Default)]
pub(crate) struct AttemptList(Vec<(CString, CString)>);

impl AttemptList {
    /// The C strings of `attempts`.
    pub(crate) fn of(attempts: &[Attempt]) -> Self {
        Self(
            attempts
                .iter()
                .map(|a| {
                    (
                        to_c_string(a.cluster().to_owned()),
                        to_c_string(a.instance().to_owned()),
                    )
                })
                .collect(),
        )
    }

    /// Writes attempt `index`'s borrowed strings; false (nothing written) when out of range.
    ///
    /// # Safety
    /// `out_cluster` and `out_instance` are each NULL or valid for a write.
    pub(crate) unsafe fn write(
        &self,
        index: usize,
        out_cluster: *mut *const c_char,
        out_instance: *mut *const c_char,
    ) -> bool {
        let Some((cluster, instance)) = self.0.get(index) else {
            return false;
        };
        // SAFETY: NULL or valid for a write, per the caller.
        if let Some(out) = unsafe { out_cluster.as_mut() } {
            *out = cluster.as_ptr();
        }
        // SAFETY: NULL or valid for a write, per the caller.
        if let Some(out) = unsafe { out_instance.as_mut() } {
            *out = instance.as_ptr();
        }
        true
    }
}
