//! Which instance each attempt of a call went to, for responses and errors.
//!
//! A count of attempts says a call was retried, not where: a caller checking that a dead
//! instance stopped receiving traffic (or a conformance runner counting attempts per instance)
//! needs the (cluster, instance id) of every attempt, in order. The strings are converted once,
//! when the handle is made, and borrowed from it afterwards. They share one buffer: a response
//! is made for every call, on the runtime's worker thread, and freed on the caller's, so each
//! allocation spared there is a cross-thread free spared too (one string each was ≈ 9
//! allocations per response).

use std::ffi::c_char;

use federation_core::client::Attempt;

/// NUL-terminated strings in one buffer, addressed by index (interior NULs become U+FFFD, as
/// in `to_c_string`).
#[derive(Debug, Default)]
struct CNames {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl CNames {
    fn with_capacity(strings: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes + strings),
            starts: Vec::with_capacity(strings),
        }
    }

    fn push(&mut self, text: &str) {
        self.starts.push(self.bytes.len());
        if text.as_bytes().contains(&0) {
            self.bytes
                .extend_from_slice(text.replace('\0', "\u{FFFD}").as_bytes());
        } else {
            self.bytes.extend_from_slice(text.as_bytes());
        }
        self.bytes.push(0);
    }

    /// String `index`, borrowed from self.
    fn get(&self, index: usize) -> Option<*const c_char> {
        let start = *self.starts.get(index)?;
        Some(self.bytes[start..].as_ptr().cast())
    }
}

/// The (cluster, instance id) of every attempt, in order, after `lead` other strings (the
/// answering cluster and instance of a response).
#[derive(Debug, Default)]
pub(crate) struct AttemptList {
    names: CNames,
    lead: usize,
}

impl AttemptList {
    /// The C strings of `attempts`.
    pub(crate) fn of(attempts: &[Attempt]) -> Self {
        Self::with_lead(&[], attempts)
    }

    /// The C strings of `lead` (read back with [`Self::lead`]) and of `attempts`.
    pub(crate) fn with_lead(lead: &[&str], attempts: &[Attempt]) -> Self {
        let size = lead.iter().map(|s| s.len()).sum::<usize>()
            + attempts
                .iter()
                .map(|a| a.cluster().len() + a.instance().len())
                .sum::<usize>();
        let mut names = CNames::with_capacity(lead.len() + 2 * attempts.len(), size);
        for s in lead {
            names.push(s);
        }
        for a in attempts {
            names.push(a.cluster());
            names.push(a.instance());
        }
        Self {
            names,
            lead: lead.len(),
        }
    }

    /// Lead string `index` (see [`Self::with_lead`]), borrowed from self.
    pub(crate) fn lead(&self, index: usize) -> Option<*const c_char> {
        if index < self.lead {
            self.names.get(index)
        } else {
            None
        }
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
        let at = index.saturating_mul(2).saturating_add(self.lead);
        let (Some(cluster), Some(instance)) = (self.names.get(at), self.names.get(at + 1)) else {
            return false;
        };
        // SAFETY: NULL or valid for a write, per the caller.
        if let Some(out) = unsafe { out_cluster.as_mut() } {
            *out = cluster;
        }
        // SAFETY: NULL or valid for a write, per the caller.
        if let Some(out) = unsafe { out_instance.as_mut() } {
            *out = instance;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn text(p: *const c_char) -> String {
        // SAFETY: a pointer from CNames, NUL-terminated and alive while the list is.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn lead_strings_and_attempts_read_back_in_order() {
        let list = AttemptList::with_lead(&["zervigo", "user-1"], &[]);
        assert_eq!(list.lead(0).map(text).as_deref(), Some("zervigo"));
        assert_eq!(list.lead(1).map(text).as_deref(), Some("user-1"));
        assert_eq!(list.lead(2), None);
        let (mut c, mut i) = (std::ptr::null(), std::ptr::null());
        // SAFETY: both out-parameters are valid for a write.
        assert!(!unsafe { list.write(0, &mut c, &mut i) }, "no attempts");
    }

    #[test]
    fn interior_nul_bytes_are_replaced() {
        let mut names = CNames::default();
        names.push("a\0b");
        names.push("");
        assert_eq!(names.get(0).map(text).as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(names.get(1).map(text).as_deref(), Some(""));
        assert_eq!(names.get(2), None);
    }
}
