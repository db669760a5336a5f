#!/usr/bin/env python3
"""Python SDK vs what a Python team would assemble (BENCHMARKS.md G4 and G5).

Async (G4): `federation` vs aiohttp and httpx.AsyncClient, each with pybreaker + cachetools, at
concurrency 1, 64 and 1000 (closed loop). Sync (G5): `get_sync` vs requests.Session and
httpx.Client at c = 1 and with 16 threads. All variants call the same three zervigo
`user-service` instances of a sandbox running in a separate process (so its servers do not
share this interpreter's CPU budget); baselines round-robin over them. Variants are interleaved
(A B C A B C ...) and the ratios are medians of per-repetition ratios.

    pip install ./federation-py aiohttp httpx requests pybreaker cachetools   # release build!
    python benchmarks/python_bench.py                 # full run (minutes)
    python benchmarks/python_bench.py --smoke         # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
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


def sync_variants(config: dict[str, Any], urls: list[str]) -> dict[str, Callable[[], Any]]:
    rr = itertools.cycle(urls)
    client = federation.FederatedServiceClient.from_dict(config)
    client.wait_ready_sync()
    variants: dict[str, Callable[[], Any]] = {"federation": lambda: client.get_sync("user", "/api/v1/users/1")}
    requests = optional("requests")
    if requests:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=64)
        session.mount("http://", adapter)
        variants["requests"] = lambda: session.get(f"{next(rr)}/api/v1/users/1").content
    httpx = optional("httpx")
    if httpx:
        hclient = httpx.Client()
        variants["httpx"] = lambda: hclient.get(f"{next(rr)}/api/v1/users/1").content
    return variants


def table(title: str, rows: dict[tuple[str, int], list[Result]], base: str = "federation") -> str:
    out = [f"### {title}", "", "| variant | c | req/s | p50 ms | p95 ms | p99 ms | errors | federation / variant (median) |", "|---|---|---|---|---|---|---|---|"]
    for (name, c), results in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != base, kv[0][0])):
        best = results[len(results) // 2]
        ratios = [b.rps / r.rps for b, r in zip(rows[(base, c)], results) if r.rps]
        ratio = f"{statistics.median(ratios):.2f}x" if ratios and name != base else "—"
        out.append(
            f"| {name} | {c} | {statistics.median(r.rps for r in results):,.0f} | {best.pct(0.5):.2f} | {best.pct(0.95):.2f} | {best.pct(0.99):.2f} | {sum(r.errors for r in results)} | {ratio} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny run that only proves the harness works")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    seconds, reps = (0.3, 1) if args.smoke else (args.seconds, args.reps)
    levels = [1, 8] if args.smoke else [1, 64, 1000]

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
                    await closed_loop(call, c, min(seconds, 0.5))
                for _ in range(reps):
                    for name, (call, _close) in made.items():
                        rows.setdefault((name, c), []).append(await closed_loop(call, c, seconds))
            for _call, close in made.values():
                done = close()
                if asyncio.iscoroutine(done):
                    await done
            return rows

        print(table("Async (G4)", asyncio.run(run_async())))
        print()
        rows: dict[tuple[str, int], list[Result]] = {}
        variants = sync_variants(config, urls)
        for threads in [1, 16] if not args.smoke else [1, 4]:
            for _ in range(reps):
                for name, call in variants.items():
                    rows.setdefault((name, threads), []).append(threaded_loop(call, threads, seconds))
        print(table("Sync (G5; c = threads)", rows))
    finally:
        if sandbox.stdin:
            sandbox.stdin.close()
        sandbox.wait(timeout=30)
        if sandbox.stdout:
            sandbox.stdout.close()


if __name__ == "__main__":
    main()
