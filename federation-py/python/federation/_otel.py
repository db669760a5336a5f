"""OpenTelemetry for federation calls: continue the caller's trace, record the SDK's spans.

The failure this prevents: a service traced with OpenTelemetry loses its trace at every
federation call (the core only continues a `traceparent` it is given) and never sees the call's
retries and failovers in its traces. `federation/__init__.py` imports this module only when
`opentelemetry` is importable and registers `begin` as the native module's call hook.

For each call, `begin` opens a `federation.call` span (kind CLIENT) as a child of the active
context, or of the caller's own `traceparent` header when the call passes one, and injects its
context with the global propagator (W3C `traceparent` and `tracestate` by default), so the
upstream service continues the same trace. When the call ends, `finish` records one
`federation.attempt` span per attempt (timed from the attempt's offset and duration) and the
call's outcome. Span names and attributes are those of the Rust `tracing` spans
(docs/metrics.md); a tracer provider that records nothing costs a few dictionary operations.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping, Optional, Union

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from federation._federation import Attempt, FederationError, Response, __version__

CALL_SPAN = "federation.call"
ATTEMPT_SPAN = "federation.attempt"

_Finish = Callable[[Optional[Response], Optional[BaseException]], None]
_TRACE_HEADERS = ("traceparent", "tracestate")


def _caller_trace_headers(headers: Any) -> dict[str, str]:
    """The `traceparent`/`tracestate` the caller passed explicitly (lower-case names)."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        if isinstance(name, str) and name.lower() in _TRACE_HEADERS:
            found[name.lower()] = str(value)
    return found


def begin(
    method: str, service: str, path: str, headers: Any
) -> Optional[tuple[list[tuple[str, str]], _Finish]]:
    """Opens the call span; returns the headers to add and the callable that ends it."""
    explicit = _caller_trace_headers(headers)
    parent = propagate.extract(explicit) if "traceparent" in explicit else None
    tracer = trace.get_tracer("federation", __version__)
    start = time.time_ns()
    span = tracer.start_span(
        CALL_SPAN,
        context=parent,
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={"service": service, "method": method, "path": path},
    )
    carrier: dict[str, str] = {}
    if not explicit:
        # A span that is not recorded (no SDK, or sampled out) still carries the parent's
        # context, so the upstream continues the caller's trace either way.
        propagate.inject(carrier, context=trace.set_span_in_context(span))
    extra = [(k, v) for k, v in carrier.items() if k in _TRACE_HEADERS]
    if not span.is_recording():
        span.end()
        return (extra, _untraced) if extra else None
    span.set_attribute("trace_id", format(span.get_span_context().trace_id, "032x"))

    def finish(response: Optional[Response], error: Optional[BaseException]) -> None:
        _finish(tracer, span, start, service, response, error)

    return extra, finish


def _untraced(response: Optional[Response], error: Optional[BaseException]) -> None:
    """The end of a call whose span is not recorded: nothing to do."""


def _finish(
    tracer: trace.Tracer,
    span: trace.Span,
    start: int,
    service: str,
    response: Optional[Response],
    error: Optional[BaseException],
) -> None:
    attempts: list[Attempt] = []
    if response is not None:
        attempts = response.attempts
        span.set_attribute("outcome", "success")
        span.set_attribute("cache", response.cache)
    elif error is not None:
        if isinstance(error, FederationError):
            attempts = error.attempts
            span.set_attribute("outcome", error.kind)
        elif isinstance(error, asyncio.CancelledError):  # the awaiting task was cancelled
            span.set_attribute("outcome", "cancelled")
        else:
            span.set_attribute("outcome", type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.record_exception(error)
    span.set_attribute("attempts", len(attempts))
    if attempts:  # as in Rust: no cluster for a cache hit or a call refused before routing
        span.set_attribute("cluster", attempts[-1].cluster)
    context = trace.set_span_in_context(span)
    for number, attempt in enumerate(attempts, start=1):
        _attempt_span(tracer, context, start, service, number, attempt)
    span.end()


def _attempt_span(
    tracer: trace.Tracer,
    context: Any,
    call_start: int,
    service: str,
    number: int,
    attempt: Attempt,
) -> None:
    begun = call_start + int(attempt.offset * 1e9)
    attributes: dict[str, Union[str, int, float]] = {
        "service": service,
        "cluster": attempt.cluster,
        "instance": attempt.instance,
        "attempt": number,
        "duration_ms": attempt.duration * 1e3,
    }
    if attempt.status is not None:
        attributes["status"] = attempt.status
    if attempt.outcome != "success":
        attributes["error_kind"] = attempt.outcome
    span = tracer.start_span(
        ATTEMPT_SPAN, context=context, start_time=begun, attributes=attributes
    )
    span.end(end_time=begun + int(attempt.duration * 1e9))
