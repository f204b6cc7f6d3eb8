"""Shared pieces for the jobs tests: a real SAQ worker and a second API process."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from saq import Job as SaqJob
from saq.queue.redis import RedisQueue
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.processes import (
    PrivateRedis,
    WorkerProcess,
    forget_saq_queue,
    private_redis,
    running_api,
    running_worker,
)

# The session's worker sweeps often, so tests about dead workers finish quickly.
FAST_SWEEP_ENV = {
    "JOB_SWEEP_INTERVAL_SECONDS": "1",
    "WORKER_LIVENESS_TTL_SECONDS": "3",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
}


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


@dataclasses.dataclass
class PrivateStack:
    redis: PrivateRedis
    queue: str
    client: TestClient[Litestar]

    @property
    def worker_env(self) -> dict[str, str]:
        return {"REDIS_URL": self.redis.url, "SAQ_QUEUE": self.queue, **FAST_SWEEP_ENV}

    def saq_job(self, job_id: str) -> SaqJob:
        """SAQ's copy of a job, read through SAQ's own queue API."""

        async def read() -> SaqJob | None:
            queue = RedisQueue.from_url(self.redis.url, name=self.queue)
            try:
                return await queue.job(job_id)
            finally:
                await queue.disconnect()

        job = asyncio.run(read())
        assert job is not None
        return job


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PrivateStack]:
    """A private Redis, and the app (in-process) using it with a queue of its own."""
    from app.config import load_settings
    from app.main import create_app

    with private_redis(tmp_path) as server:
        queue = f"faults-{uuid.uuid4().hex[:12]}"
        settings = load_settings().model_copy(update={"redis_url": server.url, "saq_queue": queue})
        with TestClient(create_app(settings)) as client:
            yield PrivateStack(server, queue, client)
