"""The World seam over `federation.testing`: a scenario topology of Consul doubles and
programmable instances on loopback, built exactly as federation-conformance/src/testkit_world.rs
builds it (registry id `<service>-<index>`, HTTP check on /health every 100 ms, index spaces of
the doubles 1 000 000 apart, services in sorted order)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional

from federation.testing import ConsulDouble, ServiceInstance

CONSUL_WAIT = "1s"
CHECK_INTERVAL = "100ms"
CONSUL_FAULTS = {"down", "hang", "no_leader", "garbled", "index_reset", "acl_not_found", "slow"}


@dataclass(frozen=True)
class InstanceRef:
    """One instance of the topology."""

    cluster: str
    service: str
    index: int
    id: str


def resolve(reference: str, instances: list[InstanceRef]) -> list[InstanceRef]:
    """Every instance matching `cluster[/service[/index]]`; matching nothing is an error."""
    parts = reference.split("/")
    if len(parts) > 3:
        raise ValueError(f"`{reference}`: expected cluster[/service[/index]]")
    index: Optional[int] = None
    if len(parts) == 3:
        try:
            index = int(parts[2])
        except ValueError:
            raise ValueError(f"`{reference}`: instance index `{parts[2]}` is not a number") from None
    matched = [
        i for i in instances
        if i.cluster == parts[0]
        and (len(parts) < 2 or i.service == parts[1])
        and (index is None or i.index == index)
    ]
    if not matched:
        known = ", ".join(f"{i.cluster}/{i.service}/{i.index}" for i in instances)
        raise ValueError(f"`{reference}` matches no instance; instances: {known}")
    return matched


class World:
    """A running topology; `shutdown()` stops every server."""

    def __init__(self, clusters: list[dict[str, Any]]) -> None:
        self.discovery: dict[str, str] = {}
        self.consul: dict[str, ConsulDouble] = {}
        self.servers: dict[InstanceRef, ServiceInstance] = {}
        self.tags: dict[InstanceRef, list[str]] = {}
        self.order: list[InstanceRef] = []
        try:
            self._start(clusters)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, clusters: list[dict[str, Any]]) -> None:
        for n, spec in enumerate(clusters):
            name = spec["name"]
            self.discovery[name] = spec["discovery"]
            double: Optional[ConsulDouble] = None
            if spec["discovery"] == "consul":
                double = ConsulDouble.start(f"{name}-dc", initial_index=1_000 + 1_000_000 * n)
                self.consul[name] = double
                if spec.get("consul_delay_ms") is not None:
                    double.set_fault("slow", delay=spec["consul_delay_ms"] / 1000)
            elif spec["discovery"] != "static":
                raise ValueError(f"cluster {name}: unknown discovery `{spec['discovery']}`")
            for service, svc in sorted(spec["services"].items()):
                for index in range(svc["instances"]):
                    ref = InstanceRef(name, service, index, f"{service}-{index}")
                    server = ServiceInstance.start(name, service, ref.id)
                    self.servers[ref] = server
                    self.tags[ref] = svc["tags"]
                    self.order.append(ref)
                    if double is not None:
                        double.register({
                            "ID": ref.id, "Name": service, "Tags": svc["tags"],
                            "Address": "127.0.0.1", "Port": server.port,
                            "Check": {
                                "HTTP": f"{server.url}/health", "Interval": CHECK_INTERVAL,
                                "Timeout": "1s", "Status": "passing",
                            },
                        })

    def shutdown(self) -> None:
        for server in self.servers.values():
            server.kill()
        for double in self.consul.values():
            double.shutdown()

    def instances(self) -> list[InstanceRef]:
        return list(self.order)

    def cluster_source(self, cluster: str) -> dict[str, Any]:
        if cluster not in self.discovery:
            raise ValueError(f"no cluster `{cluster}` in the topology")
        if cluster in self.consul:
            double = self.consul[cluster]
            return {"consul": {"address": double.url, "datacenter": double.datacenter, "wait": CONSUL_WAIT}}
        services: dict[str, list[dict[str, Any]]] = {}
        for ref in self.order:
            if ref.cluster == cluster:
                services.setdefault(ref.service, []).append({
                    "id": ref.id, "address": "127.0.0.1", "port": self.servers[ref].port,
                    "tags": self.tags[ref],
                })
        return {"static": services}

    def kill(self, ref: InstanceRef) -> None:
        self.servers[ref].kill()

    def revive(self, ref: InstanceRef) -> None:
        self.servers[ref].restart()

    def set_behavior(self, ref: InstanceRef, spec: dict[str, Any]) -> None:
        mode = spec.get("mode", "normal")
        if mode == "oversized" and spec.get("bytes") is None:
            raise ValueError("mode `oversized` needs `bytes`")
        latency = spec.get("latency_ms")
        chunk = spec.get("chunk_delay_ms")
        self.servers[ref].set_behavior(
            status=spec.get("status"),
            latency=None if latency is None else latency / 1000,
            error_rate=spec.get("error_rate", 0.0),
            error_status=spec.get("error_status", 500),
            retry_after=spec.get("retry_after"),
            mode=mode,
            body_size=spec.get("bytes") if mode == "oversized" else None,
            chunk_delay=(chunk if chunk is not None else 50) / 1000 if mode == "slow_drip" else None,
        )

    def set_health_status(self, ref: InstanceRef, status: int) -> None:
        self.servers[ref].set_health_status(status)

    def consul_fault(self, spec: dict[str, Any]) -> None:
        double = self.consul.get(spec["cluster"])
        if double is None:
            raise ValueError(f"cluster `{spec['cluster']}` has no Consul double")
        fault = spec["fault"]
        if fault == "clear":
            double.clear_fault()
        elif fault == "slow":
            double.set_fault("slow", delay=spec.get("delay_ms", 500) / 1000)
        elif fault in CONSUL_FAULTS:
            double.set_fault(fault)
        else:
            raise ValueError(f"unknown Consul fault `{fault}`")

    async def wait_passing(self, cluster: str, service: str, count: int, timeout_ms: int) -> None:
        double = self.consul.get(cluster)
        if double is None:
            raise ValueError(f"cluster `{cluster}` has no Consul double")
        until = time.monotonic() + timeout_ms / 1000
        last: Optional[int] = None
        while time.monotonic() < until:
            last = await asyncio.to_thread(_passing, double.url, service)
            if last == count:
                return
            await asyncio.sleep(0.025)
        raise ValueError(
            f"{cluster}/{service}: {count} passing expected within {timeout_ms} ms, last seen {last}"
        )

    def requests(self, ref: InstanceRef) -> int:
        return self.servers[ref].requests()


def _passing(url: str, service: str) -> Optional[int]:
    """Passing instances of `service` as the double lists them (None when it did not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/v1/health/service/{service}?passing", timeout=2) as r:
            entries = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return len(entries) if isinstance(entries, list) else None
