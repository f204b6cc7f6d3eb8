"""Run the real API (uvicorn) as a separate process for tests that need one."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import devstack

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_api(extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`uvicorn app.main:app` on a free port; yields its base URL."""
    port = devstack.free_port()
    env = {**os.environ, **(extra_env or {})}
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    # Its own process group (spawn), so stop_process can signal it and whatever it forked.
    process = devstack.spawn(command, env=env, cwd=REPO_ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        devstack.wait_for_http(f"{base_url}/health", timeout=30, process=process)
        yield base_url
    finally:
        devstack.stop_process(process, "api", timeout=10)
