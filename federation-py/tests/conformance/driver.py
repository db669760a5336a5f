"""The Driver seam: one scenario call through `FederatedServiceClient` (the async API), recorded
in language-neutral terms (status or error kind, cluster, instance, attempts, cache, wall time)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import federation


@dataclass
class CallRecord:
    """What one call did (driver.rs `CallRecord`)."""

    status: Optional[int] = None
    error_kind: Optional[str] = None
    error: Optional[str] = None
    cluster: Optional[str] = None
    instance: Optional[str] = None
    attempts: list[tuple[str, str]] = field(default_factory=list)
    cache: Optional[str] = None
    elapsed_ms: float = 0.0

    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Driver:
    """The Python SDK under test, built from the generated configuration dict."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.client = federation.FederatedServiceClient.from_dict(config)

    def close(self) -> None:
        self.client.close()

    async def call(self, spec: dict[str, Any]) -> CallRecord:
        started = time.monotonic()
        timeout = spec.get("timeout_ms")
        attempt_timeout = spec.get("attempt_timeout_ms")
        try:
            response = await self.client.call(
                spec.get("method", "GET"),
                spec["service"],
                spec.get("path", "/work"),
                headers=spec.get("headers") or None,
                content=spec.get("body"),
                timeout=None if timeout is None else timeout / 1000,
                attempt_timeout=None if attempt_timeout is None else attempt_timeout / 1000,
                idempotent=spec.get("idempotent"),
                cluster=spec.get("cluster"),
                tags=spec.get("tags"),
            )
        except federation.FederationError as e:
            return CallRecord(
                error_kind=e.kind,
                error=str(e),
                attempts=[(a.cluster, a.instance) for a in e.attempts],
                elapsed_ms=(time.monotonic() - started) * 1000,
            )
        return CallRecord(
            status=response.status,
            cluster=response.cluster,
            instance=response.instance,
            attempts=[(a.cluster, a.instance) for a in response.attempts],
            cache=response.cache,
            elapsed_ms=(time.monotonic() - started) * 1000,
        )

    def health(self) -> dict[str, Any]:
        return self.client.health()

    def reload(self, config: dict[str, Any]) -> None:
        self.client.reload(config)
