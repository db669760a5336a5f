"""Every scenario of tests/scenarios/ through the Python package's public API against a fresh
`federation.testing` world (see tests/conformance/ and docs/conformance.md). A failing scenario
fails its test unless it is marked `known_failure`; the report is printed either way (-s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conformance import runner, scenario
from conformance.driver import Driver
from conformance.world import World

SCENARIOS = scenario.paths()


def test_there_are_at_least_twelve_scenarios() -> None:
    assert len(SCENARIOS) >= 12, [p.name for p in SCENARIOS]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    spec = scenario.load(path)
    assert spec["name"] == path.stem, f"{path}: name must equal the file stem"
    world = World(spec["clusters"])
    try:
        driver = Driver(runner.client_config(spec, world))
        try:
            report = asyncio.run(runner.run(spec, world, driver))
        finally:
            driver.close()
    finally:
        world.shutdown()
    print(report.render())
    if spec["known_failure"] is None:
        assert report.passed(), report.render()
