"""federation: one client for the logical services of the zervigo and looma clusters.

Every call goes through the Rust core's pipeline: discovery in each cluster's Consul, load
balancing, circuit breakers, retries bounded by a budget, cross-cluster failover and caching.

    import federation

    client = federation.FederatedServiceClient.from_file("federation.yaml")
    response = await client.get("user", "/api/v1/users/42")     # asyncio
    response = client.get_sync("user", "/api/v1/users/42")       # blocking, releases the GIL
    print(response.status, response.cluster, response.instance, response.cache)

Errors are subclasses of `FederationError`, one per kind; `TimeoutError` is also the builtin
`TimeoutError`, `ConfigError` and `InvalidRequestError` are also `ValueError`.
"""

from federation._federation import (
    Attempt,
    BudgetExhaustedError,
    CancelledError,
    CircuitOpenError,
    ConfigError,
    DiscoveryError,
    FederatedServiceClient,
    FederationError,
    InvalidRequestError,
    NoHealthyInstanceError,
    OverloadedError,
    Registration,
    Response,
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
    "DiscoveryError",
    "FederatedServiceClient",
    "FederationError",
    "InvalidRequestError",
    "NoHealthyInstanceError",
    "OverloadedError",
    "Registration",
    "Response",
    "TimeoutError",
    "TransportError",
    "__version__",
]

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
