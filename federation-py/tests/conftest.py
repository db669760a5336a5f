"""Shared fixtures: one two-cluster sandbox per session, a fresh client per test, and helpers
for small static-configuration worlds built from single service instances."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import federation
from federation.testing import Sandbox, ServiceInstance

# Generous bound for "eventually" conditions on a loaded 2-core machine.
EVENTUALLY = 20.0


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox.start(check_interval=0.1) as sb:
        yield sb


@pytest.fixture()
def world(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox, restored after the test: every instance normal, alive and passing."""
    yield sandbox
    for cluster in sandbox.clusters():
        for service in sandbox.services(cluster):
            instances = sandbox.instances(cluster, service)
            for instance in instances:
                instance.set_behavior()
                instance.set_health_status(200)
            sandbox.revive_all(cluster, service)
            sandbox.wait_for_passing(cluster, service, len(instances), timeout=EVENTUALLY)


@pytest.fixture()
def client(world: Sandbox) -> Iterator[federation.FederatedServiceClient]:
    """A client of the sandbox with discovery answered in every cluster."""
    with federation.FederatedServiceClient.from_dict(world.config()) as c:
        c.wait_ready_sync(timeout=EVENTUALLY)
        yield c


@pytest.fixture()
def instances() -> Iterator[Callable[..., list[ServiceInstance]]]:
    """Starts `n` instances of a service (killed after the test)."""
    started: list[ServiceInstance] = []

    def start(n: int = 1, service: str = "svc", cluster: str = "local") -> list[ServiceInstance]:
        made = [ServiceInstance.start(cluster, service, f"{service}-{len(started) + i + 1}") for i in range(n)]
        started.extend(made)
        return made

    yield start
    for instance in started:
        instance.kill()


def static_config(
    clusters: dict[str, list[ServiceInstance]], service: str = "svc", **policy: Any
) -> dict[str, Any]:
    """A configuration with one static cluster per entry, each serving `service` (Consul name
    `svc`) with the given instances; `policy` keys go into the service entry."""
    return {
        "clusters": {
            name: {
                "static": {
                    "svc": [{"id": i.id, "address": "127.0.0.1", "port": i.port} for i in members]
                }
            }
            for name, members in clusters.items()
        },
        "services": {service: {"names": {name: "svc" for name in clusters}, **policy}},
    }


def eventually(check: Callable[[], bool], timeout: float = EVENTUALLY, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.02)
