//! OpenTelemetry wiring of the call and attempt spans (feature `opentelemetry`).
//!
//! **Failure prevented.** With a `tracing-opentelemetry` layer installed, the `federation.call`
//! span would start a trace of its own while the upstream received the core's `traceparent` of
//! another trace: Jaeger would show the call and the upstream's work as unrelated traces. With
//! this feature the call span's OpenTelemetry parent is the caller's incoming `traceparent`
//! (and `tracestate`) when the request carries one, else the current span's context (the
//! application's own trace); and every attempt sends its own span's context as `traceparent`,
//! so the upstream's spans are children of the attempt that reached them. The call span's
//! `trace_id` field is the OpenTelemetry trace id. Without a recording layer (or with the span
//! disabled) nothing changes: the core's own `traceparent` is sent.

use std::str::FromStr;

use http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::trace_context::{TRACEPARENT, TRACESTATE, TraceParent};

/// The caller's trace context from its `traceparent`/`tracestate`, if valid.
pub(crate) fn incoming(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let parent = TraceParent::from_headers(headers)?;
    let state = headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceState::from_str(v).ok())
        .unwrap_or_default();
    let flags = if parent.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = SpanContext::new(
        TraceId::from_hex(&parent.trace_id()).ok()?,
        SpanId::from_hex(&parent.span_id()).ok()?,
        flags,
        true,
        state,
    );
    Some(opentelemetry::Context::new().with_remote_span_context(context))
}

/// Makes `incoming` the OpenTelemetry parent of the call span and records the span's trace id.
pub(crate) fn begin_call(span: &Span, incoming: Option<opentelemetry::Context>) {
    if span.is_disabled() {
        return;
    }
    if let Some(parent) = incoming {
        // Fails only for a span without an OpenTelemetry layer: nothing to parent then.
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let otel = context.span().span_context().clone();
    if otel.is_valid() {
        span.record("trace_id", tracing::field::display(otel.trace_id()));
    }
}

/// Sets the attempt span's context (the current span) as the attempt's `traceparent`.
pub(crate) fn attempt_headers(headers: &mut HeaderMap) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    let otel = context.span().span_context().clone();
    if !otel.is_valid() {
        return;
    }
    let value = format!(
        "00-{}-{}-{:02x}",
        otel.trace_id(),
        otel.span_id(),
        otel.trace_flags().to_u8()
    );
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        headers.insert(TRACEPARENT, value);
    }
}
