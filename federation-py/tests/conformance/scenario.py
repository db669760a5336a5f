"""Reading scenario files strictly, with the defaults of federation-conformance/src/schema.rs.

A misspelled expectation that was silently dropped would make a scenario pass while proving
nothing, so every map is checked against the keys the Rust schema accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "tests" / "scenarios"

_KEYS: dict[str, set[str]] = {
    "scenario": {"name", "proves", "known_failure", "topology", "client", "steps"},
    "topology": {"clusters"},
    "cluster": {"name", "discovery", "load_balancing", "services", "consul_delay_ms"},
    "service": {"instances", "tags"},
    "behavior": {
        "target", "status", "latency_ms", "error_rate", "error_status", "retry_after", "mode",
        "chunk_delay_ms", "bytes",
    },
    "health_status": {"target", "status"},
    "consul": {"cluster", "fault", "delay_ms"},
    "wait_passing": {"target", "count", "timeout_ms"},
    "calls": {"name", "request", "count", "concurrency", "interval_ms", "reloads", "expect"},
    "reloads": {"every_ms", "clients"},
    "request": {
        "service", "method", "path", "idempotent", "timeout_ms", "attempt_timeout_ms", "cluster",
        "tags", "body", "headers",
    },
    "expect": {
        "success_share", "served_by", "max_attempts", "upstream_per_call", "instance_requests",
        "instance_attempts", "max_call_ms", "error_kinds", "statuses", "cache",
    },
    "bound": {"min", "max"},
    "health": {"service", "cluster", "selected", "ejected", "available", "stale", "within_ms"},
}
_STEPS = {
    "kill", "revive", "behavior", "health_status", "consul", "sleep_ms", "wait_passing", "calls",
    "health",
}
_REQUIRED: dict[str, set[str]] = {
    "scenario": {"name", "proves", "topology", "steps"},
    "cluster": {"name", "services"},
    "service": {"instances"},
    "behavior": {"target"},
    "health_status": {"target", "status"},
    "consul": {"cluster", "fault"},
    "wait_passing": {"target", "count"},
    "calls": {"request"},
    "reloads": {"every_ms", "clients"},
    "request": {"service"},
    "health": {"service"},
}


def _checked(value: Any, kind: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a map ({kind}), got {value!r}")
    unknown = set(value) - _KEYS[kind]
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)} in {kind}")
    missing = _REQUIRED.get(kind, set()) - set(value)
    if missing:
        raise ValueError(f"{where}: missing field(s) {sorted(missing)} in {kind}")
    return value


def _bounds(value: Any, where: str) -> None:
    _checked(value, "bound", where)


def _step(raw: Any, where: str) -> tuple[str, Any]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(f"{where}: a step is a single-key map, got {raw!r}")
    ((kind, value),) = raw.items()
    if kind not in _STEPS:
        raise ValueError(f"{where}: unknown step `{kind}`")
    if kind in ("kill", "revive"):
        if not isinstance(value, str):
            raise ValueError(f"{where}: `{kind}` takes an instance reference")
    elif kind == "sleep_ms":
        if not isinstance(value, int):
            raise ValueError(f"{where}: `sleep_ms` takes an integer")
    elif kind == "calls":
        step = dict(_checked(value, "calls", where))
        step["request"] = dict(_checked(step["request"], "request", where))
        if "reloads" in step:
            reloads = _checked(step["reloads"], "reloads", where)
            if not isinstance(reloads["clients"], list) or not reloads["clients"]:
                raise ValueError(f"{where}: `reloads.clients` must be a non-empty list")
        step.setdefault("count", 1)
        step.setdefault("concurrency", 1)
        step.setdefault("interval_ms", 0)
        expect = _checked(step.get("expect") or {}, "expect", where)
        for key in ("success_share", "upstream_per_call"):
            if key in expect:
                _bounds(expect[key], f"{where} {key}")
        for key in ("served_by", "instance_requests", "instance_attempts", "cache"):
            for name, bound in (expect.get(key) or {}).items():
                _bounds(bound, f"{where} {key}.{name}")
        step["expect"] = expect
        value = step
    elif kind == "health":
        value = dict(_checked(value, "health", where))
        value.setdefault("within_ms", 3000)
        for key in ("ejected", "available"):
            if key in value:
                _bounds(value[key], f"{where} {key}")
    elif kind == "wait_passing":
        value = dict(_checked(value, "wait_passing", where))
        value.setdefault("timeout_ms", 5000)
    else:
        value = _checked(value, kind, where)
    return kind, value


def load(path: Path) -> dict[str, Any]:
    """The scenario at `path` with defaults filled in; `steps` become (kind, value) pairs."""
    where = str(path)
    raw = _checked(yaml.safe_load(path.read_text()), "scenario", where)
    topology = _checked(raw["topology"], "topology", where)
    clusters = []
    for cluster in topology["clusters"]:
        cluster = dict(_checked(cluster, "cluster", where))
        cluster.setdefault("discovery", "consul")
        services = {}
        for name, spec in cluster["services"].items():
            if isinstance(spec, int):
                services[name] = {"instances": spec, "tags": []}
            else:
                spec = _checked(spec, "service", f"{where} {name}")
                services[name] = {"instances": spec["instances"], "tags": list(spec.get("tags", []))}
        cluster["services"] = services
        clusters.append(cluster)
    client = raw.get("client") or {}
    if not isinstance(client, dict):
        raise ValueError(f"{where}: `client` must be a map (services, defaults)")
    return {
        "name": raw["name"],
        "proves": raw["proves"],
        "known_failure": raw.get("known_failure"),
        "clusters": clusters,
        "client": client,
        "steps": [_step(s, f"{where} step {n + 1}") for n, s in enumerate(raw["steps"])],
    }


def paths() -> list[Path]:
    """Every scenario file, sorted by name."""
    return sorted(p for p in SCENARIO_DIR.iterdir() if p.suffix in (".yaml", ".yml"))
