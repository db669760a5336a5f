"""federation: one client for the logical services of the zervigo and looma clusters.

Every call goes through the Rust core's pipeline: discovery in each cluster's Consul, load
balancing, circuit breakers, retries bounded by a budget, cross-cluster failover and caching.

    import federation

    client = federation.FederatedServiceClient.from_file("federation.yaml")
    response = await client.get("user", "/api/v1/users/42")     # asyncio
    response = client.get_sync("user", "/api/v1/users/42")       # blocking, releases the GIL
    print(response.status, response.cluster, response.instance, response.cache)

Data sync (`DataSync`): publish a change of an entity, apply the other clusters' changes to a
store (`subscribe`), read its status; see docs/sync.md.

    sync = federation.DataSync.from_file("federation.yaml", local_cluster="looma")
    published = await sync.publish("user", "42", "update", {"name": "Ada"}, base=store.get("user", "42"))
    subscription = sync.subscribe(store)          # MemoryTarget, or an object with read/write

Errors are subclasses of `FederationError`, one per kind; `TimeoutError` is also the builtin
`TimeoutError`, `ConfigError` and `InvalidRequestError` are also `ValueError`.
"""

from typing import Any, Optional, TypedDict

from federation._federation import (
    Attempt,
    BudgetExhaustedError,
    CancelledError,
    CircuitOpenError,
    ConfigError,
    DataSync,
    DiscoveryError,
    FederatedServiceClient,
    FederationError,
    InvalidRequestError,
    MemoryTarget,
    NoHealthyInstanceError,
    OverloadedError,
    Published,
    Registration,
    Response,
    Split,
    Subscription,
    TimeoutError,
    TransportError,
    __version__,
)

__all__ = [
    "Attempt",
    "BudgetExhaustedError",
    "CancelledError",
    "CircuitOpenError",
    "ConfigError",
    "DataSync",
    "DiscoveryError",
    "FederatedServiceClient",
    "FederationError",
    "InvalidRequestError",
    "MemoryTarget",
    "NoHealthyInstanceError",
    "OverloadedError",
    "Published",
    "Registration",
    "Response",
    "Split",
    "Subscription",
    "SyncChange",
    "SyncHealth",
    "SyncHlc",
    "SyncOriginHealth",
    "SyncStatus",
    "SyncTargetStatus",
    "TimeoutError",
    "TransportError",
    "__version__",
]


class SyncChange(TypedDict):
    """What a sync target's `write(change)` receives: store `state` next to the record (it is
    what `read` must return for the entity later); `record` is the entity's data (None: deleted)."""

    entity_type: str
    entity_id: str
    operation: str
    effect: str
    event_id: str
    origin: str
    record: Optional[dict[str, Any]]
    state: dict[str, Any]
    previous: Optional[dict[str, Any]]


class SyncHlc(TypedDict):
    """A hybrid logical clock timestamp."""

    wall_ms: int
    logical: int


class _SyncTargetState(TypedDict):
    state: str


class SyncTargetStatus(_SyncTargetState, total=False):
    """A change's state in one target cluster: `state` is `pending`, `completed` (with the
    `effect` there) or `failed` (with the `reason`)."""

    effect: str
    reason: str


class SyncStatus(TypedDict):
    """`DataSync.status(type, id)`: the latest change of the entity published here."""

    event_id: str
    hlc: SyncHlc
    targets: dict[str, SyncTargetStatus]
    overall: str


class SyncOriginHealth(TypedDict):
    """Consuming one origin cluster's changes."""

    consumed: int
    last_consumed_ms: Optional[int]
    lag: int
    last_error: Optional[str]


class SyncHealth(TypedDict):
    """`DataSync.health()`."""

    local_cluster: str
    origins: dict[str, SyncOriginHealth]
    pending: int
    healthy: bool


# OpenTelemetry (issue 22): when `opentelemetry` is importable, every call continues the active
# trace and records its spans there (federation/_otel.py); otherwise nothing is imported.
import importlib.util as _importlib_util  # noqa: E402

if _importlib_util.find_spec("opentelemetry") is not None:
    try:
        from federation import _otel
    except ImportError:  # a partial install (no opentelemetry-api): calls stay untraced
        pass
    else:
        from federation._federation import _call_hook_set, _set_call_hook

        if not _call_hook_set():  # set once per process (importlib.reload keeps the first)
            _set_call_hook(_otel.begin)
