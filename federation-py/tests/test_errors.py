"""Every exception class: its place in the hierarchy and a real way to get it."""

from __future__ import annotations

import asyncio
import builtins
from typing import Callable

import pytest
from conftest import static_config

import federation
from federation.testing import ServiceInstance

KINDS = {
    federation.ConfigError: "config",
    federation.DiscoveryError: "discovery",
    federation.NoHealthyInstanceError: "no_healthy_instance",
    federation.CircuitOpenError: "circuit_open",
    federation.TimeoutError: "timeout",
    federation.TransportError: "transport",
    federation.BudgetExhaustedError: "budget_exhausted",
    federation.OverloadedError: "overloaded",
    federation.CancelledError: "cancelled",
    federation.InvalidRequestError: "invalid_request",
}


def test_hierarchy() -> None:
    for cls in KINDS:
        assert issubclass(cls, federation.FederationError)
        assert cls.__module__ == "federation"
    assert issubclass(federation.TimeoutError, builtins.TimeoutError)
    assert issubclass(federation.ConfigError, ValueError)
    assert issubclass(federation.InvalidRequestError, ValueError)
    assert not issubclass(federation.TransportError, ValueError)
    assert federation.TimeoutError is not builtins.TimeoutError


def test_config_error_names_the_field() -> None:
    with pytest.raises(ValueError) as caught:
        federation.FederatedServiceClient.from_dict(
            {"clusters": {"a": {"static": {}}}, "services": {"user": {"prefr": "a"}}}
        )
    error = caught.value
    assert isinstance(error, federation.ConfigError) and error.kind == "config"
    assert any(p["path"] == "services.user.prefr" for p in error.problems)
    assert "did you mean `prefer`" in str(error)
    with pytest.raises(federation.ConfigError):
        federation.FederatedServiceClient.from_yaml("clusters: [")
    with pytest.raises(federation.ConfigError):
        federation.FederatedServiceClient.from_file("/nonexistent/federation.yaml")


def test_invalid_requests_fail_before_sending(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}))
    with pytest.raises(federation.InvalidRequestError, match="unknown service"):
        client.get_sync("nope", "/")
    with pytest.raises(federation.InvalidRequestError, match="timeout"):
        client.get_sync("svc", "/", timeout=-1)
    with pytest.raises(federation.InvalidRequestError, match="either"):
        client.post_sync("svc", "/", json={}, content=b"x")
    with pytest.raises(federation.InvalidRequestError, match="method"):
        client.call_sync("NOT A METHOD", "svc", "/")
    with pytest.raises(federation.InvalidRequestError, match="cluster"):
        client.get_sync("svc", "/", cluster="elsewhere")
    with pytest.raises(ValueError):
        client.get_sync("svc", "/", headers={"bad\nname": "x"})
    assert instance.requests() == 0


def test_no_healthy_instance_says_why() -> None:
    client = federation.FederatedServiceClient.from_dict(
        {"clusters": {"local": {"static": {"svc": []}}}, "services": {"svc": {"names": {"local": "svc"}}}}
    )
    with pytest.raises(federation.NoHealthyInstanceError) as caught:
        client.get_sync("svc", "/")
    assert caught.value.service == "svc"
    assert caught.value.attempts == []
    assert "local" in str(caught.value)


def test_transport_error_carries_attempts(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    instance.set_behavior(mode="reset_mid_body")
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}))
    with pytest.raises(federation.TransportError) as caught:
        client.get_sync("svc", "/")
    assert caught.value.clusters_tried == ["local"]
    assert caught.value.attempts and caught.value.attempts[0].instance == instance.id


def test_circuit_open(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    instance.set_behavior(mode="reset_after_request")
    client = federation.FederatedServiceClient.from_dict(
        static_config(
            {"local": [instance]},
            breaker={"consecutive_failures": 1, "open_for": "30s", "max_open_for": "60s"},
            retry={"max_attempts": 1},
            # Panic routing (on by default) would send the second call to the held-out instance,
            # which still accepts connections; this test is about the ejection's error.
            failover={"panic_threshold": False},
        )
    )
    with pytest.raises(federation.TransportError):
        client.get_sync("svc", "/")
    with pytest.raises(federation.FederationError) as caught:
        client.get_sync("svc", "/")
    # With its only instance ejected the service reports it: open breaker, or no instance left.
    assert isinstance(caught.value, (federation.CircuitOpenError, federation.NoHealthyInstanceError))


def test_budget_exhausted(instances: Callable[..., list[ServiceInstance]]) -> None:
    first, second = instances(2)
    for instance in (first, second):
        instance.set_behavior(mode="reset_after_request")
    client = federation.FederatedServiceClient.from_dict(
        static_config(
            {"local": [first, second]},
            retry={"max_attempts": 3, "budget": {"percent": 0, "min_per_second": 0, "window": "10s"}},
        )
    )
    with pytest.raises(federation.BudgetExhaustedError) as caught:
        client.get_sync("svc", "/")
    assert len(caught.value.attempts) == 1


def test_overloaded(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    instance.set_behavior(latency=0.5)
    client = federation.FederatedServiceClient.from_dict(
        static_config({"local": [instance]}, limits={"max_concurrent": 1})
    )

    async def main() -> None:
        slow = asyncio.ensure_future(client.get("svc", "/slow"))
        while instance.requests() == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(federation.OverloadedError):
            await client.get("svc", "/second")
        assert (await slow).status == 200

    asyncio.run(main())


def test_discovery_error_when_consul_is_unreachable() -> None:
    client = federation.FederatedServiceClient.from_dict(
        {
            "clusters": {"dc": {"consul": {"address": "http://127.0.0.1:9"}}},
            "services": {"svc": {"names": {"dc": "svc"}}},
        }
    )
    with pytest.raises(federation.DiscoveryError) as caught:
        client.wait_ready_sync(timeout=1.0)
    assert "svc in dc" in str(caught.value)


def test_every_kind_attribute_matches_its_class() -> None:
    for cls, kind in KINDS.items():
        assert cls.__name__.lower().replace("error", "").replace("_", "") == kind.replace("_", "")
