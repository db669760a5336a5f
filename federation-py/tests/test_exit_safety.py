"""Interpreter exit while calls are in flight never crashes.

A binding that completes asyncio futures from worker threads during interpreter shutdown
segfaults or aborts in a share of runs. Each run here is a fresh interpreter that starts many
calls against an instance with random latency (so completions keep arriving during exit), then
exits mid-flight in one of several ways; every run must exit with the expected code and print
nothing on stderr.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Callable

import pytest
from conftest import static_config

from federation.testing import ServiceInstance

RUNS = 60
PARALLEL = 4

PRELUDE = """
import asyncio, os, random, sys, threading, time
import federation
client = federation.FederatedServiceClient.from_dict({config!r})
client.get_sync("svc", "/warm")
random.seed({seed})
"""

VARIANTS = {
    # sys.exit inside asyncio.run: asyncio cancels the pending tasks, atexit drains the rest.
    "exit_in_asyncio_run": """
async def main():
    tasks = [asyncio.ensure_future(client.get("svc", f"/{{i}}")) for i in range(400)]
    await asyncio.sleep(random.uniform(0.0, 0.02))
    sys.exit(0)
asyncio.run(main())
""",
    # The loop is stopped, never closed, with hundreds of calls still completing.
    "abandoned_loop": """
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
async def start():
    for i in range(400):
        asyncio.ensure_future(client.get("svc", f"/{{i}}"))
    await asyncio.sleep(random.uniform(0.0, 0.02))
loop.run_until_complete(start())
""",
    # Daemon threads blocked in sync calls when the main thread returns.
    "daemon_threads": """
def worker():
    while True:
        client.get_sync("svc", "/sync")
for _ in range(8):
    threading.Thread(target=worker, daemon=True).start()
time.sleep(random.uniform(0.0, 0.05))
""",
    # Both at once, leaving via an exception (exit code 1, traceback on stderr expected).
    "exception_mid_flight": """
def worker():
    while True:
        client.get_sync("svc", "/sync")
for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
async def main():
    for i in range(300):
        asyncio.ensure_future(client.get("svc", f"/{{i}}"))
    await asyncio.sleep(random.uniform(0.0, 0.02))
    raise KeyError("boom")
asyncio.run(main())
""",
}


@pytest.mark.timeout(240)
def test_exit_mid_flight_never_crashes(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    instance.set_behavior(latency=(0.0, 0.01))
    config = static_config({"local": [instance]}, timeout={"attempt": "5s", "total": "5s"})
    names = sorted(VARIANTS)
    plans = [(names[run % len(names)], run) for run in range(RUNS)]
    failures: list[str] = []
    for start in range(0, len(plans), PARALLEL):
        batch = []
        for name, run in plans[start : start + PARALLEL]:
            script = textwrap.dedent(PRELUDE.format(config=config, seed=run)) + VARIANTS[name]
            batch.append(
                (name, run, subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            )
        for name, run, process in batch:
            try:
                _, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                failures.append(f"run {run} ({name}): hung")
                continue
            if name == "exception_mid_flight":
                ok = process.returncode == 1 and stderr.rstrip().endswith("KeyError: 'boom'")
            else:
                ok = process.returncode == 0 and stderr == ""
            if not ok:
                failures.append(f"run {run} ({name}): exit {process.returncode}, stderr: {stderr[-2000:]}")
    assert failures == [], "\n".join(failures)
