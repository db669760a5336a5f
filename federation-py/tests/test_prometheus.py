"""`federation.prometheus`: the client's series on a `prometheus_client` registry, read back
with `prometheus_client`'s own parsers in the classic text format and in OpenMetrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic
from prometheus_client.registry import REGISTRY
import pytest

import federation
import federation.prometheus

Series = set[tuple[str, tuple[tuple[str, str], ...], float]]


# Grows between two reads (seconds since discovery last answered): compared by series only.
MOVING = "federation_discovery_staleness_seconds"


def series(families: object) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items())), -1.0 if s.name == MOVING else s.value)
        for family in families  # type: ignore[attr-defined]
        for s in family.samples
        if not s.name.endswith("_created")
    }


def types(families: object) -> dict[str, str]:
    return {f.name: f.type for f in families}  # type: ignore[attr-defined]


def test_series_appear_in_classic_text_and_openmetrics(client: federation.FederatedServiceClient) -> None:
    for _ in range(3):
        assert client.get_sync("user", "/api/v1/users/1").status == 200
    registry = CollectorRegistry()
    federation.prometheus.register(client, registry=registry)

    # prometheus_client's OpenMetrics functions are untyped.
    classic = list(parse_classic(generate_latest(registry).decode()))
    om = list(parse_openmetrics(openmetrics.generate_latest(registry).decode()))  # type: ignore[no-untyped-call]
    core = list(parse_openmetrics(client.metrics_text()))  # type: ignore[no-untyped-call]

    assert types(classic)["federation_requests"] == "counter"
    assert types(om)["federation_request_duration_seconds"] == "histogram"
    assert types(om)["federation_breaker_state"] == "gauge"
    success = ("federation_requests_total", (("cluster", "zervigo"), ("outcome", "success"), ("service", "user")), 3.0)
    assert success in series(classic) and success in series(om)
    buckets = {
        dict(labels)["le"]
        for name, labels, _ in series(classic)
        if name == "federation_request_duration_seconds_bucket" and dict(labels)["service"] == "user"
    }
    assert {"0.3", "+Inf"} <= buckets, buckets
    # Both exposition formats carry exactly the core's series and values.
    assert series(classic) == series(core) == series(om)
    assert types(classic) == types(core) == types(om)


def test_default_registry_and_a_second_client_refused(client: federation.FederatedServiceClient) -> None:
    assert client.get_sync("user", "/").status == 200
    collector = federation.prometheus.register(client)
    try:
        assert "federation_requests_total" in generate_latest(REGISTRY).decode()
        # The default registry checks names: a second client's identical series would clash.
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            federation.prometheus.register(client)
    finally:
        REGISTRY.unregister(collector)
    assert "federation_" not in generate_latest(REGISTRY).decode()
