"""The call paths of the binding: answers that need no I/O resolve on the calling thread, and the
async bridge wakes every loop it serves (one per thread, one after another on a thread)."""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

from conftest import static_config

import federation
from federation.testing import ServiceInstance


def test_async_cache_hit_is_resolved_before_the_call_returns(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}, cache={"ttl": "60s"}))

    async def main() -> tuple[str, bool, str]:
        # A miss may or may not be done when `get` returns (on a busy machine the in-process
        # instance can answer before the first poll ends); a hit always is.
        miss = (await client.get("svc", "/hit")).cache
        hit = client.get("svc", "/hit")
        hit_done_at_once = hit.done()
        return miss, hit_done_at_once, (await hit).cache

    assert asyncio.run(main()) == ("miss", True, "hit")
    assert instance.requests("/hit") == 1


def test_sync_cache_hits_are_answered_and_counted(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}, cache={"ttl": "60s"}))
    statuses = [client.get_sync("svc", "/counted").cache for _ in range(5)]
    assert statuses == ["miss", "hit", "hit", "hit", "hit"]
    assert instance.requests("/counted") == 1
    lines = [
        line
        for line in client.metrics_text().splitlines()
        if line.startswith("federation_requests_total{") and 'outcome="success"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in lines) == 5


def test_errors_found_before_sending_raise_at_once(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}))

    async def main() -> bool:
        future = client.get("unknown", "/x")
        done = future.done()
        try:
            await future
        except federation.InvalidRequestError:
            return done
        raise AssertionError("an unknown service must raise InvalidRequestError")

    assert asyncio.run(main())
    try:
        client.get_sync("unknown", "/x")
    except federation.InvalidRequestError:
        pass
    else:
        raise AssertionError("an unknown service must raise InvalidRequestError")


def test_bridge_serves_successive_loops_and_loops_on_other_threads(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}))

    async def burst(tag: str) -> list[int]:
        responses = await asyncio.gather(*(client.get("svc", f"/{tag}/{i}") for i in range(50)))
        return [r.status for r in responses]

    # A new loop per asyncio.run on this thread: each gets its own wake-up channel.
    for round_ in range(3):
        assert asyncio.run(burst(f"main{round_}")) == [200] * 50

    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def on_thread(n: int) -> None:
        try:
            results[n] = asyncio.run(burst(f"thread{n}"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=on_thread, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {n: [200] * 50 for n in range(4)}
