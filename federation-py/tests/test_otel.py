"""OpenTelemetry: a call continues the active trace and records `federation.call` and
`federation.attempt` spans in the Python SDK (read back from its in-memory exporter); without
`opentelemetry` nothing is imported and calls are unchanged."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import federation
from federation import _otel
from federation.testing import Sandbox

EXPORTER = InMemorySpanExporter()


class _WhileTesting(SimpleSpanProcessor):
    """Exports only while a test uses the `spans` fixture: the global provider cannot be
    removed, and the other tests' calls must not pile up spans in memory."""

    active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            super().on_end(span)


PROCESSOR = _WhileTesting(EXPORTER)


@pytest.fixture()
def spans() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(PROCESSOR)
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    PROCESSOR.active = True
    yield EXPORTER
    PROCESSOR.active = False
    EXPORTER.clear()


def by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def upstream_trace(response: federation.Response) -> str:
    traceparent = response.json()["traceparent"]
    assert isinstance(traceparent, str)
    return traceparent


def test_hook_is_installed_with_opentelemetry() -> None:
    assert federation._federation._call_hook_set()


def test_sync_call_continues_the_active_span(client: federation.FederatedServiceClient, spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("handler") as parent:
        response = client.get_sync("user", "/api/v1/users/7")
    parent_ctx = parent.get_span_context()
    (call,) = by_name(spans, "federation.call")
    (attempt,) = by_name(spans, "federation.attempt")
    assert call.parent is not None and call.parent.span_id == parent_ctx.span_id
    assert call.context.trace_id == parent_ctx.trace_id
    assert attempt.parent is not None and attempt.parent.span_id == call.context.span_id
    # The upstream continues the same trace.
    assert upstream_trace(response).split("-")[1] == format(parent_ctx.trace_id, "032x")
    assert dict(call.attributes or {}) == {
        "service": "user", "method": "GET", "path": "/api/v1/users/7",
        "trace_id": format(parent_ctx.trace_id, "032x"), "outcome": "success",
        "cache": "bypass", "attempts": 1, "cluster": "zervigo",
    }
    attrs = dict(attempt.attributes or {})
    assert {k: attrs[k] for k in ("service", "cluster", "instance", "attempt", "status")} == {
        "service": "user", "cluster": "zervigo", "instance": response.instance, "attempt": 1, "status": 200,
    }
    assert "error_kind" not in attrs
    assert call.start_time is not None and call.end_time is not None
    assert attempt.start_time is not None and attempt.end_time is not None
    assert call.start_time <= attempt.start_time <= attempt.end_time <= call.end_time


def test_async_call_and_failover_record_every_attempt(
    world: Sandbox, client: federation.FederatedServiceClient, spans: InMemorySpanExporter
) -> None:
    for instance in world.instances("zervigo", "user-service"):
        instance.set_behavior(status=503)
    tracer = trace.get_tracer("test")

    async def main() -> federation.Response:
        with tracer.start_as_current_span("handler"):
            return await client.get("user", "/api/v1/users/8")

    response = asyncio.run(main())
    assert response.cluster == "looma"
    (call,) = by_name(spans, "federation.call")
    attempts = sorted(by_name(spans, "federation.attempt"), key=lambda s: s.start_time or 0)
    assert len(attempts) == len(response.attempts) >= 2
    assert [dict(s.attributes or {})["cluster"] for s in attempts] == [a.cluster for a in response.attempts]
    assert [dict(s.attributes or {})["attempt"] for s in attempts] == list(range(1, len(attempts) + 1))
    assert dict(attempts[0].attributes or {})["error_kind"] == "retryable_status"
    assert dict(attempts[0].attributes or {})["status"] == 503
    assert dict(call.attributes or {})["attempts"] == len(attempts)
    assert dict(call.attributes or {})["cluster"] == "looma"
    starts = [s.start_time or 0 for s in attempts]
    assert starts == sorted(starts) and starts[0] < starts[-1]
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in attempts)


def test_failed_call_marks_the_span(
    world: Sandbox, client: federation.FederatedServiceClient, spans: InMemorySpanExporter
) -> None:
    for cluster, name in (("zervigo", "user-service"), ("looma", "looma-user-api")):
        for instance in world.instances(cluster, name):
            instance.set_behavior(latency=2.0)
    with pytest.raises(federation.TimeoutError):
        client.get_sync("user", "/slow", timeout=0.3)
    (call,) = by_name(spans, "federation.call")
    assert dict(call.attributes or {})["outcome"] == "timeout"
    assert call.status.status_code == trace.StatusCode.ERROR


def test_cancelled_async_call_ends_its_span(
    world: Sandbox, client: federation.FederatedServiceClient, spans: InMemorySpanExporter
) -> None:
    for instance in world.instances("zervigo", "user-service"):
        instance.set_behavior(latency=2.0)

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get("user", "/slow"), timeout=0.2)

    asyncio.run(main())
    (call,) = by_name(spans, "federation.call")
    assert dict(call.attributes or {})["outcome"] == "cancelled"
    assert call.status.status_code == trace.StatusCode.ERROR


def test_explicit_traceparent_is_the_parent(client: federation.FederatedServiceClient, spans: InMemorySpanExporter) -> None:
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = client.get_sync("user", "/x", headers={"Traceparent": incoming})
    (call,) = by_name(spans, "federation.call")
    assert call.parent is not None and format(call.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert upstream_trace(response).split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_tracestate_of_the_active_context_is_sent(spans: InMemorySpanExporter) -> None:
    remote = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=True,
        trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1")]),
    )
    with trace.use_span(NonRecordingSpan(remote)):
        begun = _otel.begin("GET", "user", "/x", None)
    assert begun is not None
    headers, finish = begun
    sent = dict(headers)
    assert sent["tracestate"] == "vendor=v1"
    assert sent["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    context = TraceContextTextMapPropagator().extract(sent)
    assert trace.get_current_span(context).get_span_context().span_id != remote.span_id
    finish(None, None)


NO_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry were not installed
import federation
from federation.testing import ServiceInstance
assert not federation._federation._call_hook_set()
instance = ServiceInstance.start("local", "svc", "svc-1")
try:
    client = federation.FederatedServiceClient.from_dict({
        "clusters": {"local": {"static": {"svc": [{"id": "svc-1", "address": "127.0.0.1", "port": instance.port}]}}},
        "services": {"svc": {"names": {"local": "svc"}}},
    })
    body = client.get_sync("svc", "/x").json()
    client.close()
finally:
    instance.kill()
assert len(body["traceparent"]) == 55, body  # the core's own root trace
loaded = sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v is not None)
assert not loaded, loaded
print("ok")
"""


def test_without_opentelemetry_nothing_is_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", NO_OTEL], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
