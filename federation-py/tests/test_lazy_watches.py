"""`discovery.lazy_watches` from a configuration dict: a service's Consul watches start on its
first call, so a configured service nobody called has never been answered (issue 23)."""

from __future__ import annotations

from typing import Any

import federation
from federation.testing import Sandbox

from conftest import EVENTUALLY


def _answered(health: dict[str, Any], service: str) -> list[bool]:
    entry = next(s for s in health["services"] if s["service"] == service)
    return [c["last_success"] is not None for c in entry["clusters"]]


def test_lazy_watches_from_the_configuration_watch_only_called_services(world: Sandbox) -> None:
    config = world.config()
    config["discovery"] = {"lazy_watches": True}
    with federation.FederatedServiceClient.from_dict(config) as client:
        assert client.get_sync("user", "/m", timeout=EVENTUALLY).status == 200
        health = client.health()
        assert any(_answered(health, "user")), "the called service was watched"
        others = [s["service"] for s in health["services"] if s["service"] != "user"]
        assert others, "the sandbox configures more than one service"
        for name in others:
            assert not any(_answered(health, name)), f"{name} was watched without a call"


def test_a_wrong_lazy_watches_value_names_the_key(world: Sandbox) -> None:
    config = world.config()
    config["discovery"] = {"lazy_watches": "yes"}
    try:
        federation.FederatedServiceClient.from_dict(config)
    except federation.ConfigError as e:
        assert "discovery.lazy_watches" in str(e)
    else:
        raise AssertionError("a string accepted as a boolean")
