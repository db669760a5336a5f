#!/usr/bin/env python3
"""Python SDK vs what a Python team would assemble (BENCHMARKS.md G4 and G5).

Async (G4): `federation` vs aiohttp and httpx.AsyncClient, each with pybreaker + cachetools, at
concurrency 1, 64 and 1000 (closed loop). Sync (G5): `get_sync` vs requests.Session and
httpx.Client at c = 1 and with 16 threads. Cache hit (G3, Python part): a sync `get_sync` answered
from the SDK's result cache vs a bare `cachetools.TTLCache` lookup, one thread, timed in batches.
All network variants call the same three zervigo
`user-service` instances of a sandbox running in a separate process (so its servers do not
share this interpreter's CPU budget); baselines round-robin over them. Variants are interleaved
(A B C A B C ...) after a warm-up per level, and the ratios are medians of per-repetition
ratios; the last lines print a verdict per goal.

    pip install ./federation-py aiohttp httpx requests pybreaker cachetools   # release build!
    python benchmarks/python_bench.py                 # full run (minutes)
    python benchmarks/python_bench.py --smoke         # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Optional

import federation

SANDBOX = """
import json, sys, time
from federation.testing import Sandbox
sb = Sandbox.start()
urls = [i.url for i in sb.instances("zervigo", "user-service")]
print(json.dumps({"config": sb.config(), "urls": urls}), flush=True)
sys.stdin.read()
"""


class Result:
    def __init__(self, latencies: list[float], seconds: float, errors: int) -> None:
        self.latencies = sorted(latencies)
        self.rps = len(latencies) / seconds if seconds else 0.0
        self.errors = errors

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))] * 1e3


def optional(name: str) -> Optional[Any]:
    try:
        return __import__(name)
    except ImportError:
        return None


async def closed_loop(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
                latencies.append(time.perf_counter() - started)
            except Exception:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(latencies, time.perf_counter() - started, errors)


async def open_loop(call: Callable[[], Awaitable[Any]], rate: float, seconds: float, limit: int) -> Result:
    """Calls started at a fixed `rate` (at most `limit` in flight); latency counts from each
    call's scheduled start, so a stall shows up in every call it delays (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(limit)
    running: set[asyncio.Future[None]] = set()

    async def one(scheduled: float) -> None:
        nonlocal errors
        async with slots:
            try:
                await call()
                latencies.append(time.perf_counter() - scheduled)
            except Exception:
                errors += 1

    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(scheduled))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    return Result(latencies, time.perf_counter() - started, errors)


def threaded_loop(call: Callable[[], Any], threads: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        mine: list[float] = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                call()
                mine.append(time.perf_counter() - started)
            except Exception:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Result(latencies, time.perf_counter() - started, errors[0])


def async_variants(config: dict[str, Any], urls: list[str]) -> dict[str, Callable[[], Any]]:
    """name -> factory returning (call, close) inside a running loop."""
    pybreaker, cachetools = optional("pybreaker"), optional("cachetools")
    rr = itertools.cycle(urls)

    def guard() -> tuple[Any, Any]:
        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=1) if pybreaker else None
        cache = cachetools.TTLCache(maxsize=10_000, ttl=30) if cachetools else None
        return breaker, cache

    async def sdk() -> Any:
        client = federation.FederatedServiceClient.from_dict(config)
        await client.wait_ready()
        return (lambda: client.get("user", "/api/v1/users/1"), client.close)

    async def with_aiohttp() -> Any:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        breaker, cache = guard()

        async def call() -> bytes:
            url = f"{next(rr)}/api/v1/users/1"
            if cache is not None and url in cache:
                return bytes(cache[url])
            with breaker.calling() if breaker else _null():
                async with session.get(url) as response:
                    return await response.read()

        async def close() -> None:
            await session.close()

        return (call, close)

    async def with_httpx() -> Any:
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=1000))
        breaker, cache = guard()

        async def call() -> bytes:
            url = f"{next(rr)}/api/v1/users/1"
            if cache is not None and url in cache:
                return bytes(cache[url])
            with breaker.calling() if breaker else _null():
                return (await client.get(url)).content

        return (call, client.aclose)

    variants: dict[str, Callable[[], Any]] = {"federation": sdk}
    if optional("aiohttp"):
        variants["aiohttp+pybreaker+cachetools"] = with_aiohttp
    if optional("httpx"):
        variants["httpx+pybreaker+cachetools"] = with_httpx
    return variants


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def sync_variants(config: dict[str, Any], urls: list[str], closers: list[Callable[[], Any]]) -> dict[str, Callable[[], Any]]:
    """name -> blocking call; appends each variant's close function to `closers`."""
    rr = itertools.cycle(urls)
    client = federation.FederatedServiceClient.from_dict(config)
    client.wait_ready_sync()
    closers.append(client.close)
    variants: dict[str, Callable[[], Any]] = {"federation": lambda: client.get_sync("user", "/api/v1/users/1")}
    requests = optional("requests")
    if requests:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=64)
        session.mount("http://", adapter)
        closers.append(session.close)
        variants["requests"] = lambda: session.get(f"{next(rr)}/api/v1/users/1").content
    httpx = optional("httpx")
    if httpx:
        hclient = httpx.Client()
        closers.append(hclient.close)
        variants["httpx"] = lambda: hclient.get(f"{next(rr)}/api/v1/users/1").content
    return variants


PATH = "/api/v1/users/1"
BATCH = 200


def batched_loop(call: Callable[[], Any], seconds: float) -> Result:
    """One thread calling `call` in batches of BATCH; each batch's mean counts as one latency."""
    latencies: list[float] = []
    errors = 0
    calls = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        try:
            for _ in range(BATCH):
                call()
        except Exception:
            errors += 1
            continue
        latencies.append((time.perf_counter() - t0) / BATCH)
        calls += BATCH
    result = Result(latencies, time.perf_counter() - started, errors)
    result.rps = calls / (time.perf_counter() - started)
    return result


def cache_hit_variants(config: dict[str, Any], urls: list[str], closers: list[Callable[[], Any]]) -> dict[str, Callable[[], Any]]:
    """G3 (Python): a sync SDK call answered from the result cache vs a bare TTLCache hit."""
    cached = copy.deepcopy(config)
    cached["services"]["user"]["cache"] = {"ttl": "10m"}
    client = federation.FederatedServiceClient.from_dict(cached)
    client.wait_ready_sync()
    closers.append(client.close)
    first = client.get_sync("user", PATH)
    hit = client.get_sync("user", PATH)
    if hit.cache != "hit":
        raise RuntimeError(f"expected a cache hit, got {hit.cache!r} after {first.cache!r}")
    # functools.partial: no Python frame of the harness's own between the loop and the call.
    variants: dict[str, Callable[[], Any]] = {"federation": functools.partial(client.get_sync, "user", PATH)}
    cachetools = optional("cachetools")
    if cachetools:
        ttl = cachetools.TTLCache(maxsize=10_000, ttl=600)
        key = f"{urls[0]}{PATH}"
        ttl[key] = first.content
        variants["cachetools.TTLCache[key]"] = functools.partial(ttl.__getitem__, key)
        variants["cachetools.TTLCache.get(key)"] = functools.partial(ttl.get, key)
    return variants


def median_ratio(rows: dict[tuple[str, int], list[Result]], name: str, c: int, base: str = "federation") -> Optional[float]:
    """Median over repetitions of federation throughput / `name` throughput (None if absent)."""
    if (name, c) not in rows or (base, c) not in rows:
        return None
    ratios = [b.rps / r.rps for b, r in zip(rows[(base, c)], rows[(name, c)]) if r.rps]
    return statistics.median(ratios) if ratios else None


def verdicts(
    g4: dict[tuple[str, int], list[Result]],
    g5: dict[tuple[str, int], list[Result]],
    g3: dict[tuple[str, int], list[Result]],
    levels: list[int],
    threads: list[int],
    open_rows: dict[float, dict[tuple[str, int], list[Result]]],
) -> str:
    out = ["### Verdicts", "", "| goal | measured | target | pass |", "|---|---|---|---|"]

    def row(goal: str, value: Optional[float], target: float, higher: bool = True, unit: str = "x") -> None:
        if value is None:
            out.append(f"| {goal} | not measured | {'>=' if higher else '<='} {target}{unit} | — |")
            return
        ok = value >= target if higher else value <= target
        out.append(f"| {goal} | {value:.2f}{unit} | {'>=' if higher else '<='} {target}{unit} | {'PASS' if ok else 'FAIL'} |")

    aio, hx = "aiohttp+pybreaker+cachetools", "httpx+pybreaker+cachetools"
    lo, *high = levels
    for c in high:
        row(f"G4 async vs aiohttp, c={c}", median_ratio(g4, aio, c), 1.5)
        row(f"G4 async vs httpx, c={c}", median_ratio(g4, hx, c), 5.0)
    row(f"G4 async vs aiohttp, c={lo}", median_ratio(g4, aio, lo), 0.8)
    top = levels[-1]
    if ("federation", top) in g4:
        p95 = statistics.median(r.pct(0.95) for r in g4[("federation", top)])
        row(f"G4 async p95 at c={top}, closed loop (ms, median of reps)", p95, 300.0, higher=False, unit="")
    for rate, rows in open_rows.items():
        if ("federation", top) in rows:
            p95 = statistics.median(r.pct(0.95) for r in rows[("federation", top)])
            row(f"G4 async p95 at c={top}, open loop {rate:,.0f}/s (ms, median of reps)", p95, 300.0, higher=False, unit="")
    one, many = threads
    row(f"G5 sync vs requests, c={one}", median_ratio(g5, "requests", one), 5.0)
    row(f"G5 sync vs httpx, c={one}", median_ratio(g5, "httpx", one), 3.0)
    row(f"G5 sync vs requests pool, {many} threads", median_ratio(g5, "requests", many), 5.0)
    # G3: time per hit, so the ratio is the inverse of the throughput ratio. The goal is judged
    # against the cheaper form, `cache[key]`; `cache.get(key)` is shown for reference.
    for form in ("[key]", ".get(key)"):
        tc = median_ratio(g3, f"cachetools.TTLCache{form}", 1)
        row(f"G3-Python sync hit time / TTLCache{form} time", 1 / tc if tc else None, 1.0, higher=False)
    return "\n".join(out)


def table(title: str, rows: dict[tuple[str, int], list[Result]], base: str = "federation", unit: str = "ms", scale: float = 1.0) -> str:
    """Per variant: median throughput, p50/p95/p99 of the middle repetition, and the median of
    per-repetition throughput ratios. `scale` rescales the latency columns (ms by default)."""
    out = [
        f"### {title}",
        "",
        f"| variant | c | ops/s | p50 {unit} | p95 {unit} | p99 {unit} | errors | federation / variant throughput (median of reps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, c), results in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != base, kv[0][0])):
        best = results[len(results) // 2]
        ratios = [b.rps / r.rps for b, r in zip(rows[(base, c)], results) if r.rps]
        ratio = f"{statistics.median(ratios):.2f}x" if ratios and name != base else "—"
        out.append(
            f"| {name} | {c} | {statistics.median(r.rps for r in results):,.0f} | {best.pct(0.5) * scale:.3f} | {best.pct(0.95) * scale:.3f} | {best.pct(0.99) * scale:.3f} | {sum(r.errors for r in results)} | {ratio} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny run that only proves the harness works")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measured repetition")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up per variant and level")
    parser.add_argument("--only", choices=["g3", "g4", "g5"], action="append", help="run only these sections")
    args = parser.parse_args()
    seconds, reps, warmup = (0.3, 1, 0.1) if args.smoke else (args.seconds, args.reps, args.warmup)
    levels = [1, 8] if args.smoke else [1, 64, 1000]
    threads = [1, 4] if args.smoke else [1, 16]
    sections = set(args.only or ["g3", "g4", "g5"])

    sandbox = subprocess.Popen([sys.executable, "-c", SANDBOX], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        world = json.loads(sandbox.stdout.readline())
        config, urls = world["config"], world["urls"]

        async def run_async() -> dict[tuple[str, int], list[Result]]:
            rows: dict[tuple[str, int], list[Result]] = {}
            made = {name: await factory() for name, factory in async_variants(config, urls).items()}
            for c in levels:
                for name, (call, _close) in made.items():  # warm-up
                    await closed_loop(call, c, warmup)
                for _ in range(reps):
                    for name, (call, _close) in made.items():
                        rows.setdefault((name, c), []).append(await closed_loop(call, c, seconds))
            # Latency at the top level, open loop at half the baseline's closed-loop peak (httpx
            # is left out: it cannot sustain that rate, and its backlog would take minutes).
            top, aio = levels[-1], "aiohttp+pybreaker+cachetools"
            if (aio, top) in rows:
                rate = statistics.median(r.rps for r in rows[(aio, top)]) / 2
                open_rows[rate] = {}
                for _ in range(reps):
                    for name, (call, _close) in made.items():
                        if name.startswith("httpx"):
                            continue
                        open_rows[rate].setdefault((name, top), []).append(await open_loop(call, rate, seconds, top))
            for _call, close in made.values():
                done = close()
                if asyncio.iscoroutine(done):
                    await done
            return rows

        closers: list[Callable[[], Any]] = []
        open_rows: dict[float, dict[tuple[str, int], list[Result]]] = {}
        g4: dict[tuple[str, int], list[Result]] = {}
        if "g4" in sections:
            g4 = asyncio.run(run_async())
            print(table("Async (G4; c = concurrent calls, closed loop)", g4), flush=True)
            print()
            for rate, rows in open_rows.items():
                title = f"Async (G4) latency: open loop at {rate:,.0f} calls/s (half of aiohttp's peak), at most c in flight"
                print(table(title, rows), flush=True)
                print()

        g5: dict[tuple[str, int], list[Result]] = {}
        if "g5" in sections:
            variants = sync_variants(config, urls, closers)
            for n in threads:
                for name, call in variants.items():  # warm-up
                    threaded_loop(call, n, warmup)
                for _ in range(reps):
                    for name, call in variants.items():
                        g5.setdefault((name, n), []).append(threaded_loop(call, n, seconds))
            print(table("Sync (G5; c = threads)", g5), flush=True)
            print()

        g3: dict[tuple[str, int], list[Result]] = {}
        if "g3" in sections:
            hits = cache_hit_variants(config, urls, closers)
            for name, call in hits.items():  # warm-up
                batched_loop(call, warmup)
            for _ in range(reps):
                for name, call in hits.items():
                    g3.setdefault((name, 1), []).append(batched_loop(call, seconds))
            title = f"Cache hit (G3-Python; one thread, latency = mean of batches of {BATCH})"
            print(table(title, g3, unit="µs", scale=1e3), flush=True)
            print()

        print(verdicts(g4, g5, g3, levels, threads, open_rows))
        for close in closers:
            close()
    finally:
        if sandbox.stdin:
            sandbox.stdin.close()
        sandbox.wait(timeout=30)
        if sandbox.stdout:
            sandbox.stdout.close()


if __name__ == "__main__":
    main()
