"""Traffic control from Python: a per-call tag override (`tags=`) picks the instances of another
model version than the service's default tags, hedged attempts are reported (`attempt.hedge`,
outcome `cancelled`) and a split says which arm took a call (`response.split`), against real
loopback instances that each test stops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import federation
from federation.testing import ServiceInstance


@pytest.fixture
def models() -> Iterator[dict[str, ServiceInstance]]:
    """One instance per model version of `ai-service`; killed even when the test fails."""
    started: dict[str, ServiceInstance] = {}
    try:
        for version in ("v2", "v3"):
            started[version] = ServiceInstance.start("local", "ai-service", f"ai-{version}")
        yield started
    finally:
        for instance in started.values():
            instance.kill()


def client_of(models: dict[str, ServiceInstance], **ai: object) -> federation.FederatedServiceClient:
    entries = [
        {"id": f"ai-{v}", "address": "127.0.0.1", "port": i.port, "tags": [f"model={v}"]}
        for v, i in models.items()
    ]
    return federation.FederatedServiceClient.from_dict({
        "clusters": {"local": {"static": {"ai-service": entries}}},
        "services": {"ai": {"names": {"local": "ai-service"}, "tags": ["model=v2"], **ai}},
    })


def test_per_call_tags_choose_the_model_version(models: dict[str, ServiceInstance]) -> None:
    client = client_of(models)
    try:
        assert {client.get_sync("ai", "/infer").instance for _ in range(4)} == {"ai-v2"}
        as_mapping = client.get_sync("ai", "/infer", tags={"model": "v3"})
        assert as_mapping.instance == "ai-v3"
        as_list = client.post_sync("ai", "/infer", json={"q": 1}, tags=["model=v3"])
        assert as_list.instance == "ai-v3"
        with pytest.raises(federation.NoHealthyInstanceError):
            client.get_sync("ai", "/infer", tags={"model": "v9"})
    finally:
        client.close()


@pytest.mark.parametrize(
    ("tags", "named"),
    [("model=v3", "the string"), ({"model=x": "v3"}, "the key"), (["model=v3", 3], "the item"), (7, "int")],
)
def test_bad_tags_fail_at_the_call_site(
    models: dict[str, ServiceInstance], tags: object, named: str
) -> None:
    client = client_of(models)
    try:
        with pytest.raises(federation.InvalidRequestError, match=named):
            client.get_sync("ai", "/infer", tags=tags)  # type: ignore[arg-type]
        assert models["v2"].requests() == 0 and models["v3"].requests() == 0
    finally:
        client.close()


def test_a_hedge_answers_for_a_slow_instance_and_is_reported(
    models: dict[str, ServiceInstance],
) -> None:
    models["v2"].set_behavior(latency=0.4)
    # No tag filter: both instances serve; round robin sends every other call to the slow one.
    client = client_of(models, tags=[], hedge={"delay": "30ms"}, load_balancing="round_robin")
    try:
        hedged = []
        for _ in range(4):
            response = client.get_sync("ai", "/infer")
            assert response.instance == "ai-v3"
            if len(response.attempts) == 2:
                hedged.append(response)
        assert len(hedged) == 2
        first, hedge = hedged[0].attempts
        assert (first.outcome, first.hedge) == ("cancelled", False)
        assert (hedge.outcome, hedge.hedge) == ("success", True)
    finally:
        client.close()


def test_a_split_reports_the_arm_and_why_an_empty_canary_was_left(
    models: dict[str, ServiceInstance],
) -> None:
    # The canary's tag set matches no instance: its users fall back to the stable arm.
    arms = {
        "stable": {"tags": ["model=v2"], "weight": 50},
        "canary": {"tags": ["model=v9"], "weight": 50},
    }
    client = client_of(models, tags=[], split={"sticky_key": "header:X-User-Id", "arms": arms})
    try:
        assert client.get_sync("ai", "/infer", tags={"model": "v3"}).split is None, "override wins"
        seen: dict[str, federation.Split] = {}
        for user in range(20):
            headers = {"X-User-Id": f"user-{user}"}
            response = client.get_sync("ai", "/infer", headers=headers)
            split = response.split
            assert split is not None and response.instance == "ai-v2"
            again = client.get_sync("ai", "/infer", headers=headers).split
            assert again is not None and again.arm == split.arm, "sticky per user"
            seen[split.arm] = split
        stable, canary = seen["stable"], seen["canary"]
        assert (stable.served_arm, stable.fallback) == ("stable", None)
        assert canary.served_arm == "stable", canary
        assert canary.fallback is not None and canary.fallback.startswith("empty"), canary
        assert 'federation_split_fallbacks_total{service="ai",arm="canary",reason="empty"}' in (
            client.metrics_text()
        )
    finally:
        client.close()
