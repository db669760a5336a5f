"""Self-registration from Python against the Consul double: an HTTP-checked instance becomes
routable for another client once the double's check passes; a TTL registration stays passing
while its `Registration` lives and lapses after it is dropped; deregistration; errors."""

from __future__ import annotations

import asyncio
import gc
import json
import urllib.request
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from conftest import EVENTUALLY, eventually

import federation
from federation.testing import ConsulDouble, ServiceInstance


@pytest.fixture()
def consul() -> Iterator[ConsulDouble]:
    double = ConsulDouble.start("looma-dc")
    yield double
    double.shutdown()


def config(consul: ConsulDouble) -> dict[str, Any]:
    return {
        "clusters": {"looma": {"consul": {"address": consul.url, "wait": "30s"}}},
        "services": {"order": {"names": {"looma": "order-svc"}}},
    }


def health_of(consul: ConsulDouble, service: str, instance_id: str) -> Optional[str]:
    """The aggregated health of `instance_id` as Consul reports it (None when absent)."""
    with urllib.request.urlopen(f"{consul.url}/v1/health/service/{service}", timeout=5) as r:
        entries = json.load(r)
    for entry in entries:
        if entry["Service"]["ID"] == instance_id:
            statuses = {check["Status"] for check in entry["Checks"]}
            for status in ("critical", "warning"):
                if status in statuses:
                    return status
            return "passing"
    return None


def test_http_checked_instance_becomes_routable_for_another_client(consul: ConsulDouble) -> None:
    instance = ServiceInstance.start("looma", "order-svc", "order-1")
    instance.set_health_status(500)
    try:
        with federation.FederatedServiceClient.from_dict(config(consul)) as announcer, \
                federation.FederatedServiceClient.from_dict(config(consul)) as caller:
            registration = announcer.register_sync(
                "looma", name="order-svc", id="order-1", address="127.0.0.1", port=instance.port,
                tags=["v1"], meta={"team": "looma"},
                http_check={"url": f"{instance.url}/health", "interval": 0.1, "timeout": 2.0},
            )
            assert registration.cluster == "looma"
            assert registration.service_id == "order-1"
            assert registration.ttl_check_ids == []
            assert health_of(consul, "order-svc", "order-1") == "critical"
            with pytest.raises(federation.NoHealthyInstanceError):
                caller.get_sync("order", "/hello")

            instance.set_health_status(200)
            eventually(lambda: health_of(consul, "order-svc", "order-1") == "passing",
                       what="passing after the double ran the check")

            def served() -> bool:
                try:
                    return caller.get_sync("order", "/hello").instance == "order-1"
                except federation.NoHealthyInstanceError:
                    return False

            eventually(served, what="routable for the other client")

            registration.deregister_sync()
            assert not registration.active
            registration.deregister_sync()  # a second call does nothing
            assert health_of(consul, "order-svc", "order-1") is None
    finally:
        instance.kill()


def test_ttl_registration_heartbeats_until_dropped(consul: ConsulDouble) -> None:
    async def main() -> None:
        with federation.FederatedServiceClient.from_dict(config(consul)) as client:
            registration = await client.register(
                "looma", name="worker", id="worker-1", address="127.0.0.1", port=9300, ttl=0.9
            )
            assert registration.ttl_check_ids == ["worker-1:ttl"]
            assert registration.active
            deadline = asyncio.get_running_loop().time() + EVENTUALLY
            while health_of(consul, "worker", "worker-1") != "passing":
                assert asyncio.get_running_loop().time() < deadline, "first heartbeat"
                await asyncio.sleep(0.02)
            # Three TTLs: the heartbeat (every 0.3 s) keeps it passing.
            for _ in range(27):
                await asyncio.sleep(0.1)
                assert health_of(consul, "worker", "worker-1") == "passing"

            # Dropping the handle stops the heartbeat but does not deregister.
            del registration
            gc.collect()
            while health_of(consul, "worker", "worker-1") != "critical":
                assert asyncio.get_running_loop().time() < deadline + EVENTUALLY, "TTL lapse"
                await asyncio.sleep(0.05)

            await client.deregister("looma", "worker-1")
            assert health_of(consul, "worker", "worker-1") is None
            with pytest.raises(federation.DiscoveryError, match="looma"):
                await client.deregister("looma", "worker-1")

    asyncio.run(main())


def test_async_deregister_through_the_handle(consul: ConsulDouble) -> None:
    async def main() -> None:
        with federation.FederatedServiceClient.from_dict(config(consul)) as client:
            registration = await client.register(
                "looma", name="api", address="127.0.0.1", port=8080, ttl=30.0
            )
            assert registration.service_id == "api", "the id defaults to the name"
            await registration.deregister()
            await registration.deregister()
            assert health_of(consul, "api", "api") is None

    asyncio.run(main())


def test_mistakes_are_invalid_requests(consul: ConsulDouble) -> None:
    with federation.FederatedServiceClient.from_dict(config(consul)) as client:
        with pytest.raises(federation.InvalidRequestError, match="unknown cluster"):
            client.register_sync("nowhere", name="x", address="127.0.0.1", port=80)
        with pytest.raises(federation.InvalidRequestError, match="address"):
            client.register_sync("looma", name="x", address="0.0.0.0", port=80)
        with pytest.raises(federation.InvalidRequestError, match="port"):
            client.register_sync("looma", name="x", address="127.0.0.1", port=70000)
        misspelled: Any = {"url": "http://127.0.0.1/", "every": 1.0}
        with pytest.raises(federation.InvalidRequestError, match="unknown `http_check` key"):
            client.register_sync("looma", name="x", address="127.0.0.1", port=80, http_check=misspelled)
        with pytest.raises(federation.InvalidRequestError, match="ttl"):
            client.register_sync("looma", name="x", address="127.0.0.1", port=80, ttl=-1.0)
        consul.shutdown()
        with pytest.raises(federation.DiscoveryError, match="looma"):
            client.register_sync("looma", name="x", address="127.0.0.1", port=80)

    static = {
        "clusters": {"local": {"static": {"svc": [{"address": "127.0.0.1", "port": 1}]}}},
        "services": {"svc": {"names": {"local": "svc"}}},
    }
    with federation.FederatedServiceClient.from_dict(static) as client:
        with pytest.raises(federation.InvalidRequestError, match="needs a Consul cluster"):
            client.register_sync("local", name="x", address="127.0.0.1", port=80)
