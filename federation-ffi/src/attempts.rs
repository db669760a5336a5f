//! Which instance each attempt of a call went to, for responses and errors.
//!
//! A count of attempts says a call was retried, not where: a caller checking that a dead
//! instance stopped receiving traffic (or a conformance runner counting attempts per instance)
//! needs the (cluster, instance id) of every attempt, in order. The strings are converted once,
//! when the handle is made, and borrowed from it afterwards. They share one buffer: a response
//! is made for every call, on the runtime's worker thread, and freed on the caller's, so each
//! allocation spared there is a cross-thread free spared too (one string each was ≈ 9
//! allocations per response).

use std::ffi::{CStr, c_char};

use federation_core::client::{Attempt, AttemptOutcome};

/// When and how one attempt went (for tracing spans in the bindings: the Go OpenTelemetry
/// module records one `federation.attempt` span per attempt from it).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct federation_attempt_timing_t {
    /// Nanoseconds from the start of the call to the start of the attempt.
    pub offset_ns: u64,
    /// Nanoseconds the attempt took.
    pub duration_ns: u64,
    /// The HTTP status; 0 when no response arrived.
    pub status: u16,
    /// What the attempt did (`success`, `retryable_status`, `connect_failed`, `timeout`,
    /// `connection_lost`, `body_too_large`, `cancelled`): a static NUL-terminated string.
    pub outcome: *const c_char,
    /// True when the attempt was a hedge (a parallel copy sent after the hedge delay).
    pub hedge: bool,
}

/// An attempt's timing as Rust data (`federation_attempt_timing_t` holds a raw pointer, which
/// would make every response `!Send`).
#[derive(Debug, Clone, Copy)]
struct Timing {
    offset_ns: u64,
    duration_ns: u64,
    status: u16,
    outcome: &'static CStr,
    hedge: bool,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn outcome_c(outcome: AttemptOutcome) -> &'static CStr {
    match outcome.as_str() {
        "success" => c"success",
        "retryable_status" => c"retryable_status",
        "connect_failed" => c"connect_failed",
        "timeout" => c"timeout",
        "connection_lost" => c"connection_lost",
        "body_too_large" => c"body_too_large",
        "cancelled" => c"cancelled",
        _ => c"unknown",
    }
}

impl Timing {
    fn of(a: &Attempt) -> Self {
        Self {
            offset_ns: nanos(a.offset()),
            duration_ns: nanos(a.duration()),
            status: a.status().map_or(0, |s| s.as_u16()),
            outcome: outcome_c(a.outcome()),
            hedge: a.is_hedge(),
        }
    }
}

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
    timings: Vec<Timing>,
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
            timings: attempts.iter().map(Timing::of).collect(),
        }
    }

    /// Writes attempt `index`'s timing; false (nothing written) when out of range.
    ///
    /// # Safety
    /// `out` is NULL or valid for a write.
    pub(crate) unsafe fn write_timing(
        &self,
        index: usize,
        out: *mut federation_attempt_timing_t,
    ) -> bool {
        let Some(t) = self.timings.get(index) else {
            return false;
        };
        // SAFETY: NULL or valid for a write, per the caller.
        if let Some(out) = unsafe { out.as_mut() } {
            *out = federation_attempt_timing_t {
                offset_ns: t.offset_ns,
                duration_ns: t.duration_ns,
                status: t.status,
                outcome: t.outcome.as_ptr(),
                hedge: t.hedge,
            };
        }
        true
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
    fn timings_read_back_by_index() {
        let list = AttemptList::of(&[]);
        let mut out = federation_attempt_timing_t {
            offset_ns: 7,
            duration_ns: 7,
            status: 7,
            outcome: std::ptr::null(),
            hedge: true,
        };
        // SAFETY: `out` is valid for a write.
        assert!(!unsafe { list.write_timing(0, &mut out) }, "no attempts");
        assert_eq!(out.offset_ns, 7, "nothing written out of range");
        assert!(out.hedge, "nothing written out of range");
        assert_eq!(
            outcome_c(AttemptOutcome::RetryableStatus),
            c"retryable_status"
        );
        assert_eq!(outcome_c(AttemptOutcome::BodyTooLarge), c"body_too_large");
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
