"""The GIL is released during blocking calls; a client cannot be used across fork()."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable

from conftest import static_config

import federation
from federation.testing import ServiceInstance

LATENCY = 0.3


def test_sync_calls_from_eight_threads_overlap(instances: Callable[..., list[ServiceInstance]]) -> None:
    (instance,) = instances(1)
    instance.set_behavior(latency=LATENCY)
    client = federation.FederatedServiceClient.from_dict(static_config({"local": [instance]}))
    client.get_sync("svc", "/warm")  # connection pool and discovery warm

    started = time.monotonic()
    client.get_sync("svc", "/one")
    single = time.monotonic() - started

    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_sync("svc", "/parallel")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    assert errors == []
    # Serialized on the GIL this would take 8 x single; allow a lot of scheduling noise.
    assert wall < 4 * single, f"8 parallel calls took {wall:.2f}s, one call {single:.2f}s"


def test_client_from_before_fork_fails_clearly_in_the_child(
    instances: Callable[..., list[ServiceInstance]],
) -> None:
    (instance,) = instances(1)
    script = textwrap.dedent(
        f"""
        import os, sys, warnings
        warnings.simplefilter("ignore")  # fork() of a threaded process warns on 3.12+
        import federation
        config = {static_config({"local": [instance]})!r}
        client = federation.FederatedServiceClient.from_dict(config)
        assert client.get_sync("svc", "/parent").status == 200
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                client.get_sync("svc", "/child")
                code = 3
            except RuntimeError as e:
                if "fork" not in str(e):
                    code = 4
            fresh = federation.FederatedServiceClient.from_dict(config)
            if fresh.get_sync("svc", "/child-fresh").status != 200:
                code = 5
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
