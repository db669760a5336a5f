//! `tracing` spans for calls and attempts, with stable names and fields.
//!
//! Without them, a slow or failed call cannot be explained after the fact: which cluster served
//! it, how many attempts it took, whether the cache answered. The pipeline opens one
//! `federation.call` span per call and one `federation.attempt` span per upstream attempt inside
//! it; fields not known at open time are declared empty and recorded when known, so every
//! subscriber (fmt, JSON, OpenTelemetry) sees the same field set.
//!
//! | span | level | fields |
//! |---|---|---|
//! | `federation.call` | INFO | `service`, `method`, `path`, `trace_id`, `cluster`, `outcome`, `cache`, `attempts` |
//! | `federation.attempt` | DEBUG | `service`, `cluster`, `instance`, `attempt`, `status`, `duration_ms`, `error_kind` |
//!
//! **OpenTelemetry / Jaeger**: the core has no OpenTelemetry dependency unless the feature
//! `opentelemetry` is on (it then parents the call span on the incoming trace and sends each
//! attempt's span as `traceparent`: `otel.rs`). An application exports these spans by adding a
//! `tracing-opentelemetry` layer (0.34 with `opentelemetry` 0.33) to its subscriber, e.g.
//! `tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer))`. The `traceparent` the client sends upstream is derived from the
//! caller's incoming `traceparent` (see [`trace_context`](super::trace_context)), so the upstream
//! service's spans join the caller's trace in Jaeger.

use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

/// Name of the per-call span.
pub const CALL_SPAN: &str = "federation.call";
/// Name of the per-attempt span.
pub const ATTEMPT_SPAN: &str = "federation.attempt";

/// Opens the span of one call (enter it, or `.instrument()` the call's future with it).
/// `trace_id` is formatted only when a subscriber records the span.
pub fn call_span(
    service: &str,
    method: &http::Method,
    path: &str,
    trace_id: impl std::fmt::Display,
) -> Span {
    tracing::info_span!(
        "federation.call",
        service = service,
        method = method.as_str(),
        path = path,
        trace_id = tracing::field::display(trace_id),
        cluster = Empty,
        outcome = Empty,
        cache = Empty,
        attempts = Empty,
    )
}

/// Like [`call_span`], but `trace_id` is called only when a subscriber records the span, so a
/// call nobody traces sets up no trace context for it (same callsite fields, same target).
pub(crate) fn call_span_with<T: std::fmt::Display>(
    service: &str,
    method: &http::Method,
    path: &str,
    trace_id: impl FnOnce() -> T,
) -> Span {
    tracing::info_span!(
        "federation.call",
        service = service,
        method = method.as_str(),
        path = path,
        trace_id = tracing::field::display(trace_id()),
        cluster = Empty,
        outcome = Empty,
        cache = Empty,
        attempts = Empty,
    )
}

/// Records how a call ended on its span. `cluster` is `None` for cache hits and calls refused
/// before routing; `outcome` is `success` or an error kind, as in the metrics; `cache` is the
/// cache status label (`hit`, `miss`, `stale`, `bypass`), so telemetry needs no cache types.
pub fn record_call(span: &Span, cluster: Option<&str>, outcome: &str, cache: &str, attempts: u32) {
    if let Some(cluster) = cluster {
        span.record("cluster", cluster);
    }
    span.record("outcome", outcome);
    span.record("cache", cache);
    span.record("attempts", attempts);
}

/// Opens the span of one upstream attempt (a child of the current call span).
pub fn attempt_span(service: &str, cluster: &str, instance: &str, attempt: u32) -> Span {
    tracing::debug_span!(
        "federation.attempt",
        service = service,
        cluster = cluster,
        instance = instance,
        attempt = attempt,
        status = Empty,
        duration_ms = Empty,
        error_kind = Empty,
    )
}

/// Records how an attempt ended: the HTTP status when a response arrived, its duration, and the
/// error kind when it failed (`timeout`, `transport`, ...).
pub fn record_attempt(
    span: &Span,
    status: Option<u16>,
    duration: Duration,
    error_kind: Option<&str>,
) {
    if let Some(status) = status {
        span.record("status", status);
    }
    span.record("duration_ms", duration.as_secs_f64() * 1000.0);
    if let Some(kind) = error_kind {
        span.record("error_kind", kind);
    }
}
