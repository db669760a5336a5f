"""Async quickstart: call a logical service and see how each call was served.

Runs against the built-in two-cluster sandbox, so it needs nothing else:

    python examples/python/quickstart_async.py

With a real federation, build the client with
`FederatedServiceClient.from_file("federation.yaml")` instead.
"""

from __future__ import annotations

import asyncio

import federation
from federation.testing import Sandbox


async def main(sandbox: Sandbox) -> None:
    async with federation.FederatedServiceClient.from_dict(sandbox.config()) as client:
        await client.wait_ready(timeout=10.0)
        responses = await asyncio.gather(*(client.get("user", f"/api/v1/users/{n}") for n in range(5)))
        for response in responses:
            print(response.status, response.cluster, response.instance, f"{response.elapsed * 1e3:.1f} ms")
        try:
            await client.get("user", "/api/v1/users/1", timeout=0.5, cluster="nowhere")
        except federation.InvalidRequestError as error:
            print("rejected before sending:", error)


if __name__ == "__main__":
    with Sandbox.start() as sandbox:
        asyncio.run(main(sandbox))
