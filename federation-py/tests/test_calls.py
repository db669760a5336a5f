"""Calls through the sandbox: both APIs (asyncio and blocking), arguments, response fields."""

from __future__ import annotations

import asyncio

import pytest

import federation
from federation.testing import Sandbox


def test_sync_get_reports_how_it_was_served(client: federation.FederatedServiceClient) -> None:
    response = client.get_sync("user", "/api/v1/users/42")
    assert response.status == 200 and response.ok
    body = response.json()
    assert body["path"] == "/api/v1/users/42"
    # user prefers zervigo while it is healthy.
    assert response.cluster == "zervigo" == body["cluster"]
    assert response.instance == body["instance"]
    assert response.cache == "bypass"
    assert response.elapsed > 0
    assert [a.outcome for a in response.attempts] == ["success"]
    assert response.attempts[0].status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text() == response.content.decode()
    assert response.raise_for_status() is response


def test_async_calls_run_concurrently(client: federation.FederatedServiceClient) -> None:
    async def main() -> list[federation.Response]:
        return await asyncio.gather(*(client.get("user", f"/items/{i}") for i in range(200)))

    responses = asyncio.run(main())
    assert [r.json()["path"] for r in responses] == [f"/items/{i}" for i in range(200)]
    assert {r.status for r in responses} == {200}


def test_arguments_reach_the_instance(client: federation.FederatedServiceClient) -> None:
    response = client.post_sync(
        "user",
        "/echo",
        params={"q": "a b", "n": 3},
        headers={"X-Caller": "pytest"},
        json={"name": "Ada"},
        timeout=2.0,
        idempotent=True,
    )
    body = response.json()
    assert body["method"] == "POST"
    assert body["query"] == "q=a%20b&n=3"
    assert body["body_len"] == len(b'{"name":"Ada"}')
    put = client.put_sync("user", "/raw", content=b"12345")
    assert put.json()["method"] == "PUT" and put.json()["body_len"] == 5
    called = client.call_sync("patch", "user", "/p", content="xy")
    assert called.json()["method"] == "PATCH"


def test_async_context_manager_closes(sandbox: Sandbox) -> None:
    async def main() -> federation.Response:
        client = federation.FederatedServiceClient.from_yaml(sandbox.config_yaml())
        async with client as entered:
            assert entered is client
            await client.wait_ready()
            response = await client.delete("user", "/d")
        assert client.closed
        return response

    assert asyncio.run(main()).json()["method"] == "DELETE"


def test_explicit_cluster_is_honoured(client: federation.FederatedServiceClient) -> None:
    assert client.get_sync("user", "/x", cluster="looma").cluster == "looma"
    assert asyncio.run(_get(client, cluster="looma")).cluster == "looma"


async def _get(client: federation.FederatedServiceClient, **kw: object) -> federation.Response:
    return await client.get("user", "/x", **kw)  # type: ignore[arg-type]


def test_non_2xx_is_a_response_until_raise_for_status(world: Sandbox, client: federation.FederatedServiceClient) -> None:
    for cluster, name in (("zervigo", "company-service"),):
        for instance in world.instances(cluster, name):
            instance.set_behavior(status=404)
    response = client.get_sync("company", "/missing")
    assert response.status == 404 and not response.ok
    with pytest.raises(federation.TransportError) as caught:
        response.raise_for_status()
    assert caught.value.status == 404
    assert caught.value.service == "company"


def test_closed_client_refuses_calls(world: Sandbox) -> None:
    client = federation.FederatedServiceClient.from_dict(world.config())
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.get_sync("user", "/x")


def test_services_and_from_file(tmp_path: object, sandbox: Sandbox) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "federation.yaml"
    path.write_text(sandbox.config_yaml())
    with federation.FederatedServiceClient.from_file(path) as client:
        assert "user" in client.services() and "ai" in client.services()
