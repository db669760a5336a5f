"""Hot reload through Python: `client.reload(dict)` applies a new configuration while threads
call, an invalid one raises `ConfigError` and the running one keeps serving, and
`from_file(path, watch=...)` applies an edit to the file; `health()["config"]` shows the
generation."""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any, Callable

import pytest
from conftest import eventually, static_config

import federation
from federation.testing import ServiceInstance


def test_reload_under_calls_fails_none_and_shows_the_generation(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    first, second = instances(2)
    config = static_config({"local": [first]})
    grown = static_config({"local": [first, second]}, timeout={"total": "4s"})
    failures: list[BaseException] = []
    calls = [0]
    stop = threading.Event()
    with federation.FederatedServiceClient.from_dict(config) as client:

        def load() -> None:
            while not stop.is_set():
                try:
                    assert client.get_sync("svc", "/load").status == 200
                    calls[0] += 1
                except Exception as e:  # pragma: no cover - the assertion reports it
                    failures.append(e)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(6):
            before = calls[0]
            eventually(lambda: calls[0] > before + 20, what=f"traffic before reload {i + 1}")
            generation = client.reload(grown if i % 2 == 0 else config)
            assert generation["generation"] == i + 2
        stop.set()
        for t in threads:
            t.join()
        assert failures == []
        health: dict[str, Any] = client.health()
        assert health["config"]["generation"] == 7
        assert health["config"]["source"] == "reload"
        assert health["config"]["changes"] == ["clusters.local: changed", "services.svc: changed"]
        assert second.requests() > 0


def test_an_invalid_reload_raises_and_the_running_configuration_stays(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    (only,) = instances(1)
    with federation.FederatedServiceClient.from_dict(static_config({"local": [only]})) as client:
        bad = static_config({"local": [only]})
        bad["services"]["svc"]["names"] = {"nowhere": "svc"}
        with pytest.raises(federation.ConfigError) as raised:
            client.reload(bad)
        assert "services.svc" in str(raised.value) and "nowhere" in str(raised.value)
        assert client.get_sync("svc", "/still").status == 200
        assert client.health()["config"]["generation"] == 1


def test_from_file_with_watch_applies_an_edit(instances: Callable[..., list[ServiceInstance]]) -> None:
    (only,) = instances(1)
    text = (
        "clusters:\n  local:\n    static:\n"
        f"      svc: [ {{ id: {only.id}, address: 127.0.0.1, port: {only.port} }} ]\n"
        "services:\n  svc:\n    names: { local: svc }\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "federation.yaml")
        with open(path, "w") as f:
            f.write(text)
        with federation.FederatedServiceClient.from_file(path, watch=0.1) as client:
            with open(path, "w") as f:
                f.write(text + "  order:\n    names: { local: svc }\n")
            eventually(lambda: client.health()["config"]["generation"] == 2, what="the edit applied")
            assert client.services() == ["order", "svc"]
            assert client.get_sync("order", "/x").status == 200
