#!/usr/bin/env python3
"""A Looma (asyncio) service reading user profiles from user-service: caching and failover.

Looma's gateway needs user profiles. They live in zervigo's `user-service` (preferred) and in
looma's own `looma-user-api`. Through `federation`, a profile read retries another instance when
one dies, fails over to looma within the same call when zervigo has none left, keeps serving
cached profiles (the cache is per logical service, so failover never splits it), and comes back
to zervigo once it has been healthy for the dwell time.

    python examples/python/looma_calls_user.py --sandbox            # embedded sandbox
    python examples/python/looma_calls_user.py --config federation.yaml

With --sandbox the example also kills zervigo's instances to show the failover, and exits 1 if
what it narrates did not happen (CI runs it that way).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, Callable, Optional

import federation
from federation import FederatedServiceClient, FederationError, NoHealthyInstanceError

SERVICE = "user"


def sandbox_config(sandbox: Any) -> dict[str, Any]:
    """The sandbox's configuration with the policies this example shows turned on."""
    config: dict[str, Any] = sandbox.config()
    user = config["services"][SERVICE]
    user["cache"] = {"ttl": "30s", "stale_if_error": "60s"}  # profiles change rarely
    user["failover"] = {"dwell": "1s"}  # default 5 s; short so the fail-back shows quickly
    return config


async def fetch_profile(client: FederatedServiceClient, user_id: int) -> federation.Response:
    """One profile read; a 4xx/5xx answer raises like any other failure."""
    response = await client.get(
        SERVICE,
        f"/api/v1/users/{user_id}",
        headers={"x-request-source": "looma-api-gateway"},
        timeout=2.0,
    )
    return response.raise_for_status()


def show(label: str, r: federation.Response) -> federation.Response:
    print(
        f"{label:<34} {r.status} from {r.cluster}/{r.instance} cache={r.cache} "
        f"attempts={len(r.attempts)} in {r.elapsed * 1000:.1f} ms"
    )
    return r


def available(client: FederatedServiceClient, cluster: str) -> int:
    """Instances of the service the client may pick in `cluster` now (discovery + breakers)."""
    for service in client.health()["services"]:
        if service["service"] == SERVICE:
            for c in service["clusters"]:
                if c["cluster"] == cluster:
                    return int(c["available"])
    return 0


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        expect(time.monotonic() < deadline, what)
        await asyncio.sleep(0.02)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"expected {what}")


async def run(client: FederatedServiceClient, sandbox: Optional[Any]) -> None:
    await client.wait_ready(timeout=10.0)
    cold = show("profile lookup (cold)", await fetch_profile(client, 42))
    cached = show("profile lookup (cached)", await fetch_profile(client, 42))
    if sandbox is None:
        return
    expect(cold.cluster == "zervigo" and cold.cache == "miss", "a cold read from zervigo")
    expect(cached.cache == "hit", "the second read to hit the cache")

    print("-- killing every zervigo user-service instance")
    await asyncio.to_thread(sandbox.kill_all, "zervigo", "user-service")
    down = show("zervigo down", await fetch_profile(client, 200))
    expect(down.cluster == "looma", "the call to fail over to looma")
    during = show("cached profile during outage", await fetch_profile(client, 42))
    expect(during.cache == "hit", "the cached profile to survive the failover")
    # Once Consul's checks see them dead, calls go straight to looma: no failed attempt.
    await wait_until(lambda: available(client, "zervigo") == 0, "the client to see zervigo down")
    known = show("zervigo down, Consul knows", await fetch_profile(client, 201))
    expect(known.cluster == "looma" and len(known.attempts) == 1, "one attempt, in looma")

    print("-- restarting them")
    restarted = time.monotonic()
    await asyncio.to_thread(sandbox.revive_all, "zervigo", "user-service")
    await asyncio.to_thread(sandbox.wait_for_passing, "zervigo", "user-service", 3, 20.0)
    user_id = 300
    while True:
        r = show("after restart", await fetch_profile(client, user_id))
        if r.cluster == "zervigo":
            break
        expect(time.monotonic() - restarted < 25, "traffic back in zervigo within 25 s")
        user_id += 1
        await asyncio.sleep(0.2)
    print(f"-- back in zervigo {time.monotonic() - restarted:.1f} s after the restart")
    for line in client.metrics_text().splitlines():
        wanted = line.startswith(("federation_failovers_total", "federation_cache_events_total"))
        if wanted and 'service="user"' in line:
            print("  " + line)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="client configuration file (YAML, TOML or JSON)")
    source.add_argument("--sandbox", action="store_true", help="start the embedded sandbox")
    args = parser.parse_args()

    sandbox = None
    if args.sandbox:
        from federation.testing import Sandbox

        sandbox = await asyncio.to_thread(Sandbox.start)
    try:
        if sandbox is not None:
            client = FederatedServiceClient.from_dict(sandbox_config(sandbox))
        else:
            client = FederatedServiceClient.from_file(args.config)
        async with client:
            await run(client, sandbox)
    except NoHealthyInstanceError as e:
        # What a Looma handler does: answer with a degraded page, not a 500.
        print(f"no user-service instance anywhere ({e}); serving the page without profiles")
        return 1
    except FederationError as e:
        print(f"{e.kind} error: {e}", file=sys.stderr)
        return 1
    finally:
        if sandbox is not None:
            sandbox.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
