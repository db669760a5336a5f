"""Judging calls and health snapshots: the arithmetic of federation-conformance/src/expect.rs,
line for line, so a Python pass and a Rust fail cannot both be right."""

from __future__ import annotations

from typing import Any, Optional

from .driver import CallRecord
from .world import InstanceRef, resolve

Deltas = list[tuple[InstanceRef, int]]


def holds(bound: dict[str, Any], value: float) -> bool:
    lo, hi = bound.get("min"), bound.get("max")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def show(bound: dict[str, Any]) -> str:
    lo, hi = bound.get("min"), bound.get("max")
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return "anything"


def _check(failures: list[str], what: str, bound: dict[str, Any], observed: float) -> None:
    if not holds(bound, observed):
        failures.append(f"{what}: expected {show(bound)}, observed {observed:.3f}")


def _share(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else part / whole


def summarize(records: list[CallRecord], deltas: Deltas) -> dict[str, Any]:
    return {
        "calls": len(records),
        "succeeded": sum(1 for r in records if r.succeeded()),
        "attempts": sum(len(r.attempts) for r in records),
        "upstream": sum(n for _, n in deltas),
        "slowest_ms": int(max((r.elapsed_ms for r in records), default=0)),
    }


def render_summary(s: dict[str, Any]) -> str:
    return (
        f"{s['calls']} calls, {s['succeeded']} ok, {s['attempts']} attempts, "
        f"{s['upstream']} upstream requests, slowest {s['slowest_ms']} ms"
    )


def _outcomes(records: list[CallRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        label = str(r.status) if r.status is not None else f"{r.error_kind or '?'}: {(r.error or '')[:160]}"
        out[label] = out.get(label, 0) + 1
    return dict(sorted(out.items()))


def judge_calls(
    expect: dict[str, Any], records: list[CallRecord], deltas: Deltas, every: list[InstanceRef]
) -> list[str]:
    failures: list[str] = []
    summary = summarize(records, deltas)
    if "success_share" in expect:
        bound = expect["success_share"]
        observed = _share(summary["succeeded"], summary["calls"])
        if not holds(bound, observed):
            failures.append(
                f"success share: expected {show(bound)}, observed {observed:.3f}; outcomes: {_outcomes(records)}"
            )
    for cluster, bound in sorted((expect.get("served_by") or {}).items()):
        served = sum(1 for r in records if r.succeeded() and r.cluster == cluster)
        _check(failures, f"share of successful calls served by {cluster}", bound, _share(served, summary["succeeded"]))
    max_attempts: Optional[int] = expect.get("max_attempts")
    if max_attempts is not None and records:
        worst = max(records, key=lambda r: len(r.attempts))
        if len(worst.attempts) > max_attempts:
            failures.append(
                f"attempts per call: expected <= {max_attempts}, observed {len(worst.attempts)} ({worst.attempts})"
            )
    if "upstream_per_call" in expect:
        _check(failures, "upstream requests per call", expect["upstream_per_call"],
               summary["upstream"] / max(summary["calls"], 1))
    for reference, bound in sorted((expect.get("instance_requests") or {}).items()):
        try:
            selected = resolve(reference, every)
        except ValueError as e:
            failures.append(str(e))
            continue
        n = sum(count for i, count in deltas if i in selected)
        _check(failures, f"requests received by {reference}", bound, n)
    for reference, bound in sorted((expect.get("instance_attempts") or {}).items()):
        try:
            selected = resolve(reference, every)
        except ValueError as e:
            failures.append(str(e))
            continue
        n = sum(
            1 for r in records for (c, id_) in r.attempts
            if any(i.cluster == c and i.id == id_ for i in selected)
        )
        _check(failures, f"attempts sent to {reference}", bound, n)
    max_ms: Optional[int] = expect.get("max_call_ms")
    if max_ms is not None and summary["slowest_ms"] > max_ms:
        failures.append(f"slowest call: expected <= {max_ms} ms, observed {summary['slowest_ms']} ms")
    kinds: Optional[list[str]] = expect.get("error_kinds")
    if kinds is not None:
        wrong: dict[str, int] = {}
        for r in records:
            if r.status is None and (r.error_kind or "") not in kinds:
                label = f"{r.error_kind or ''} ({r.error or ''})"
                wrong[label] = wrong.get(label, 0) + 1
        if wrong:
            failures.append(f"error kinds: expected only {kinds}, observed {dict(sorted(wrong.items()))}")
    statuses: Optional[list[int]] = expect.get("statuses")
    if statuses is not None:
        wrong = {}
        for r in records:
            if r.status is None or r.status not in statuses:
                label = str(r.status) if r.status is not None else f"error {r.error_kind or '?'}: {r.error or ''}"
                wrong[label] = wrong.get(label, 0) + 1
        if wrong:
            failures.append(f"statuses: expected only {statuses}, observed {dict(sorted(wrong.items()))}")
    for status, bound in sorted((expect.get("cache") or {}).items()):
        n = sum(1 for r in records if r.cache == status)
        _check(failures, f"calls with cache {status}", bound, n)
    return failures


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def judge_health(expect: dict[str, Any], snapshot: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    name = expect["service"]
    service = next((s for s in snapshot.get("services") or [] if s.get("service") == name), None)
    if service is None:
        return [f"health: no service `{name}` in the snapshot"]
    if expect.get("selected") is not None:
        observed = service.get("selected") if isinstance(service.get("selected"), str) else "<none>"
        if observed != expect["selected"]:
            failures.append(f"health {name}: selected cluster expected {expect['selected']}, observed {observed}")
    cluster = expect.get("cluster")
    if cluster is None:
        return failures
    entry = next((c for c in service.get("clusters") or [] if c.get("cluster") == cluster), None)
    if entry is None:
        failures.append(f"health {name}: no cluster `{cluster}`")
        return failures
    what = f"health {name}/{cluster}"
    if "ejected" in expect:
        _check(failures, f"{what} ejected", expect["ejected"], _number(entry.get("ejected")))
    if "available" in expect:
        _check(failures, f"{what} available", expect["available"], _number(entry.get("available")))
    if expect.get("stale") is not None:
        observed_stale = entry.get("stale")
        if observed_stale is not expect["stale"]:
            failures.append(f"{what} stale: expected {expect['stale']}, observed {observed_stale}")
    return failures
