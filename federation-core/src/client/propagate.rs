//! What a call tells the next hop: the remaining deadline and the trace context.
//!
//! Without a propagated deadline a downstream service keeps working (and retrying) long after
//! its caller gave up, multiplying load during an outage; without a trace context a request that
//! crosses both clusters shows up as unrelated fragments in Jaeger. So every attempt carries
//! `X-Federation-Deadline-Ms` (milliseconds left of the whole call, as Finagle and gRPC do) and a
//! W3C `traceparent`: an incoming one keeps its trace id and flags and gets a fresh parent id; a
//! missing or malformed one is replaced by a new sampled trace. An incoming deadline header on
//! the request shortens the call's own deadline.

use std::time::Duration;

use http::HeaderValue;
use http::header::HeaderName;

/// Header carrying the milliseconds left of the caller's deadline.
pub const DEADLINE_HEADER: &str = "x-federation-deadline-ms";

/// The deadline header as a `HeaderName`.
pub(crate) static DEADLINE: HeaderName = HeaderName::from_static(DEADLINE_HEADER);

/// The W3C trace context header.
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The incoming deadline carried by `value`, if it is a valid number of milliseconds.
pub(crate) fn parse_deadline(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_millis)
}

/// The deadline header value for `remaining` (at least 1 ms: 0 would read as "expired").
pub(crate) fn deadline_value(remaining: Duration) -> HeaderValue {
    let ms = remaining.as_millis().clamp(1, u128::from(u64::MAX));
    HeaderValue::from(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The `traceparent` to send: the incoming trace continued with a new parent id, or a new trace.
/// `random` supplies fresh randomness (two calls' worth of 64 bits).
pub(crate) fn traceparent(
    incoming: Option<&HeaderValue>,
    mut random: impl FnMut() -> u64,
) -> HeaderValue {
    let mut span = random();
    if span == 0 {
        span = 1;
    }
    let text = match incoming.and_then(parse_traceparent) {
        Some((trace, flags)) => format!("00-{trace}-{span:016x}-{flags}"),
        None => {
            let hi = random();
            let lo = random() | 1;
            format!("00-{hi:016x}{lo:016x}-{span:016x}-01")
        }
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
    })
}

/// The trace id and flags of a valid version-00 `traceparent`.
fn parse_traceparent(value: &HeaderValue) -> Option<(&str, &str)> {
    let text = value.to_str().ok()?;
    let mut parts = text.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let ok = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2);
    ok.then_some((trace, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0x1234_u64;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn continues_an_incoming_trace_with_a_new_parent() {
        let incoming =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let out = traceparent(Some(&incoming), counter());
        let out = out.to_str().expect("ascii");
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert!(out.ends_with("-01"));
        assert!(!out.contains("00f067aa0ba902b7"));
    }

    #[test]
    fn replaces_a_malformed_trace() {
        let bad = HeaderValue::from_static("00-XYZ-00f067aa0ba902b7-01");
        let out = traceparent(Some(&bad), counter());
        let out = out.to_str().expect("ascii");
        assert_eq!(out.len(), 55, "{out}");
        assert!(parse_traceparent(&HeaderValue::from_str(out).expect("valid")).is_some());
    }

    #[test]
    fn deadline_round_trips_and_never_reads_as_expired() {
        assert_eq!(deadline_value(Duration::from_micros(10)), "1");
        let v = deadline_value(Duration::from_millis(250));
        assert_eq!(parse_deadline(&v), Some(Duration::from_millis(250)));
        assert_eq!(parse_deadline(&HeaderValue::from_static("soon")), None);
    }
}
