"""Data sync, looma side: apply zervigo's user changes to an async store, publish our own.

Runs against a real Kafka broker the testkit starts (needs Java 17+; the first run downloads
the broker's jars), with both clusters in this process sharing it:

    python examples/python/data_sync_looma.py

With a real deployment, build the sync from the service's configuration instead:
`DataSync.from_file("federation.yaml", local_cluster="looma")` (its `sync:` section).
Without Java this example says how to enable it and exits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

from federation import DataSync, SyncChange
from federation.testing import KafkaBroker


class UserStore:
    """looma's users: the record and its sync state side by side (a database row would hold
    both), written from the subscriber on this event loop."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def read(self, entity_type: str, entity_id: str) -> Optional[dict[str, Any]]:
        row = self.rows.get(entity_id)
        return None if row is None else row["sync_state"]

    async def write(self, change: SyncChange) -> None:
        self.rows[change["entity_id"]] = {"record": change["record"], "sync_state": change["state"]}
        print(f"looma applied {change['entity_type']}/{change['entity_id']} from {change['origin']}: {change['record']}")


def config(bootstrap: str) -> str:
    static = "{ static: { user-service: [{ address: 127.0.0.1, port: 8080 }] } }"
    return f"""
clusters:
  zervigo: {static}
  looma: {static}
sync:
  clusters:
    zervigo: {{ bootstrap_servers: "{bootstrap}" }}
    looma: {{ bootstrap_servers: "{bootstrap}" }}
  entities:
    user: {{ policy: prefer_cluster, owner: zervigo }}
  topic_prefix: example-{int(time.time() * 1000)}
"""


def completed(sync: DataSync, user_id: str) -> bool:
    status = sync.status("user", user_id)
    return status is not None and status["overall"] == "completed"


async def main(bootstrap: str) -> None:
    text = config(bootstrap)
    zervigo = DataSync.from_yaml(text, local_cluster="zervigo")
    looma = DataSync.from_yaml(text, local_cluster="looma")
    users = UserStore()
    async with looma.subscribe(users):
        for n in range(3):
            published = await zervigo.publish("user", str(n), "create", {"name": f"user {n}", "plan": "free"})
            print(f"zervigo published {published!r}")
        deadline = time.monotonic() + 30
        while not all(completed(zervigo, str(n)) for n in range(3)):
            if time.monotonic() > deadline:
                raise SystemExit("the changes did not reach looma within 30 s")
            await asyncio.sleep(0.05)
        print("status of user/0 at zervigo:", zervigo.status("user", "0"))
        # looma's own change: based on the stored state, published, then recorded locally the
        # way the subscriber records remote ones (a remote change in between is kept).
        base = await users.read("user", "0")
        upgraded = await looma.publish("user", "0", "update", {"name": "user 0", "plan": "pro"}, base=base)
        decided = await looma.apply_local(users, upgraded)
        print(f"looma published {upgraded!r}; locally {decided['effect']}")
        print("looma health:", looma.health())


if __name__ == "__main__":
    reason = KafkaBroker.skip_reason()
    if reason is not None:
        print(f"data sync example skipped: {reason}")
    else:
        with KafkaBroker.start() as broker:
            asyncio.run(main(broker.bootstrap_servers))
