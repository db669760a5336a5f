"""Memory of a Python client: idle, and with the scale configuration (issue 23).

Measures the resident set (`VmRSS` of /proc/self/status) of fresh Python processes, each
building one client, so the numbers are the binding's and the SDK's, not the registry's: the
two Consul doubles (2 clusters x SERVICES services x INSTANCES instances) run in their own
process. Figures, per measuring process: RSS after `import federation` (before), after the
client is built and every route answered (`wait_ready_sync`) plus 0.5 s of settling (after).

    target/python-venv/bin/python bench/binding_memory.py [--services 1000] [--instances 20]

With `--go`, the same three clients are measured in Go (`federation-go`'s `TestBindingMemory`,
one `go test` process per kind; needs the FFI library that `scripts/ffi-go-test.sh` builds):

    target/python-venv/bin/python bench/binding_memory.py --go

Kinds: `idle` (one service, both clusters: the binding's fixed cost), `scale-lazy` (every
service configured, `discovery.lazy_watches: true`, nothing called), `scale` (every service
configured and watched: every instance known).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

CLUSTERS = ("scale-a", "scale-b")
DEAD_PORT = 9


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def serve_doubles(services: int, instances: int) -> None:
    """Starts the doubles, prints their URLs as one JSON line, serves until stdin closes."""
    from federation.testing import ConsulDouble

    doubles = [ConsulDouble.start(dc) for dc in CLUSTERS]
    for double in doubles:
        for i in range(services):
            for k in range(instances):
                double.register(
                    {"ID": f"svc-{i:04}-{k:02}", "Name": f"svc-{i:04}", "Address": "127.0.0.1", "Port": DEAD_PORT}
                )
    print(json.dumps([d.url for d in doubles]), flush=True)
    sys.stdin.read()
    for double in doubles:
        double.shutdown()


def config(urls: list[str], services: int, lazy: bool) -> dict[str, Any]:
    return {
        "clusters": {
            dc: {"consul": {"address": url, "datacenter": dc, "wait": "5s"}} for dc, url in zip(CLUSTERS, urls)
        },
        "services": {
            f"svc-{i:04}": {"prefer": CLUSTERS[0], "names": {dc: f"svc-{i:04}" for dc in CLUSTERS}}
            for i in range(services)
        },
        "discovery": {"lazy_watches": lazy},
    }


def measure(kind: str, urls: list[str], services: int) -> None:
    """Builds one client of `kind` and prints {before, after} RSS in KiB as one JSON line."""
    import federation

    before = rss_kib()
    count = 1 if kind == "idle" else services
    client = federation.FederatedServiceClient.from_dict(config(urls, count, lazy=kind == "scale-lazy"))
    if kind != "scale-lazy":
        client.wait_ready_sync(timeout=60.0)
    time.sleep(0.5)
    print(json.dumps({"before": before, "after": rss_kib()}), flush=True)
    client.close()


def measure_python(me: list[str], kind: str, urls: str) -> dict[str, int]:
    out = subprocess.run([*me, "--role", kind, "--urls", urls], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the {kind} client failed:\n{out.stderr}")
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure_go(kind: str, urls: str, services: int) -> dict[str, int]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def digest(path: str) -> str:
        with open(os.path.join(root, path), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]

    # As scripts/ffi-go-test.sh: the sums make cgo relink when the library changed.
    sums = f"-DFEDERATION_HEADER_SUM={digest('federation-ffi/include/federation.h')} " + (
        f"-DFEDERATION_LIB_SUM={digest('target/debug/libfederation.a')}"
    )
    env = dict(
        os.environ,
        FEDERATION_MEMORY_KIND=kind,
        FEDERATION_MEMORY_URLS=" ".join(json.loads(urls)),
        FEDERATION_MEMORY_SERVICES=str(services),
        CGO_ENABLED="1",
        CGO_CFLAGS=f"-O2 -g {sums}",
        GOFLAGS="-tags=federation_dev",
    )
    out = subprocess.run(
        ["go", "test", "-count=1", "-v", "-run", "^TestBindingMemory$", "."],
        cwd=os.path.join(root, "federation-go"),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("binding-memory "))
    before, after = (int(v) for v in line.split()[1:3])
    return {"before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--role", choices=["main", "doubles", "idle", "scale-lazy", "scale"], default="main")
    parser.add_argument("--urls", default="[]")
    parser.add_argument("--go", action="store_true", help="measure the Go binding instead of Python")
    args = parser.parse_args()
    if args.role == "doubles":
        serve_doubles(args.services, args.instances)
        return
    if args.role != "main":
        measure(args.role, json.loads(args.urls), args.services)
        return
    me = [sys.executable, __file__, "--services", str(args.services), "--instances", str(args.instances)]
    doubles = subprocess.Popen([*me, "--role", "doubles"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert doubles.stdout is not None
        urls = doubles.stdout.readline().strip()
        if not urls:
            raise RuntimeError("the doubles' process did not start")
        known = len(CLUSTERS) * args.services * args.instances
        print(f"{len(CLUSTERS)} clusters x {args.services} services x {args.instances} instances ({known} known)")
        print("| client | RSS after import | growth (client built, routes answered) |\n|---|---|---|")
        growth = {}
        for kind in ("idle", "scale-lazy", "scale"):
            r = measure_go(kind, urls, args.services) if args.go else measure_python(me, kind, urls)
            growth[kind] = r["after"] - r["before"]
            print(f"| {kind} | {r['before'] / 1024:.1f} MiB | {growth[kind] / 1024:.1f} MiB |")
        per = (growth["scale"] - growth["scale-lazy"]) * 1024 / known
        print(f"\nper known instance ((scale - scale-lazy) / {known}): {per:.0f} B")
    finally:
        if doubles.stdin is not None:
            doubles.stdin.close()
        try:
            doubles.wait(timeout=30)
        except subprocess.TimeoutExpired:
            doubles.kill()  # by its own pid: this script started it
            doubles.wait()


if __name__ == "__main__":
    main()
