"""The shared L2 cache tier from Python, against a real `redis-server`: configuration-driven
sharing between clients, fleet-wide invalidation, entity invalidation and warm-up."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import eventually, static_config

import federation
from federation.testing import ServiceInstance

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (apt-get install redis-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command(port: int, *args: str) -> bytes:
    """One RESP command on a fresh connection; the raw reply."""
    parts = [f"*{len(args)}\r\n".encode()] + [f"${len(a)}\r\n{a}\r\n".encode() for a in args]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"".join(parts))
        return s.recv(65536)


def _key_count(port: int, pattern: str) -> int:
    reply = _command(port, "KEYS", pattern)
    return int(reply.split(b"\r\n", 1)[0][1:])


@pytest.fixture()
def redis_port() -> Iterator[int]:
    """A standalone redis-server on a free loopback port, killed by its pid afterwards."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", scratch],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def answers() -> bool:
                try:
                    return _command(port, "PING").startswith(b"+PONG")
                except OSError:
                    return False

            eventually(answers, timeout=10, what="redis-server answering")
            yield port
        finally:
            proc.kill()
            proc.wait()


def _client(instance: ServiceInstance, port: int, **cache: Any) -> federation.FederatedServiceClient:
    policy = {"ttl": "60s", "l2": {"address": f"127.0.0.1:{port}", "timeout": "250ms"}, **cache}
    return federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}, cache=policy))


def _tier(client: federation.FederatedServiceClient) -> dict[str, Any]:
    tier: dict[str, Any] = client.health()["services"][0]["cache_l2"]
    return tier


def _ready(client: federation.FederatedServiceClient) -> None:
    eventually(lambda: _tier(client)["subscribed"] and _tier(client)["connected"], timeout=10, what="tier subscribed")


def test_a_value_fetched_by_one_client_is_a_hit_in_another(
    instances: Callable[..., list[ServiceInstance]], redis_port: int
) -> None:
    (instance,) = instances(1)
    a, b = _client(instance, redis_port), _client(instance, redis_port)
    _ready(a)
    _ready(b)
    assert a.get_sync("svc", "/users/1").cache == "miss"
    eventually(lambda: _key_count(redis_port, "*/users/1 *") == 1, timeout=5, what="value in Redis")
    assert b.get_sync("svc", "/users/1").cache == "hit"
    assert instance.requests("/users/1") == 1
    assert _tier(b)["hits"] >= 1 and _tier(b)["degraded"] is False


def test_invalidate_reaches_the_other_client_and_redis(
    instances: Callable[..., list[ServiceInstance]], redis_port: int
) -> None:
    (instance,) = instances(1)
    a, b = _client(instance, redis_port), _client(instance, redis_port)
    _ready(a)
    _ready(b)
    a.get_sync("svc", "/users/2")
    eventually(lambda: _key_count(redis_port, "*/users/2 *") == 1, timeout=5, what="value in Redis")
    assert b.get_sync("svc", "/users/2").cache == "hit"
    assert b.get_sync("svc", "/users/2").cache == "hit"
    assert a.invalidate("svc", prefix="/users/")
    eventually(lambda: _tier(b)["invalidations_received"] == 1, timeout=5, what="message received")
    eventually(lambda: _key_count(redis_port, "*/users/2 *") == 0, timeout=5, what="key deleted")
    assert b.get_sync("svc", "/users/2").cache == "miss"
    assert instance.requests("/users/2") == 2


def test_entities_and_warm_up_from_configuration(
    instances: Callable[..., list[ServiceInstance]], redis_port: int
) -> None:
    (instance,) = instances(1)
    client = _client(
        instance,
        redis_port,
        warm=["/config", "/users/7"],
        warm_concurrency=2,
        entities={"user": ["/users/{id}"]},
    )
    eventually(
        lambda: (client.health()["services"][0].get("cache_warm") or {}).get("fetched") == 2,
        timeout=10,
        what="configured warm-up",
    )
    assert client.get_sync("svc", "/config").cache == "hit"
    assert client.get_sync("svc", "/users/7").cache == "hit"
    assert client.invalidate_entity("user", "7") == 1
    assert client.invalidate_entity("order", "7") == 0
    assert client.get_sync("svc", "/users/7").cache == "miss"
    assert client.get_sync("svc", "/config").cache == "hit"

    assert client.warm_sync("svc", ["/a", "/b", "/c"]) == {"fetched": 3, "failed": 0}

    async def warm_async() -> dict[str, int]:
        return await client.warm("svc", ["/d"])

    assert asyncio.run(warm_async()) == {"fetched": 1, "failed": 0}
    assert client.get_sync("svc", "/d").cache == "hit"
    with pytest.raises(federation.InvalidRequestError):
        client.warm_sync("nope", ["/x"])


def test_a_redis_that_is_down_is_reported_and_calls_still_work(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = _client(instance, _free_port())
    assert client.get_sync("svc", "/u").status == 200
    assert client.get_sync("svc", "/u").cache == "hit"
    tier = _tier(client)
    assert tier["connected"] is False and tier["degraded"] is True
