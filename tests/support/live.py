"""The whole app as separate processes (uvicorn API, plus the SAQ worker once one exists),
and small readers of the OpenAPI document, for the quality gates that drive it from outside.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devstack
import httpx

from tests.support.processes import REPO_ROOT, running_api

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
WORKER_MODULE = REPO_ROOT / "app" / "worker.py"
# How long a worker gets to prove it started (SAQ connects to Redis first thing).
WORKER_START_S = 5.0


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str
    operation_id: str | None
    tags: tuple[str, ...]
    spec: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every operation of an OpenAPI document, in document order."""
    found = []
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            spec = item.get(method)
            if isinstance(spec, dict):
                found.append(
                    Operation(
                        method=method.upper(),
                        path=path,
                        operation_id=spec.get("operationId"),
                        tags=tuple(spec.get("tags") or ()),
                        spec=spec,
                    )
                )
    return found


@contextlib.contextmanager
def running_worker(extra_env: Mapping[str, str] | None = None) -> Iterator[None]:
    """`saq app.worker.settings` (the documented worker command) until the block ends."""
    env = {**os.environ, **(extra_env or {})}
    command = [sys.executable, "-m", "saq", "app.worker.settings"]
    process = devstack.spawn(command, env=env, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + WORKER_START_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited at start with code {process.returncode}")
            time.sleep(0.1)
        yield
    finally:
        devstack.stop_process(process, "worker", timeout=10)


@contextlib.contextmanager
def running_stack(extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The API on a free port, with a worker when the app has one; yields the base URL."""
    with contextlib.ExitStack() as stack:
        if WORKER_MODULE.exists():
            stack.enter_context(running_worker(extra_env))
        base_url = stack.enter_context(running_api(extra_env))
        yield base_url


def fetch_document(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/openapi.json", timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def run_logged(
    command: list[str], *, cwd: Path, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool, echoing its output into the test log, and return what it said."""
    print(f"$ {' '.join(command)}", flush=True)
    result = subprocess.run(
        command,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(result.stdout[-20_000:], result.stderr[-20_000:], sep="\n", flush=True)
    return result
