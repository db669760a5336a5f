"""The SDK's metrics on a service's existing `prometheus_client` `/metrics` endpoint.

The failure this prevents: a Python service that already exposes `prometheus_client` metrics
gets the client's series only as a separate OpenMetrics string, which it must splice into its
own endpoint by hand (and which breaks the classic text format a scraper may ask for). Here a
collector is registered with the service's registry (the default one unless given), and every
scrape yields the client's series as real metric families (counters, gauges, histograms with
their buckets), which `prometheus_client` renders in whichever format the scraper negotiates.

    import federation.prometheus
    federation.prometheus.register(client)               # prometheus_client.REGISTRY
    federation.prometheus.register(client, registry=my_registry)

Each scrape reads `client.metrics_text()` (the core's own OpenMetrics exposition, names in
docs/metrics.md) and parses it with `prometheus_client`'s OpenMetrics parser, so the families
are exactly the core's. One client per registry: the names of two clients would clash
(`register` raises `ValueError` when the registry checks them, as `prometheus_client` does).
Requires `prometheus_client` (not a dependency of `federation`; importing this module without
it raises `ImportError`).
"""

from __future__ import annotations

from typing import Iterable, Optional, Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

__all__ = ["FederationCollector", "register"]


class MetricsSource(Protocol):
    """Anything with the SDK's `metrics_text()`: a `FederatedServiceClient`, a sync runtime."""

    def metrics_text(self) -> str: ...


class FederationCollector(Collector):
    """A `prometheus_client` collector yielding the metric families of one SDK object."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """The source's series now (each scrape refreshes the state gauges)."""
        text = self._source.metrics_text()
        return list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]


def register(
    source: MetricsSource, registry: Optional[CollectorRegistry] = None
) -> FederationCollector:
    """Registers a collector for `source` with `registry` (default: `prometheus_client.REGISTRY`)
    and returns it (`registry.unregister(collector)` removes it)."""
    collector = FederationCollector(source)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
