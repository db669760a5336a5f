"""Running one scenario: federation-conformance/src/runner.rs in Python. The order of operations
is part of the contract: request counters are read right before the first and right after the
last call of a calls step, the count is split over `concurrency` workers (the first
`count % concurrency` take one more), and a health step polls the snapshot every 50 ms until it
holds or `within_ms` passes. Execution stops at a step that could not be carried out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import federation

from . import expect
from .driver import CallRecord, Driver
from .world import InstanceRef, World, resolve


@dataclass
class StepReport:
    label: str
    failures: list[str]
    summary: Optional[str] = None


@dataclass
class ScenarioReport:
    name: str
    known_failure: Optional[str]
    steps: list[StepReport] = field(default_factory=list)

    def passed(self) -> bool:
        return all(not s.failures for s in self.steps)

    def render(self) -> str:
        verdict = {
            (True, True): "PASS (marked known_failure: remove the mark)",
            (True, False): "PASS",
            (False, True): "KNOWN FAILURE",
            (False, False): "FAIL",
        }[(self.passed(), self.known_failure is not None)]
        out = f"scenario {self.name}: {verdict}\n"
        if self.known_failure is not None:
            out += f"  known failure: {self.known_failure}\n"
        for step in self.steps:
            out += f"  {step.label}" + (f": {step.summary}" if step.summary else "") + "\n"
            out += "".join(f"    FAILED {f}\n" for f in step.failures)
        return out


def client_config(scenario: dict[str, Any], world: World) -> dict[str, Any]:
    """The scenario's `client` block plus `clusters` built from the topology."""
    clusters: dict[str, Any] = {}
    for cluster in scenario["clusters"]:
        entry = world.cluster_source(cluster["name"])
        if cluster.get("load_balancing") is not None:
            entry["load_balancing"] = cluster["load_balancing"]
        clusters[cluster["name"]] = entry
    return {**scenario["client"], "clusters": clusters}


def _describe(kind: str, value: Any) -> Optional[str]:
    if kind in ("kill", "revive"):
        return str(value)
    if kind == "behavior":
        return str(value["target"])
    if kind == "health_status":
        return f"{value['target']} {value['status']}"
    if kind == "consul":
        return f"{value['cluster']} {value['fault']}"
    if kind == "sleep_ms":
        return f"{value} ms"
    if kind == "wait_passing":
        return f"{value['target']} = {value['count']}"
    if kind == "calls":
        name = value.get("name")
        return None if name is None else str(name)
    return str(value["service"])


async def run(scenario: dict[str, Any], world: World, driver: Driver) -> ScenarioReport:
    report = ScenarioReport(scenario["name"], scenario["known_failure"])
    every = world.instances()
    clusters = client_config(scenario, world)["clusters"]
    for n, (kind, value) in enumerate(scenario["steps"]):
        name = _describe(kind, value)
        label = f"#{n + 1} {kind}" + (f" {name}" if name is not None else "")
        try:
            failures, summary = await _execute(kind, value, world, driver, every, clusters)
        except ValueError as e:
            failures, summary = [f"step could not run: {e}"], None
        report.steps.append(StepReport(label, failures, summary))
        if any(f.startswith("step could not run") for f in failures):
            break
    return report


async def _execute(
    kind: str,
    value: Any,
    world: World,
    driver: Driver,
    every: list[InstanceRef],
    clusters: dict[str, Any],
) -> tuple[list[str], Optional[str]]:
    if kind == "kill":
        for i in resolve(value, every):
            world.kill(i)
    elif kind == "revive":
        for i in resolve(value, every):
            world.revive(i)
    elif kind == "behavior":
        for i in resolve(value["target"], every):
            world.set_behavior(i, value)
    elif kind == "health_status":
        for i in resolve(value["target"], every):
            world.set_health_status(i, value["status"])
    elif kind == "consul":
        world.consul_fault(value)
    elif kind == "sleep_ms":
        await asyncio.sleep(value / 1000)
    elif kind == "wait_passing":
        cluster, sep, service = value["target"].partition("/")
        if not sep:
            raise ValueError(f"`{value['target']}`: expected cluster/service")
        await world.wait_passing(cluster, service, value["count"], value["timeout_ms"])
    elif kind == "calls":
        reloads = value.get("reloads")
        configs = [] if reloads is None else [{**c, "clusters": clusters} for c in reloads["clients"]]
        every_ms = 0 if reloads is None else reloads["every_ms"]
        return await _run_calls(value, world, driver, every, (every_ms, configs))
    elif kind == "health":
        until = time.monotonic() + value["within_ms"] / 1000
        while True:
            failures = expect.judge_health(value, driver.health())
            if not failures or time.monotonic() >= until:
                return failures, None
            await asyncio.sleep(0.05)
    return [], None


async def _run_calls(
    step: dict[str, Any],
    world: World,
    driver: Driver,
    every: list[InstanceRef],
    reloads: tuple[int, list[dict[str, Any]]],
) -> tuple[list[str], Optional[str]]:
    before = [world.requests(i) for i in every]
    workers = max(step["concurrency"], 1)
    count = step["count"]

    async def worker(w: int) -> list[CallRecord]:
        out = []
        for _ in range(count // workers + (1 if w < count % workers else 0)):
            out.append(await driver.call(step["request"]))
            if step["interval_ms"] > 0:
                await asyncio.sleep(step["interval_ms"] / 1000)
        return out

    calls = asyncio.gather(*(worker(w) for w in range(workers)))
    every_ms, configs = reloads
    reload_failures: list[str] = []
    if configs:
        runs = await _reload_while(calls, every_ms, configs, driver, reload_failures)
    else:
        runs = await calls
    records = [r for run in runs for r in run]
    deltas = [(i, max(world.requests(i) - b, 0)) for i, b in zip(every, before)]
    failures = expect.judge_calls(step["expect"], records, deltas, every) + reload_failures
    return failures, expect.render_summary(expect.summarize(records, deltas))


async def _reload_while(
    calls: "asyncio.Future[list[list[CallRecord]]]",
    every_ms: int,
    configs: list[dict[str, Any]],
    driver: Driver,
    failures: list[str],
) -> list[list[CallRecord]]:
    """Awaits `calls` while reloading the client with `configs` in turn every `every_ms`."""
    made = 0
    while True:
        done, _ = await asyncio.wait({calls}, timeout=every_ms / 1000)
        if done:
            if made == 0:
                failures.append("reloads: the calls ended before the first reload")
            return calls.result()
        try:
            driver.reload(configs[made % len(configs)])
        except federation.FederationError as e:
            failures.append(f"reload {made + 1}: {e}")
        made += 1
