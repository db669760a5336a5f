"""py-consul 1.8 (the Consul client a Python team would use) against the testkit's Consul double,
and the SDK with it.

The double was only ever spoken to by the SDK's own code. py-consul writes lower-case keys
("name", "enabletagoverride", "checks", "ttl"), puts a single check into a `checks` list, sends
`wait` as Consul durations, and raises when a blocking read lacks `X-Consul-Index`; real Consul
accepts and answers all of it. These tests register, update and read through py-consul, and check
that the SDK sees what py-consul registered and the reverse.

Run by scripts/python-test.sh (py-consul is installed there, test-only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import consul  # type: ignore[import-untyped]
import pytest

import federation
from federation.testing import ConsulDouble, ServiceInstance

WITHIN = 15.0


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not reached within {WITHIN}s")


@pytest.fixture()
def double() -> Iterator[ConsulDouble]:
    started = ConsulDouble.start("zervigo-dc")
    try:
        yield started
    finally:
        started.shutdown()


@pytest.fixture()
def client(double: ConsulDouble) -> consul.Consul:
    host, port = double.url.removeprefix("http://").rstrip("/").split(":")
    return consul.Consul(host=host, port=int(port))


@pytest.fixture()
def instance() -> Iterator[ServiceInstance]:
    started = ServiceInstance.start("zervigo", "orders", "orders-1")
    try:
        yield started
    finally:
        started.kill()


def aggregated(client: consul.Consul, service: str, service_id: str) -> str:
    _, entries = client.health.service(service)
    for entry in entries:
        if entry["Service"]["ID"] == service_id:
            statuses = {check["Status"] for check in entry["Checks"]}
            for status in ("critical", "warning"):
                if status in statuses:
                    return status
            return "passing"
    return ""


def test_register_with_ttl_check_and_pass_warn_fail(client: consul.Consul) -> None:
    assert client.agent.service.register("orders", service_id="orders-1", address="127.0.0.1",
                                         port=8080, check=consul.Check.ttl("30s"))
    checks = client.agent.checks()
    # py-consul sends the one check inside a `checks` list: a lone check is `service:<id>`.
    assert list(checks) == ["service:orders-1"]
    assert checks["service:orders-1"]["Name"] == "Service 'orders' check"
    assert checks["service:orders-1"]["Status"] == "critical"
    for update, status, passing in [
        (client.agent.check.ttl_pass, "passing", 1),
        (client.agent.check.ttl_warn, "warning", 0),
        (client.agent.check.ttl_fail, "critical", 0),
    ]:
        assert update("service:orders-1", notes=f"now {status}")
        assert aggregated(client, "orders", "orders-1") == status
        _, entries = client.health.service("orders", passing=True)
        assert len(entries) == passing, f"?passing after {status} (a warning is not passing)"
        assert client.agent.checks()["service:orders-1"]["Output"] == f"now {status}"
    # py-consul maps a 404 (Consul's `Unknown check ID`) to False.
    assert client.agent.check.ttl_pass("no-such-check") is False


def test_register_with_http_check(client: consul.Consul, instance: ServiceInstance) -> None:
    instance.set_health_status(503)
    assert client.agent.service.register(
        "orders", service_id="orders-1", address="127.0.0.1", port=instance.port,
        check=consul.Check.http(f"{instance.url}/health", "100ms", timeout="1s"))
    assert client.agent.checks()["service:orders-1"]["Type"] == "http"
    eventually(lambda: aggregated(client, "orders", "orders-1") == "critical"
               and client.agent.checks()["service:orders-1"]["Output"] != "", "critical on 503")
    instance.set_health_status(200)
    eventually(lambda: aggregated(client, "orders", "orders-1") == "passing", "passing on 200")


def test_checks_lists_none_and_generated_names(client: consul.Consul) -> None:
    assert client.agent.service.register(
        "orders", service_id="orders-1", check=consul.Check.ttl("30s"),
        extra_checks=[consul.Check.ttl("30s"), {"CheckID": "beat", "Name": "heartbeat", "TTL": "5s"}])
    assert client.agent.service.register("billing", service_id="billing-1")
    checks = client.agent.checks()
    assert sorted(checks) == ["beat", "service:orders-1:1", "service:orders-1:2"]
    assert checks["service:orders-1:2"]["Name"] == "Service 'orders' check"
    assert checks["beat"]["Name"] == "heartbeat"
    _, entries = client.health.service("billing", passing=True)
    assert [check["CheckID"] for check in entries[0]["Checks"]] == ["serfHealth"]


def test_lower_case_and_snake_case_fields_are_echoed(client: consul.Consul) -> None:
    assert client.agent.service.register(
        "orders", service_id="orders-1", address="127.0.0.1", port=8080, tags=["v2"],
        meta={"zone": "a"}, weights={"passing": 5, "warning": 2}, enable_tag_override=True,
        tagged_addresses={"lan": {"address": "10.0.0.7", "port": 9090}}, connect={"Native": True})
    service = client.agent.services()["orders-1"]
    assert service["EnableTagOverride"] is True
    assert service["Weights"] == {"Passing": 5, "Warning": 2}
    assert service["TaggedAddresses"]["lan"] == {"Address": "10.0.0.7", "Port": 9090}
    assert service["TaggedAddresses"]["lan_ipv4"] == {"Address": "127.0.0.1", "Port": 8080}
    assert service["Connect"] == {"Native": True}
    assert service["Meta"] == {"zone": "a"}
    _, entries = client.health.service("orders")
    assert entries[0]["Service"]["Weights"] == {"Passing": 5, "Warning": 2}
    assert entries[0]["Service"]["EnableTagOverride"] is True


def test_deregister(client: consul.Consul) -> None:
    assert client.agent.service.register("orders", service_id="orders-1", check=consul.Check.ttl("30s"))
    assert client.agent.service.deregister("orders-1")
    assert client.agent.services() == {}
    assert client.agent.checks() == {}
    _, entries = client.health.service("orders")
    assert entries == []
    assert client.agent.service.deregister("orders-1") is False, "404 for an unknown id"


def register_three(client: consul.Consul) -> None:
    for n, tags in enumerate([["v2", "grpc"], ["v2"], ["v1"]], start=1):
        assert client.agent.service.register(
            "orders", service_id=f"orders-{n}", address="127.0.0.1", port=8080 + n, tags=tags,
            meta={"zone": "abc"[n - 1]}, check=consul.Check.ttl("30s"))
    assert client.agent.check.ttl_pass("service:orders-1")
    assert client.agent.check.ttl_pass("service:orders-2")
    assert client.agent.check.ttl_warn("service:orders-3")


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(entry["Service"]["ID"] for entry in entries)


def test_health_service_passing_tags_and_parameters(client: consul.Consul) -> None:
    register_three(client)
    index, entries = client.health.service("orders")
    assert int(index) > 0 and ids(entries) == ["orders-1", "orders-2", "orders-3"]
    assert ids(client.health.service("orders", passing=True)[1]) == ["orders-1", "orders-2"]
    assert ids(client.health.service("orders", tag=["V2", "grpc"])[1]) == ["orders-1"]
    filtered = client.health.service("orders", near="_agent", dc="zervigo-dc",
                                     node_meta={"consul-network-segment": ""},
                                     filter_expr='Service.Meta.zone != "c" and "v2" in Service.Tags')
    assert ids(filtered[1]) == ["orders-1", "orders-2"]
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        client.health.service("orders", dc="looma-dc")
    assert client.health.service("nope")[1] == []


def test_blocking_health_query(client: consul.Consul) -> None:
    assert client.agent.service.register("orders", service_id="orders-1")
    index, _ = client.health.service("orders")
    started = time.monotonic()
    same, _ = client.health.service("orders", index=index, wait="300ms")
    held = time.monotonic() - started
    assert same == index and 0.3 <= held < 5.0, f"no change: holds for wait, got {held:.2f}s"

    answers: list[tuple[str, list[dict[str, Any]]]] = []
    watcher = threading.Thread(target=lambda: answers.append(
        client.health.service("orders", index=index, wait="20s")))
    watcher.start()
    assert client.agent.service.register("orders", service_id="orders-2")
    watcher.join(WITHIN)
    assert not watcher.is_alive(), "the blocking query was not woken by a registration"
    new_index, entries = answers[0]
    assert int(new_index) > int(index) and ids(entries) == ["orders-1", "orders-2"]


def test_catalog_agent_and_status_reads(client: consul.Consul) -> None:
    register_three(client)
    index, services = client.catalog.services()
    assert int(index) > 0
    assert services["consul"] == [] and services["orders"] == ["grpc", "v1", "v2"]
    index, nodes = client.catalog.service("orders", tag="v1")
    assert int(index) > 0
    assert [(n["ServiceID"], n["ServicePort"], n["Datacenter"]) for n in nodes] == [
        ("orders-3", 8083, "zervigo-dc")]
    assert sorted(client.agent.services()) == ["orders-1", "orders-2", "orders-3"]
    assert client.agent.checks()["service:orders-3"]["Status"] == "warning"
    assert client.status.leader() != ""


def test_sdk_discovers_what_py_consul_registered(client: consul.Consul, double: ConsulDouble,
                                                instance: ServiceInstance) -> None:
    assert client.agent.service.register(
        "orders", service_id="orders-1", address="127.0.0.1", port=instance.port,
        check=consul.Check.http(f"{instance.url}/health", "100ms"))
    config = {
        "clusters": {"zervigo": {"consul": {"address": double.url, "wait": "1s"}}},
        "services": {"orders": {"names": {"zervigo": "orders"}}},
    }
    with federation.FederatedServiceClient.from_dict(config) as sdk:
        def served() -> bool:
            try:
                return sdk.get_sync("orders", "/work").instance == "orders-1"
            except federation.NoHealthyInstanceError:
                return False

        eventually(served, "the SDK routes to the py-consul registration")


def test_py_consul_sees_what_the_sdk_registered(client: consul.Consul, double: ConsulDouble,
                                               instance: ServiceInstance) -> None:
    config = {
        "clusters": {"zervigo": {"consul": {"address": double.url, "wait": "1s"}}},
        "services": {"orders": {"names": {"zervigo": "orders"}}},
    }
    with federation.FederatedServiceClient.from_dict(config) as sdk:
        registration = sdk.register_sync("zervigo", name="orders", id="orders-1", address="127.0.0.1",
                                         port=instance.port, tags=["v1"], meta={"team": "a"}, ttl=3.0)
        eventually(lambda: ids(client.health.service("orders", passing=True, tag="v1")[1]) == ["orders-1"],
                   "py-consul sees the SDK's instance passing")
        assert client.agent.services()["orders-1"]["Meta"] == {"team": "a"}
        registration.deregister_sync()
        assert client.health.service("orders")[1] == []


def test_stale_consistent_reads_and_connect_proxy_echo(double: ConsulDouble) -> None:
    host, port = double.url.removeprefix("http://").rstrip("/").split(":")
    stale = consul.Consul(host=host, port=int(port), consistency="stale")
    assert stale.agent.service.register(
        "web-sidecar-proxy", service_id="web-sidecar", port=21000, kind="connect-proxy",
        proxy={"DestinationServiceName": "web", "LocalServicePort": 8080})
    index, services = stale.catalog.services()
    assert int(index) > 0 and "web-sidecar-proxy" in services
    _, nodes = stale.catalog.service("web-sidecar-proxy", consistency="consistent")
    assert nodes[0]["ServiceKind"] == "connect-proxy"
    assert nodes[0]["ServiceProxy"]["DestinationServiceName"] == "web"
    agent_view = stale.agent.services()["web-sidecar"]
    assert agent_view["Kind"] == "connect-proxy" and agent_view["Proxy"]["LocalServicePort"] == 8080


def test_in_process_register_decodes_like_the_agent(double: ConsulDouble, client: consul.Consul) -> None:
    # federation.testing.ConsulDouble.register takes the same bodies the HTTP endpoint takes.
    double.register({"name": "orders", "id": "orders-1", "Check": None, "Checks": None,
                     "enable_tag_override": True, "weights": {"passing": 3, "warning": 1}})
    service = client.agent.services()["orders-1"]
    assert service["EnableTagOverride"] is True and service["Weights"] == {"Passing": 3, "Warning": 1}
    with pytest.raises(ValueError, match="invalid registration: Invalid Weights: Passing must be greater than 0"):
        double.register({"Name": "x", "Weights": {"Passing": 0, "Warning": 0}})
