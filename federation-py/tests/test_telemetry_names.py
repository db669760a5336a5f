"""The cross-language name check, Python side: the metric families (through
`federation.prometheus` and `prometheus_client`) and the OpenTelemetry spans a Python service
sees carry exactly the names and labels of tests/telemetry-names.json, which the Rust
(federation-core/tests/otel.rs) and Go (TestNamesMatch in federation-go/prometheus and
federation-go/otel) tests check too: a rename in one language fails its test."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import federation
import federation.prometheus
from federation.testing import Sandbox
from test_otel import spans  # noqa: F401 (the fixture)

GOLDEN = json.loads((Path(__file__).parents[2] / "tests" / "telemetry-names.json").read_text())
# Families every client has once it made a call through discovery.
ALWAYS = {
    "federation_requests_total", "federation_request_duration_seconds", "federation_attempts_total",
    "federation_attempt_duration_seconds", "federation_retries_total", "federation_breaker_state",
    "federation_discovery_instances", "federation_discovery_staleness_seconds",
}


def test_metric_names_and_labels(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    for instance in world.instances("zervigo", "user-service"):
        instance.set_behavior(status=503)
    client.get_sync("user", "/names")  # retries, then fails over: most families get series
    registry = CollectorRegistry()
    federation.prometheus.register(client, registry=registry)
    emitted: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = emitted.setdefault(name, set())
        for sample in family.samples:
            labels.update(k for k in sample.labels if k != "le")
    golden = {name: set(labels) for name, labels in GOLDEN["metrics"].items()}
    unknown = {n: ls for n, ls in emitted.items() if n not in golden}
    assert not unknown, f"not in tests/telemetry-names.json: {unknown}"
    for name, labels in emitted.items():
        if labels:  # a family without series yet has no labels to compare
            assert labels == golden[name], name
    assert ALWAYS <= {n for n, ls in emitted.items() if ls}


def test_span_names_and_attributes(
    world: Sandbox, client: federation.FederatedServiceClient, spans: InMemorySpanExporter  # noqa: F811
) -> None:
    for instance in world.instances("zervigo", "user-service"):
        instance.set_behavior(status=503)
    with trace.get_tracer("test").start_as_current_span("handler"):
        client.get_sync("user", "/names")
    keys: dict[str, set[str]] = {}
    for span in spans.get_finished_spans():
        if span.name.startswith("federation."):
            keys.setdefault(span.name, set()).update((span.attributes or {}).keys())
    assert keys == {name: set(attrs) for name, attrs in GOLDEN["spans"].items()}
