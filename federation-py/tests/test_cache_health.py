"""Cache hit and stale reporting, invalidation, the health snapshot and the metrics text."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest
from conftest import static_config

import federation
from federation.testing import Sandbox, ServiceInstance


def test_cache_hit_miss_and_stale_if_error(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(
        static_config({"local": [instance]}, cache={"ttl": "300ms", "stale_if_error": "30s"})
    )
    first = client.get_sync("svc", "/a")
    assert first.cache == "miss" and len(first.attempts) == 1
    hit = client.get_sync("svc", "/a")
    assert hit.cache == "hit" and hit.attempts == []
    assert hit.content == first.content
    assert instance.requests("/a") == 1
    time.sleep(0.4)
    instance.kill()
    stale = client.get_sync("svc", "/a")
    assert stale.cache == "stale" and stale.status == 200
    assert stale.content == first.content


def test_invalidate_forces_a_fetch(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}, cache={"ttl": "60s"}))

    async def main() -> list[str]:
        statuses = []
        for _ in range(2):
            statuses.append((await client.get("svc", "/users/1")).cache)
        assert client.invalidate("svc", "/users/1")
        statuses.append((await client.get("svc", "/users/1")).cache)
        assert client.invalidate("svc", prefix="/users/")
        statuses.append((await client.get("svc", "/users/1")).cache)
        client.clear_cache()
        statuses.append((await client.get("svc", "/users/1")).cache)
        return statuses

    assert asyncio.run(main()) == ["miss", "hit", "miss", "miss", "miss"]
    assert instance.requests("/users/1") == 4
    with pytest.raises(federation.InvalidRequestError):
        client.invalidate("svc", "/a", prefix="/b")


def test_sandbox_ai_service_is_cached(client: federation.FederatedServiceClient) -> None:
    assert client.get_sync("ai", "/v1/infer").cache == "miss"
    again = client.get_sync("ai", "/v1/infer")
    assert again.cache == "hit" and again.cluster == "looma"


def test_health_reports_every_service_and_cluster(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    health = client.health()
    by_name = {s["service"]: s for s in health["services"]}
    user = by_name["user"]
    assert user["preferred"] == "zervigo"
    zervigo = next(c for c in user["clusters"] if c["cluster"] == "zervigo")
    assert zervigo["consul_service"] == "user-service"
    assert zervigo["discovered"] == 3 and zervigo["available"] == 3
    assert {i["id"].split("/")[-1] for i in zervigo["instances"]} == {
        i.id for i in world.instances("zervigo", "user-service")
    }
    assert all(i["breaker"] == "closed" for i in zervigo["instances"])
    assert zervigo["last_success"] is not None and not zervigo["stale"]


def test_metrics_count_calls(client: federation.FederatedServiceClient) -> None:
    for _ in range(3):
        client.get_sync("user", "/m")
    text = client.metrics_text()
    lines = [line for line in text.splitlines() if line.startswith("federation_requests_total{")]
    user = [line for line in lines if 'service="user"' in line and 'outcome="success"' in line]
    assert user and sum(float(line.rsplit(" ", 1)[1]) for line in user) == 3
