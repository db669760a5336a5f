"""Test servers for code that uses federation: real HTTP servers on 127.0.0.1.

- `Sandbox.start()` runs both clusters (zervigo and looma), each with its own Consul double and
  three instances of every seed service, and hands back a ready client configuration
  (`config()` as a dict, `config_yaml()` as text).
- `ConsulDouble.start(datacenter)` runs a single Consul-compatible registry with fault
  injection (`set_fault("down" | "hang" | "no_leader" | "slow" | ...)`).
- `ServiceInstance.start(cluster, service, instance)` runs one programmable instance
  (`set_behavior(status=503)`, `set_behavior(latency=0.2)`, `kill()`, `restart()`).
- `KafkaBroker.start()` runs a real Kafka broker (Java 17+; the same recipe as the Rust and Go
  tests) for `DataSync`; `KafkaBroker.skip_reason()` says why a test must skip (no Java).

Example (pytest)::

    from federation import FederatedServiceClient
    from federation.testing import Sandbox

    def test_failover():
        with Sandbox.start() as sandbox:
            client = FederatedServiceClient.from_dict(sandbox.config())
            sandbox.kill_all("zervigo", "user-service")
            assert client.get_sync("user", "/api/v1/users/1").cluster == "looma"
"""

from federation._federation import ConsulDouble, KafkaBroker, Sandbox, ServiceInstance

__all__ = ["ConsulDouble", "KafkaBroker", "Sandbox", "ServiceInstance"]
