"""Resilience through Python: cross-cluster failover, instance kill with zero failed GETs,
non-idempotent POST not retried, timeouts, and asyncio cancellation reaching the Rust call."""

from __future__ import annotations

import asyncio
import builtins
import threading
import time
from typing import Callable

import pytest
from conftest import eventually, static_config

import federation
from federation.testing import Sandbox, ServiceInstance


def test_failover_to_the_other_cluster(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    assert client.get_sync("user", "/a").cluster == "zervigo"
    world.kill_all("zervigo", "user-service")
    for i in range(20):
        response = client.get_sync("user", f"/after-kill/{i}")
        assert response.status == 200
        assert response.cluster == "looma"
        assert response.json()["service"] == "looma-user-api"


def test_killing_an_instance_fails_no_get(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    failures: list[BaseException] = []
    served: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                served.append(client.get_sync("user", "/load").instance)
            except federation.FederationError as e:  # pragma: no cover - the assertion reports it
                failures.append(e)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    eventually(lambda: len(served) > 50, what="traffic before the kill")
    victim = world.instances("zervigo", "user-service")[0]
    victim.kill()
    before = len(served)
    eventually(lambda: len(served) > before + 200, what="traffic after the kill")
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert victim.id not in served[before + 50 :]


def test_non_idempotent_post_is_not_retried(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    instances = world.instances("zervigo", "user-service")
    for instance in instances:
        instance.set_behavior(mode="reset_after_request")
        instance.reset_counters()
    with pytest.raises(federation.TransportError) as caught:
        client.post_sync("user", "/orders", json={"item": 1}, cluster="zervigo")
    error = caught.value
    assert len(error.attempts) == 1
    assert error.may_have_reached_server
    assert error.clusters_tried == ["zervigo"]
    assert sum(i.requests("/orders") for i in instances) == 1
    # The same call marked idempotent (or a GET) is retried on another instance.
    with pytest.raises(federation.TransportError) as retried:
        client.get_sync("user", "/orders", cluster="zervigo")
    assert len(retried.value.attempts) > 1
    assert len({a.instance for a in retried.value.attempts}) > 1


def test_timeout_raises_both_timeout_errors(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    for instance in world.instances("zervigo", "user-service"):
        instance.set_behavior(latency=5.0)
    started = time.monotonic()
    with pytest.raises(builtins.TimeoutError) as caught:
        client.get_sync("user", "/slow", cluster="zervigo", timeout=0.3)
    assert isinstance(caught.value, federation.TimeoutError)
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 3.0

    async def main() -> None:
        with pytest.raises(federation.TimeoutError):
            await client.get("user", "/slow", cluster="zervigo", timeout=0.3)

    asyncio.run(main())


def test_asyncio_cancellation_cancels_the_rust_call(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    (instance,) = instances(1)
    instance.set_behavior(mode="hang")
    client = federation.FederatedServiceClient.from_dict(
        static_config({"local": [instance]}, timeout={"attempt": "30s", "total": "30s"})
    )

    def in_flight() -> int:
        (svc,) = client.health()["services"]
        return sum(i["in_flight"] for c in svc["clusters"] for i in c["instances"])

    async def main() -> None:
        task = asyncio.ensure_future(client.get("svc", "/hang"))
        while instance.requests() == 0:
            await asyncio.sleep(0.01)
        assert in_flight() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # Without the abort the call would stay in flight for 30 s.
    eventually(lambda: in_flight() == 0, timeout=5.0, what="the Rust call to end")
    client.close()
