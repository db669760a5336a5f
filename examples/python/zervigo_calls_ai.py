#!/usr/bin/env python3
"""A blocking tool asking ai-service for inferences: model version by tag, cached POSTs.

ai-service runs two model versions side by side, told apart by the Consul tags `model=v2` and
`model=v3`. The tag filter is part of a logical service's configuration, so the client knows two
services: `ai` (tags [model=v2], as in examples/config) and `ai-v3` (same Consul service, tags
[model=v3]). Inference POSTs are cached by body; a POST is retried only when it never reached a
server; when no v3 instance can take a call, the tool falls back to v2.

    python examples/python/zervigo_calls_ai.py --sandbox
    python examples/python/zervigo_calls_ai.py --config federation.yaml   # needs `ai` (+ `ai-v3`)

With --sandbox it kills the v3 instance to show the fallback and exits 1 if what it narrates
did not happen. The *_sync calls release the GIL while they wait.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

import federation
from federation import (
    CircuitOpenError,
    FederatedServiceClient,
    FederationError,
    NoHealthyInstanceError,
    TransportError,
)


def sandbox_config(sandbox: Any) -> dict[str, Any]:
    """The sandbox's configuration plus the `ai-v3` service (same Consul name, v3 tag)."""
    config: dict[str, Any] = sandbox.config()
    ai = config["services"]["ai"]
    config["services"]["ai-v3"] = dict(ai, tags=["model=v3"])
    return config


def infer(client: FederatedServiceClient, model: str, prompt: str) -> federation.Response:
    """Asks `model` (v2 or v3); the model is in the body too, so each has its own cache entry."""
    service = "ai" if model == "v2" else "ai-v3"
    response = client.post_sync(
        service, "/v1/inference", json={"model": model, "prompt": prompt}, timeout=10.0
    )
    return response.raise_for_status()


def infer_prefer_v3(client: FederatedServiceClient, prompt: str) -> tuple[str, federation.Response]:
    """v3, or v2 when no v3 instance could take the call (never when v3 may have run it)."""
    try:
        return "v3", infer(client, "v3", prompt)
    except (NoHealthyInstanceError, CircuitOpenError):
        pass
    except TransportError as e:
        if e.may_have_reached_server:
            raise
    return "v2", infer(client, "v2", prompt)


def show(label: str, r: federation.Response) -> federation.Response:
    print(
        f"{label:<34} {r.status} from {r.cluster}/{r.instance} cache={r.cache} "
        f"attempts={len(r.attempts)} in {r.elapsed * 1000:.1f} ms"
    )
    return r


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"expected {what}")


def run(client: FederatedServiceClient, sandbox: Optional[Any]) -> None:
    client.wait_ready_sync(timeout=10.0)
    prompt = "summarise resume 7 for a backend role"
    cold = show("v2 inference (cold)", infer(client, "v2", prompt))
    cached = show("v2 inference (cached)", infer(client, "v2", prompt))
    if "ai-v3" not in client.services():
        print("no `ai-v3` service configured: skipping the v3 calls")
        return
    v3 = show("v3 inference", infer(client, "v3", prompt))
    if sandbox is None:
        return
    expect(cold.cache == "miss" and cached.cache == "hit", "a miss, then a cache hit")
    expect("-v3-" in v3.instance, "v3 to be served by a v3 instance")

    print("-- killing ai-service-v3-1 (the only v3 instance)")
    for instance in sandbox.instances("looma", "ai-service"):
        if "-v3-" in instance.id:
            instance.kill()
    sandbox.wait_for_passing("looma", "ai-service", 3, 20.0)
    model, r = infer_prefer_v3(client, "draft an offer letter")
    show(f"v3 wanted, answered by {model}", r)
    expect(model == "v2", "the fallback to v2")
    sandbox.revive_all("looma", "ai-service")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="client configuration file (YAML, TOML or JSON)")
    source.add_argument("--sandbox", action="store_true", help="start the embedded sandbox")
    args = parser.parse_args()

    sandbox = None
    if args.sandbox:
        from federation.testing import Sandbox

        sandbox = Sandbox.start()
    try:
        if sandbox is not None:
            client = FederatedServiceClient.from_dict(sandbox_config(sandbox))
        else:
            client = FederatedServiceClient.from_file(args.config)
        with client:
            run(client, sandbox)
    except FederationError as e:
        print(f"{e.kind} error: {e}", file=sys.stderr)
        return 1
    finally:
        if sandbox is not None:
            sandbox.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
