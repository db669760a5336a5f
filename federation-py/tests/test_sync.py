"""The data sync from Python, against a real Kafka broker (the testkit's, one per module).

zervigo and looma are two `DataSync` runtimes in this process sharing the broker (the plan's
simple setup); each test uses its own topic prefix. Skipped with the testkit's reason when this
machine has no Java (under CI a missing Java fails instead)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

import federation
from federation import DataSync, MemoryTarget, SyncChange
from federation.testing import KafkaBroker

WAIT = 30.0
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    reason = KafkaBroker.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with KafkaBroker.start() as started:
        yield started


def sync_yaml(bootstrap: str, *, max_attempts: int = 3, notes: bool = False) -> str:
    """Both clusters on `bootstrap`, topics under a fresh prefix, one partition (so one bad
    event would stall every later one if the partition did not go on)."""
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
    user: {{}}
    company: {{ policy: prefer_cluster, owner: zervigo }}
{"    note: { policy: callback }" if notes else ""}
  topic_prefix: py-{uuid.uuid4().hex[:12]}
  partitions: 1
  handler: {{ max_attempts: {max_attempts}, initial_backoff: 20ms, max_backoff: 100ms }}
  publish_timeout: 20s
"""


def pair(broker: KafkaBroker, callbacks: Optional[dict[str, Any]] = None, **options: Any) -> tuple[DataSync, DataSync]:
    text = sync_yaml(broker.bootstrap_servers, notes=callbacks is not None, **options)
    return (
        DataSync.from_yaml(text, local_cluster="zervigo", callbacks=callbacks),
        DataSync.from_yaml(text, local_cluster="looma", callbacks=callbacks),
    )


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.05)


def overall(sync: DataSync, entity_type: str, entity_id: str) -> Optional[str]:
    status = sync.status(entity_type, entity_id)
    return None if status is None else str(status["overall"])


class AsyncStore:
    """A looma-style async store: states and records in dicts, every write logged with the loop
    thread it ran on."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.log: list[tuple[str, str, Optional[dict[str, Any]]]] = []
        self.threads: set[int] = set()

    async def read(self, entity_type: str, entity_id: str) -> Optional[dict[str, Any]]:
        await asyncio.sleep(0)
        return self.states.get((entity_type, entity_id))

    async def write(self, change: SyncChange) -> None:
        await asyncio.sleep(0)
        self.threads.add(threading.get_ident())
        self.states[(change["entity_type"], change["entity_id"])] = change["state"]
        self.log.append((change["entity_id"], change["effect"], change["record"]))


def test_publish_from_asyncio_and_apply_with_an_async_handler(broker: KafkaBroker) -> None:
    zervigo, looma = pair(broker)

    async def main() -> None:
        first = await zervigo.publish("user", "1", "create", {"name": "Ada", "n": 0})
        assert (first.origin, first.entity_type, first.operation) == ("zervigo", "user", "create")
        assert len(first.event_id) == 32 and first.partition == 0 and first.offset >= 0
        assert first.hlc[0] > 0
        # Nobody consumes yet: pending in looma.
        assert overall(zervigo, "user", "1") == "pending"
        assert zervigo.status("user", "1") == {
            "event_id": first.event_id,
            "hlc": {"wall_ms": first.hlc[0], "logical": first.hlc[1]},
            "targets": {"looma": {"state": "pending"}},
            "overall": "pending",
        }
        base = first.state
        last = first
        for n in range(1, 6):
            last = await zervigo.publish("user", "1", "update", {"name": "Ada", "n": n}, base=base)
            base = last.state
            assert last.hlc > first.hlc
        store = AsyncStore()
        async with looma.subscribe(store) as subscription:
            with pytest.raises(RuntimeError, match="would block the event loop"):
                subscription.stop_sync()
            await until(lambda: len(store.log) == 6, "six writes in looma")
            await until(lambda: overall(zervigo, "user", "1") == "completed", "completed status")
        # In order, each once, on this loop's thread.
        assert [(i, e, r and r["n"]) for i, e, r in store.log] == [("1", "applied", n) for n in range(6)]
        assert store.threads == {threading.get_ident()}
        status = zervigo.status("user", "1")
        assert status is not None
        assert status["event_id"] == last.event_id
        assert status["targets"] == {"looma": {"state": "completed", "effect": "applied"}}
        assert 'federation_sync_published_total{entity_type="user"} 6' in zervigo.metrics_text()
        assert 'effect="applied"' in looma.metrics_text()
        health = looma.health()
        assert health["local_cluster"] == "looma" and health["healthy"] is True
        assert health["origins"]["zervigo"]["consumed"] == 6

    asyncio.run(main())


def test_a_plain_handler_runs_off_the_loop_and_a_blocking_publisher_works(broker: KafkaBroker) -> None:
    zervigo, looma = pair(broker)
    states: dict[tuple[str, str], dict[str, Any]] = {}
    threads: set[int] = set()

    def read(entity_type: str, entity_id: str) -> Optional[dict[str, Any]]:
        return states.get((entity_type, entity_id))

    def write(change: SyncChange) -> None:
        threads.add(threading.get_ident())
        states[(change["entity_type"], change["entity_id"])] = change["state"]

    with looma.subscribe(read=read, write=write) as subscription:
        published = [zervigo.publish_sync("user", str(i), "create", {"i": i}) for i in range(5)]
        deadline = time.monotonic() + WAIT
        while len(states) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert subscription.running
    assert not subscription.running
    assert sorted(k for _, k in states) == ["0", "1", "2", "3", "4"]
    assert all(states[("user", p.entity_id)]["version"]["event_id"] == p.event_id for p in published)
    assert threading.get_ident() not in threads


def test_a_raising_handler_is_retried_then_dead_lettered_and_the_partition_goes_on(broker: KafkaBroker) -> None:
    zervigo, looma = pair(broker, max_attempts=3)
    attempts: list[str] = []
    applied = MemoryTarget()

    async def read(entity_type: str, entity_id: str) -> Optional[dict[str, Any]]:
        return applied.get(entity_type, entity_id)

    async def write(change: SyncChange) -> None:
        if change["entity_id"] == "poison":
            attempts.append(change["event_id"])
            raise ValueError("cannot store a poison user")
        applied.put(change["entity_type"], change["entity_id"], change["state"])

    async def main() -> None:
        bad = await zervigo.publish("user", "poison", "create", {"name": "x"})
        good = await zervigo.publish("user", "fine", "create", {"name": "y"})
        async with looma.subscribe(read=read, write=write):
            await until(lambda: applied.record("user", "fine") is not None, "the next event applied")
            await until(lambda: overall(zervigo, "user", "poison") == "failed", "failed status")
        assert attempts == [bad.event_id] * 3
        status = zervigo.status("user", "poison")
        assert status is not None
        reason = status["targets"]["looma"]["reason"]
        assert "ValueError: cannot store a poison user" in reason and "3" in reason
        assert overall(zervigo, "user", "fine") == "completed"
        assert applied.record("user", "fine") == {"name": "y"} and good.partition == bad.partition
        assert 'federation_sync_dead_letters_total{reason="handler"} 1' in looma.metrics_text()

    asyncio.run(main())


def test_a_concurrent_edit_resolves_to_the_owner_on_both_sides(broker: KafkaBroker) -> None:
    zervigo, looma = pair(broker)
    z_store, l_store = MemoryTarget(), MemoryTarget()

    async def main() -> None:
        # Both edit company/1 without seeing each other; looma's edit is the later one, so only
        # `prefer_cluster` (owner zervigo) makes zervigo's win.
        z = await zervigo.publish("company", "1", "create", {"name": "Zervigo Ltd"})
        await zervigo.apply_local(z_store, z)
        await asyncio.sleep(0.01)
        lo = await looma.publish("company", "1", "create", {"name": "Looma GmbH"})
        assert lo.hlc > z.hlc
        decided = await looma.apply_local(l_store, lo)
        assert decided["effect"] == "applied" and decided["conflict"] is None
        async with zervigo.subscribe(z_store), looma.subscribe(l_store):
            await until(lambda: overall(looma, "company", "1") == "completed", "looma's change acknowledged")
            await until(lambda: overall(zervigo, "company", "1") == "completed", "zervigo's change acknowledged")
        assert z_store.record("company", "1") == l_store.record("company", "1") == {"name": "Zervigo Ltd"}
        assert l_store.writes_of(z.event_id, "applied") == 1
        assert z_store.writes_of(lo.event_id, "superseded") == 1
        looma_status = looma.status("company", "1")
        assert looma_status is not None
        assert looma_status["targets"]["zervigo"] == {"state": "completed", "effect": "superseded"}
        conflicts = 'federation_sync_conflicts_total{entity_type="company",policy="prefer_cluster"} 1'
        assert conflicts in looma.metrics_text() and conflicts in zervigo.metrics_text()

    asyncio.run(main())


def test_a_python_conflict_callback_merges_concurrent_edits_alike_on_both_sides(broker: KafkaBroker) -> None:
    asked: list[tuple[str, str]] = []

    def union_of_tags(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
        asked.append((first["stamp"]["origin"], second["stamp"]["origin"]))
        hlc = [(v["stamp"]["hlc"]["wall_ms"], v["stamp"]["hlc"]["logical"]) for v in (first, second)]
        assert hlc[0] <= hlc[1], "older version first"
        tags = set(first["data"]["tags"]) | set(second["data"]["tags"])
        return {"tags": sorted(tags)}

    zervigo, looma = pair(broker, callbacks={"note": union_of_tags})
    z_store, l_store = MemoryTarget(), MemoryTarget()

    async def main() -> None:
        z = await zervigo.publish("note", "1", "create", {"tags": ["zervigo", "shared"]})
        await zervigo.apply_local(z_store, z)
        lo = await looma.publish("note", "1", "create", {"tags": ["looma", "shared"]})
        await looma.apply_local(l_store, lo)
        async with zervigo.subscribe(z_store), looma.subscribe(l_store):
            await until(lambda: overall(looma, "note", "1") == "completed", "looma's note acknowledged")
            await until(lambda: overall(zervigo, "note", "1") == "completed", "zervigo's note acknowledged")
        merged = {"tags": ["looma", "shared", "zervigo"]}
        assert z_store.record("note", "1") == l_store.record("note", "1") == merged
        assert z_store.writes_of(lo.event_id, "merged") == 1 and l_store.writes_of(z.event_id, "merged") == 1
        # Each side asked, and both asked the same question (the two versions in stamp order).
        assert len(asked) >= 2 and len(set(asked)) == 1
        assert 'federation_sync_conflicts_total{entity_type="note",policy="callback"} 1' in looma.metrics_text()

    asyncio.run(main())
    with pytest.raises(federation.ConfigError, match="no callback was registered"):
        DataSync.from_yaml(sync_yaml(broker.bootstrap_servers, notes=True), local_cluster="looma")
    with pytest.raises(federation.InvalidRequestError, match="plain"):
        DataSync.from_yaml(sync_yaml(broker.bootstrap_servers, notes=True), callbacks={"note": AsyncStore().read})  # type: ignore[dict-item]


def test_bad_changes_are_refused_before_anything_is_sent(broker: KafkaBroker) -> None:
    zervigo, _ = pair(broker)
    with pytest.raises(federation.InvalidRequestError, match='"upsert"'):
        zervigo.publish_sync("user", "1", "upsert", {})
    with pytest.raises(federation.InvalidRequestError, match="not configured") as unknown:
        zervigo.publish_sync("invoice", "1", "create", {"total": 1})
    assert unknown.value.sync_kind == "invalid_change"
    with pytest.raises(federation.InvalidRequestError, match="must be a dict"):
        zervigo.publish_sync("user", "1", "create", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(federation.InvalidRequestError, match="`base` has the wrong shape"):
        zervigo.publish_sync("user", "1", "update", {}, base={"version": 3})
    with pytest.raises(federation.InvalidRequestError, match="no `read` method"):
        zervigo.subscribe(object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no asyncio event loop"):
        zervigo.subscribe(AsyncStore())
    assert zervigo.status("user", "1") is None


def test_publish_with_the_broker_down_fails_with_a_timeout_within_the_deadline(broker: KafkaBroker) -> None:
    zervigo, _ = pair(broker)
    broker.stop()
    try:

        async def publish() -> federation.Published:
            return await zervigo.publish("user", "down", "create", {"name": "x"}, timeout=2.0)

        started = time.monotonic()
        with pytest.raises(federation.TimeoutError) as raised:
            asyncio.run(publish())
        elapsed = time.monotonic() - started
        assert isinstance(raised.value, TimeoutError)
        assert raised.value.sync_kind == "timeout" and raised.value.kind == "timeout"
        assert "within 2s" in str(raised.value)
        assert 1.9 <= elapsed < 6.0, elapsed
        assert zervigo.status("user", "down") is None
    finally:
        broker.restart()



def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_test_broker_is_killed_by_its_pid_and_when_collected() -> None:
    reason = KafkaBroker.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    broker = KafkaBroker.start(heap_mb=256)
    first = broker.pid
    assert first is not None and alive(first) and broker.running
    broker.kill()
    assert broker.pid is None and not broker.running and not alive(first)
    broker.restart()
    second = broker.pid
    assert second is not None and second != first and alive(second)
    del broker
    gc.collect()
    assert not alive(second)


def test_an_async_target_whose_loop_closed_fails_its_changes_instead_of_hanging(broker: KafkaBroker) -> None:
    zervigo, looma = pair(broker)
    store = AsyncStore()

    async def subscribe_and_leave() -> federation.Subscription:
        return looma.subscribe(store)

    subscription = asyncio.run(subscribe_and_leave())  # the loop is closed on return
    try:
        zervigo.publish_sync("user", "orphan", "create", {"name": "x"})
        deadline = time.monotonic() + WAIT
        while overall(zervigo, "user", "orphan") != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = zervigo.status("user", "orphan")
        assert status is not None and status["overall"] == "failed", status
        assert "Event loop is closed" in status["targets"]["looma"]["reason"]
        assert store.log == []
    finally:
        subscription.stop_sync()


EXIT_SCRIPT = """
import asyncio, sys, time
from federation import DataSync
text = sys.stdin.read()
zervigo = DataSync.from_yaml(text, local_cluster="zervigo")
looma = DataSync.from_yaml(text, local_cluster="looma")
def read(entity_type, entity_id):
    return None
def write(change):
    time.sleep(0.05)
async def aread(entity_type, entity_id):
    await asyncio.sleep(0.05)
async def main():
    sub = looma.subscribe(read=aread if sys.argv[1] == "async" else read, write=write)
    for i in range(20):
        await zervigo.publish("user", str(i), "create", {"i": i})
    await asyncio.sleep(0.5)
    sys.exit(0)  # exits with the subscription running and handler calls in flight
asyncio.run(main())
"""


@pytest.mark.parametrize("handler", ["sync", "async"])
def test_the_interpreter_exits_cleanly_with_a_subscription_mid_change(broker: KafkaBroker, handler: str) -> None:
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", EXIT_SCRIPT, handler],
            input=sync_yaml(broker.bootstrap_servers),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0, "")


def test_configuration_errors_name_the_field_before_any_broker_is_contacted() -> None:
    static = {"static": {"user-service": [{"address": "127.0.0.1", "port": 8080}]}}
    config: dict[str, Any] = {
        "clusters": {"zervigo": static, "looma": static},
        "sync": {
            "clusters": {"zervigo": {"bootstrap_servers": "127.0.0.1:1"}, "looma": {"bootstrap_servers": "127.0.0.1:1"}},
            "entities": {"user": {"policy": "last_writer_win"}},
        },
    }
    with pytest.raises(federation.ConfigError, match="last_writer_wins") as bad_policy:
        DataSync.from_dict(config, local_cluster="looma")
    assert any(p["path"] == "sync.entities.user.policy" for p in bad_policy.value.problems)
    config["sync"]["entities"]["user"]["policy"] = "last_writer_wins"
    with pytest.raises(federation.ConfigError, match="no local cluster") as no_local:
        DataSync.from_dict(config)
    assert no_local.value.sync_kind == "config"
    with pytest.raises(federation.ConfigError, match='"nowhere" is not under sync.clusters'):
        DataSync.from_dict(config, local_cluster="nowhere")
