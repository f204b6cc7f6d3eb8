"""Shared pieces for the jobs tests: a real SAQ worker and a second API process."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import (
    WorkerProcess,
    forget_saq_queue,
    running_api,
    running_worker,
)

# The session's worker sweeps often, so tests about dead workers finish quickly.
FAST_SWEEP_ENV = {"JOB_SWEEP_INTERVAL_SECONDS": "1", "WORKER_LIVENESS_TTL_SECONDS": "3"}


@pytest.fixture(scope="session")
def worker() -> Iterator[WorkerProcess]:
    """One real `saq app.worker.settings` on the session's queue."""
    with running_worker(FAST_SWEEP_ENV) as process:
        yield process


@pytest.fixture(scope="session")
def idle_client() -> Iterator[TestClient[Litestar]]:
    """The app on a queue no worker serves: its jobs stay queued."""
    from app.config import load_settings  # after the session set the environment
    from app.main import create_app

    settings = load_settings().model_copy(update={"saq_queue": f"idle-{uuid.uuid4().hex[:12]}"})
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    forget_saq_queue(os.environ["REDIS_URL"], settings.saq_queue)


@pytest.fixture(scope="session")
def api_process() -> Iterator[str]:
    """A second API (real uvicorn) beside the in-process `client`: its base URL."""
    with running_api() as base_url:
        yield base_url


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://", 1) + path


def open_socket(base_url: str, path: str) -> ClientConnection:
    return connect(ws_url(base_url, path), open_timeout=10, close_timeout=5)


def receive_all(socket: ClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    """Every message until the server closes the socket."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for raw in socket:
        messages.append(msgspec.json.decode(raw))
        assert time.monotonic() < deadline, "the socket stayed open too long"
    return messages


def close_code(socket: ClientConnection) -> int | None:
    """The code the server closed with (it must send nothing before closing)."""
    with pytest.raises(ConnectionClosed):
        socket.recv(timeout=10)
    return socket.close_code


def wait_for_job(
    client: TestClient[Litestar],
    headers: dict[str, str],
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 20,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job never reached the expected state: {job}"
        time.sleep(0.05)


def finished(job: dict[str, Any]) -> bool:
    return job["status"] in {"complete", "failed", "aborted"}


def start_job(
    client: TestClient[Litestar], headers: dict[str, str], kind: str = "demo", **params: Any
) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={"kind": kind, "params": params}, headers=headers)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job
