"""The whole app as separate processes (uvicorn API, plus the SAQ worker once one exists),
and small readers of the OpenAPI document, for the quality gates that drive it from outside.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devstack
import httpx

from tests.support.processes import REPO_ROOT, running_api

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
WORKER_MODULE = REPO_ROOT / "app" / "worker.py"


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
def running_stack(extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The API on a free port, with a worker when the app has one; yields the base URL.

    The worker (`saq app.worker.settings`, the documented command) starts while the API
    does, and must still be running once the API answers.
    """
    env = {**os.environ, **(extra_env or {})}
    worker = None
    if WORKER_MODULE.exists():
        command = [sys.executable, "-m", "saq", "app.worker.settings"]
        worker = devstack.spawn(command, env=env, cwd=REPO_ROOT)
    try:
        with running_api(extra_env) as base_url:
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the worker exited at start with code {worker.returncode}")
            yield base_url
    finally:
        if worker is not None:
            devstack.stop_process(worker, "worker", timeout=10)


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
