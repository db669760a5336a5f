//! What a call tells the next hop: the remaining deadline and the trace context.
//!
//! Without a propagated deadline a downstream service keeps working (and retrying) long after
//! its caller gave up, multiplying load during an outage; without a trace context a request that
//! crosses both clusters shows up as unrelated fragments in Jaeger. So every attempt carries
//! `X-Federation-Deadline-Ms` (milliseconds left of the whole call, as Finagle and gRPC do) and a
//! W3C `traceparent`: an incoming one keeps its trace id and flags and gets a fresh parent id; a
//! missing or malformed one is replaced by a new sampled trace. An incoming deadline header on
//! the request shortens the call's own deadline.

use std::cell::RefCell;
use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};

use crate::telemetry::trace_context::TraceParent;

/// Header carrying the milliseconds left of the caller's deadline.
pub const DEADLINE_HEADER: &str = "x-federation-deadline-ms";

/// The deadline header as a `HeaderName`.
pub(crate) static DEADLINE: HeaderName = HeaderName::from_static(DEADLINE_HEADER);

/// The incoming deadline carried by `value`, if it is a valid number of milliseconds.
pub(crate) fn parse_deadline(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_millis)
}

thread_local! {
    /// The last deadline value made on this thread. First attempts of a service's calls start
    /// within a millisecond of their admission, so nearly all of them send the same number of
    /// milliseconds: a clone of this value counts a reference where formatting a new one
    /// allocates.
    static LAST_DEADLINE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
}

/// The deadline header value for `remaining` (at least 1 ms: 0 would read as "expired").
pub(crate) fn deadline_value(remaining: Duration) -> HeaderValue {
    let ms = remaining.as_millis().clamp(1, u128::from(u64::MAX));
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    LAST_DEADLINE.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((kept, value)) if *kept == ms => value.clone(),
            _ => {
                let value = HeaderValue::from(ms);
                *last = Some((ms, value.clone()));
                value
            }
        }
    })
}

/// The call's trace context (for its span) and the outgoing `traceparent` every attempt sends:
/// a valid incoming `traceparent` in `headers` is continued (same trace id and flags, a new
/// parent id); a missing or malformed one is replaced by a new sampled root, whose child is sent.
/// The value is made once per call and kept apart from the caller's `headers` (each attempt
/// inserts it), so a call that may retry need not copy the caller's map to keep it.
/// `tracestate` is left as the caller set it. This is the only place a call generates trace ids
/// ([`TraceParent`] does the parsing and formatting), drawing from the call's one `rng`.
pub(crate) fn trace_call(
    headers: &HeaderMap,
    rng: &mut impl rand::Rng,
) -> (TraceParent, HeaderValue) {
    let trace = TraceParent::from_headers(headers).unwrap_or_else(|| TraceParent::new_root(rng));
    let outgoing = trace.child_with(rng).header_value();
    (trace, outgoing)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::telemetry::trace_context::TRACEPARENT;

    fn outgoing(incoming: Option<&'static str>) -> (TraceParent, String) {
        let mut headers = HeaderMap::new();
        if let Some(v) = incoming {
            headers.insert(TRACEPARENT, HeaderValue::from_static(v));
        }
        let (trace, value) = trace_call(&headers, &mut SmallRng::seed_from_u64(7));
        let sent = value.to_str().expect("ascii").to_owned();
        (trace, sent)
    }

    #[test]
    fn continues_an_incoming_trace_with_a_new_parent() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (trace, out) = outgoing(Some(incoming));
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert!(out.ends_with("-01"));
        assert!(!out.contains("00f067aa0ba902b7"));
    }

    #[test]
    fn replaces_a_malformed_trace() {
        let (trace, out) = outgoing(Some("00-XYZ-00f067aa0ba902b7-01"));
        assert_eq!(out.len(), 55, "{out}");
        let sent = TraceParent::parse(&out).expect("valid");
        assert_eq!(
            sent.trace_id(),
            trace.trace_id(),
            "the new root's child is sent"
        );
        assert_ne!(sent.span_id(), trace.span_id());
        let (root, out) = outgoing(None);
        assert_eq!(
            TraceParent::parse(&out).map(|t| t.trace_id()),
            Some(root.trace_id())
        );
    }

    #[test]
    fn deadline_round_trips_and_never_reads_as_expired() {
        assert_eq!(deadline_value(Duration::from_micros(10)), "1");
        let v = deadline_value(Duration::from_millis(250));
        assert_eq!(parse_deadline(&v), Some(Duration::from_millis(250)));
        assert_eq!(parse_deadline(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn the_kept_deadline_value_is_reused_only_for_the_same_milliseconds() {
        for ms in [250, 250, 251, 250, 7, 7, 30_000] {
            let value = deadline_value(Duration::from_millis(ms));
            assert_eq!(value, ms.to_string().as_str(), "{ms} ms");
        }
        // Sub-millisecond differences round down to the same value.
        assert_eq!(deadline_value(Duration::from_micros(250_900)), "250");
    }
}
