//! The call and attempt spans carry the documented fields, as a subscriber (fmt, JSON,
//! OpenTelemetry) would receive them.

mod span_capture {
    include!("telemetry_support/span_capture.rs");
}

use std::time::Duration;

use federation_core::cache::CacheStatus;
use federation_core::telemetry::spans;
use span_capture::Capture;

#[test]
fn call_and_attempt_spans_carry_their_fields() {
    let capture = Capture::start();
    capture.in_scope(|| {
        let call = spans::call_span("user", &http::Method::GET, "/api/v1/users/42", "abc");
        let _entered = call.enter();
        let attempt = spans::attempt_span("user", "zervigo", "u1", 1);
        spans::record_attempt(
            &attempt,
            Some(503),
            Duration::from_millis(5),
            Some("status"),
        );
        drop(attempt);
        spans::record_call(
            &call,
            Some("looma"),
            "success",
            CacheStatus::Miss.as_str(),
            2,
        );
    });
    let call = capture.span("federation.call").expect("call span captured");
    assert_eq!(call.field("service"), Some("user"));
    assert_eq!(call.field("method"), Some("GET"));
    assert_eq!(call.field("path"), Some("/api/v1/users/42"));
    assert_eq!(call.field("trace_id"), Some("abc"));
    assert_eq!(call.field("cluster"), Some("looma"));
    assert_eq!(call.field("outcome"), Some("success"));
    assert_eq!(call.field("cache"), Some("miss"));
    assert_eq!(call.field("attempts"), Some("2"));
    let attempt = capture
        .span("federation.attempt")
        .expect("attempt span captured");
    assert_eq!(attempt.parent.as_deref(), Some("federation.call"));
    assert_eq!(attempt.field("instance"), Some("u1"));
    assert_eq!(attempt.field("cluster"), Some("zervigo"));
    assert_eq!(attempt.field("status"), Some("503"));
    assert_eq!(attempt.field("duration_ms"), Some("5.0"));
    assert_eq!(attempt.field("error_kind"), Some("status"));
}
