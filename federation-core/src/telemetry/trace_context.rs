//! W3C Trace Context (`traceparent`, `tracestate`) so a trace continues across both clusters.
//!
//! Without propagation, a call that crosses from a Go service through this client to a Python
//! service shows up as unrelated traces. The algorithm: if the caller's request carries a valid
//! `traceparent`, every attempt sends a *child* of it (same trace id, new span id, same flags);
//! otherwise the call starts a new root trace (random trace id, sampled). `tracestate` is passed
//! through unchanged. Invalid headers are ignored (a new root is started), never an error.
//!
//! ```
//! use federation_core::telemetry::trace_context::TraceParent;
//! let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
//!     .expect("valid traceparent");
//! let child = parent.child();
//! assert_eq!(child.trace_id(), parent.trace_id());
//! assert_ne!(child.span_id(), parent.span_id());
//! ```

use std::fmt;

use http::HeaderMap;
use http::header::HeaderName;

/// The `traceparent` header name.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header name.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A parsed `traceparent` (version 00 semantics).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` if it is not valid per the W3C spec (wrong length,
    /// upper-case or non-hex digits, all-zero ids, version `ff`, or extra data on version 00).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return None;
        }
        let version = hex_u8(value.get(0..2)?)?;
        if version == 0xff || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        // Version 00 is exactly 55 bytes; later versions may append `-...` fields.
        if (version == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        let trace_id = u128::from_str_radix(lower_hex(value.get(3..35)?)?, 16).ok()?;
        let span_id = u64::from_str_radix(lower_hex(value.get(36..52)?)?, 16).ok()?;
        let flags = hex_u8(value.get(53..55)?)?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The `traceparent` of `headers`, if present and valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }

    /// A new sampled root trace with ids from `rng`.
    pub fn new_root(rng: &mut impl rand::Rng) -> Self {
        let trace_id = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        Self {
            trace_id: trace_id.max(1),
            span_id: rng.next_u64().max(1),
            flags: 0x01,
        }
    }

    /// A child span of this one: same trace id and flags, new span id (thread-local RNG).
    pub fn child(&self) -> Self {
        self.child_with(&mut rand::rng())
    }

    /// A child span with its id from `rng` (for deterministic tests).
    pub fn child_with(&self, rng: &mut impl rand::Rng) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: rng.next_u64().max(1),
            flags: self.flags,
        }
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The trace id as a value that formats to 32 lower-case hex digits, without allocating
    /// until it is formatted (span fields are formatted only when a subscriber records them).
    pub fn trace_id_display(&self) -> impl fmt::Display + use<> {
        TraceIdHex(self.trace_id)
    }

    /// The span (parent) id as 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// The header value: `00-<trace id>-<span id>-<flags>`.
    pub fn to_header(&self) -> String {
        self.to_string()
    }

    /// The `traceparent` header value, written without an intermediate `String`.
    pub fn header_value(&self) -> http::HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 55];
        out[0] = b'0';
        out[1] = b'0';
        let mut put = |at: usize, digits: usize, value: u128| {
            for i in 0..digits {
                let nibble = (value >> (4 * (digits - 1 - i))) & 0xf;
                out[at + i] = HEX[nibble as usize];
            }
        };
        put(3, 32, self.trace_id);
        put(36, 16, u128::from(self.span_id));
        put(53, 2, u128::from(self.flags));
        // Only hex digits and `-`: always a valid header value.
        // Shared bytes: a call with retries clones its headers for every attempt.
        http::HeaderValue::from_maybe_shared(crate::shared_bytes::shared_bytes(&out))
            .unwrap_or_else(|_| {
                http::HeaderValue::from_static(
                    "00-00000000000000000000000000000001-0000000000000001-01",
                )
            })
    }

    /// Sets `traceparent` to this span and, when given, `tracestate` (passed through unchanged).
    pub fn inject(&self, headers: &mut HeaderMap, tracestate: Option<&http::HeaderValue>) {
        headers.insert(TRACEPARENT, self.header_value());
        match tracestate {
            Some(state) => {
                headers.insert(TRACESTATE, state.clone());
            }
            None => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// A trace id formatted as 32 lower-case hex digits.
struct TraceIdHex(u128);

impl fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

fn lower_hex(s: &str) -> Option<&str> {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then_some(s)
}

fn hex_u8(s: &str) -> Option<u8> {
    u8::from_str_radix(lower_hex(s)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips() {
        let tp = TraceParent::parse(VALID).expect("valid");
        assert_eq!(tp.to_header(), VALID);
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id(), "00f067aa0ba902b7");
        assert!(tp.sampled());
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn future_versions_are_read() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        let tp = TraceParent::parse(v).expect("future version");
        assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn child_keeps_trace_and_flags() {
        let tp = TraceParent::parse(VALID).expect("valid");
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.span_id(), tp.span_id());
        assert!(child.sampled());
        assert!(TraceParent::parse(&child.to_header()).is_some());
    }

    #[test]
    fn new_root_is_valid_and_sampled() {
        let root = TraceParent::new_root(&mut rand::rng());
        let parsed = TraceParent::parse(&root.to_header()).expect("root parses");
        assert_eq!(parsed, root);
        assert!(root.sampled());
    }

    #[test]
    fn header_value_matches_the_text_form() {
        let tp = TraceParent::parse(VALID).expect("valid");
        assert_eq!(tp.header_value(), VALID);
        assert_eq!(tp.trace_id_display().to_string(), tp.trace_id());
        let root = TraceParent::new_root(&mut rand::rng());
        assert_eq!(root.header_value(), root.to_header().as_str());
    }

    #[test]
    fn inject_sets_headers() {
        let tp = TraceParent::parse(VALID).expect("valid");
        let mut h = HeaderMap::new();
        tp.inject(&mut h, Some(&http::HeaderValue::from_static("vendor=x")));
        assert_eq!(TraceParent::from_headers(&h), Some(tp));
        assert_eq!(
            h.get(TRACESTATE).map(|v| v.as_bytes()),
            Some(&b"vendor=x"[..])
        );
    }
}
