"""Blocking API and failover: kill zervigo's user-service and watch calls move to looma.

    python examples/python/failover_sync.py
"""

from __future__ import annotations

import federation
from federation.testing import Sandbox


def main() -> None:
    with Sandbox.start() as sandbox, federation.FederatedServiceClient.from_yaml(sandbox.config_yaml()) as client:
        client.wait_ready_sync(timeout=10.0)
        before = client.get_sync("user", "/api/v1/users/42")
        print("before:", before.cluster, before.instance)

        sandbox.kill_all("zervigo", "user-service")
        after = client.get_sync("user", "/api/v1/users/42")
        print("after: ", after.cluster, after.instance, [a.outcome for a in after.attempts])
        assert after.cluster == "looma"

        try:
            client.post_sync("user", "/api/v1/users", json={"name": "Ada"}, cluster="zervigo")
        except federation.FederationError as error:
            # A POST is not retried once it may have reached a server; here nothing answered.
            print(type(error).__name__, error.kind, error.clusters_tried)


if __name__ == "__main__":
    main()
