"""Data sync across languages, against a real Kafka broker: the zervigo side is a Go program
(main.go, the federation-go binding), the looma side is this Python process (the federation
package). Changes published in Go are applied in Python and the reverse, and one entity edited
concurrently on both sides ends identical on both.

Run by scripts/ffi-go-test.sh with the venv of scripts/python-test.sh; alone:
    target/python-venv/bin/python -m pytest tests/sync-cross
(builds the Go program itself when FEDERATION_SYNC_CROSS_BIN is not set)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from federation import DataSync, MemoryTarget
from federation.testing import KafkaBroker

HERE = Path(__file__).resolve().parent
WAIT = 60.0
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    reason = KafkaBroker.skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with KafkaBroker.start() as started:
        yield started


@pytest.fixture(scope="module")
def go_side(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("FEDERATION_SYNC_CROSS_BIN")
    if given:
        return Path(given)
    if shutil.which("go") is None:
        pytest.fail("the Go side needs the go toolchain (or FEDERATION_SYNC_CROSS_BIN)")
    out = tmp_path_factory.mktemp("go") / "sync-cross"
    env = dict(os.environ, CGO_ENABLED="1")
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=HERE, env=env, check=True)
    return out


def config(broker: KafkaBroker, tmp_path: Path) -> tuple[str, Path]:
    """Both clusters on the one broker, a fresh topic prefix; the text and a file with it."""
    static = "{ static: { user-service: [{ address: 127.0.0.1, port: 8080 }] } }"
    text = f"""
clusters:
  zervigo: {static}
  looma: {static}
sync:
  clusters:
    zervigo: {{ bootstrap_servers: "{broker.bootstrap_servers}" }}
    looma: {{ bootstrap_servers: "{broker.bootstrap_servers}" }}
  entities:
    user: {{}}
    company: {{ policy: prefer_cluster, owner: zervigo }}
  topic_prefix: cross-{uuid.uuid4().hex[:12]}
  partitions: 3
  handler: {{ max_attempts: 3, initial_backoff: 20ms, max_backoff: 100ms }}
  publish_timeout: 20s
"""
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    return text, path


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {WAIT} s")
        time.sleep(0.05)


def consumed_from_zervigo(looma: DataSync) -> int:
    origin = looma.health()["origins"].get("zervigo")
    return 0 if origin is None else int(origin["consumed"])


def go(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=WAIT * 2)
    assert done.returncode == 0, f"go side failed ({done.returncode}): {done.stderr}"
    return done


def test_changes_published_in_go_are_applied_in_python(broker: KafkaBroker, go_side: Path, tmp_path: Path) -> None:
    text, path = config(broker, tmp_path)
    target = MemoryTarget()
    with DataSync.from_yaml(text, local_cluster="looma") as looma, looma.subscribe(target):
        published = lines(go(go_side, "publish", str(path), "5", "3").stdout)
        assert len(published) == 5
        for entry in published:
            # Go waited until looma acknowledged the last change of the entity.
            assert entry["status"]["overall"] == "completed", entry
            assert entry["status"]["targets"]["looma"]["state"] == "completed", entry
            # Python holds exactly the state Go produced: record, stamp, clocks.
            assert target.get("user", entry["id"]) == entry["state"]
            assert entry["state"]["data"]["round"] == 3 and entry["state"]["data"]["lang"] == "go"
        # Once each: 5 entities x (create + 3 updates), every one applied, none twice.
        writes = target.writes()
        assert len(writes) == 20 and len({event for event, _ in writes}) == 20, writes
        assert {effect for _, effect in writes} == {"applied"}, writes


def test_changes_published_in_python_are_applied_in_go(broker: KafkaBroker, go_side: Path, tmp_path: Path) -> None:
    text, path = config(broker, tmp_path)
    with DataSync.from_yaml(text, local_cluster="looma") as looma:
        last: dict[str, Any] = {}
        for round_ in range(3):
            for i in range(4):
                entity = f"py-{i}"
                previous = last.get(entity)
                published = looma.publish_sync(
                    "user",
                    entity,
                    "create" if round_ == 0 else "update",
                    {"name": f"user {i}", "round": round_, "lang": "python"},
                    base=None if previous is None else previous.state,
                )
                last[entity] = published
        expected = tmp_path / "expected.json"
        expected.write_text(json.dumps({k: v.event_id for k, v in last.items()}))
        applied = {e["id"]: e for e in lines(go(go_side, "apply", str(path), str(expected)).stdout)}
        assert sorted(applied) == sorted(last)
        for entity, published in last.items():
            assert applied[entity]["state"] == published.state, entity
            assert applied[entity]["applied"] == 3, f"{entity}: each of the 3 changes applied once"
        # The Go side acknowledged: the change is completed in looma's status.
        until(lambda: all(looma.status("user", e)["overall"] == "completed" for e in last), "completed")  # type: ignore[index]


def test_a_concurrent_edit_ends_identical_in_go_and_python(broker: KafkaBroker, go_side: Path, tmp_path: Path) -> None:
    text, path = config(broker, tmp_path)
    target = MemoryTarget()
    with DataSync.from_yaml(text, local_cluster="looma") as looma, looma.subscribe(target):
        for entity_type, winner in (("user", None), ("company", "zervigo")):
            entity = f"shared-{uuid.uuid4().hex[:6]}"
            consumed = consumed_from_zervigo(looma)
            proc = subprocess.Popen(
                [str(go_side), "concurrent", str(path), entity_type, entity, "Zervigo Ltd"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                assert proc.stdout is not None and proc.stdin is not None
                assert json.loads(proc.stdout.readline()) == {"ready": True}
                proc.stdin.write("go\n")
                proc.stdin.flush()
                mine = looma.publish_sync(entity_type, entity, "create", {"name": "Looma GmbH", "lang": "python"})
                looma.apply_local_sync(target, mine)
                out, err = proc.communicate(timeout=WAIT * 2)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert proc.returncode == 0, err
            theirs = lines(out)[-1]
            until(lambda: consumed_from_zervigo(looma) > consumed, "zervigo's edit consumed")
            until(lambda: looma.health()["pending"] == 0, "looma's edit acknowledged")
            until(lambda: target.get(entity_type, entity) == theirs["state"], f"{entity_type}/{entity} identical")
            if winner == "zervigo":
                assert theirs["state"]["data"]["name"] == "Zervigo Ltd", theirs
