"""Every scenario of tests/scenarios/ through the Python package's public API against a fresh
`federation.testing` world (see tests/conformance/ and docs/conformance.md). A failing scenario
fails its test unless it is marked `known_failure`; the report is printed either way (-s).
FEDERATION_SCENARIO=<name> runs one scenario; a name that matches no file fails. The number of
scenarios collected is checked against the files in the directory (each must be a scenario)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from conformance import runner, scenario
from conformance.driver import Driver
from conformance.world import World

SCENARIOS = scenario.paths()
ONLY = os.environ.get("FEDERATION_SCENARIO") or None
SELECTED = [p for p in SCENARIOS if ONLY in (None, p.stem)]


def test_every_scenario_file_is_run() -> None:
    on_disk = [p for p in scenario.SCENARIO_DIR.iterdir() if p.is_file()]
    assert len(SCENARIOS) == len(on_disk), sorted(p.name for p in on_disk)
    if ONLY is None:
        assert len(SELECTED) == len(on_disk)
    else:
        assert len(SELECTED) == 1, (
            f"FEDERATION_SCENARIO={ONLY} names no scenario; known: {[p.stem for p in SCENARIOS]}"
        )


@pytest.mark.parametrize("path", SELECTED, ids=[p.stem for p in SELECTED])
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
