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
