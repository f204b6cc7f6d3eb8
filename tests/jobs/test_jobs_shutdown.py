"""Workers that stop, crash or get replaced, as real `saq app.worker.settings` processes.

Each test has a private Redis and a queue of its own (the `stack` fixture), so stopping
or killing workers never touches the shared ones.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import WebSocketTestSession
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.auth import Principal
from app.jobs.plugin import SAQ_STOP_WAIT_S
from app.jobs.queue import WorkerQueue
from app.jobs.registry import KINDS
from app.jobs.repository import JobRepository
from app.jobs.service import saq_job_for
from app.jobs.sweep import RETRY_PENDING, WORKER_LOST
from tests.jobs.conftest import PrivateStack, finished, start_job, wait_for_job
from tests.support.processes import SAQ_WORKER, running_worker

Auth = Callable[[str], dict[str, str]]
Token = Callable[[str], str]

BACKLOG_OWNER = Principal(
    sub="backlog-owner",
    username=None,
    email=None,
    name=None,
    realm_roles=frozenset(),
    client_roles={},
    tenant_id=None,
    expires_at=0,
)


def _queue_backlog(stack: PrivateStack, count: int) -> None:
    """`count` long demo jobs on the stack's queue (records and SAQ jobs), in one go."""
    demo = KINDS["demo"]
    params = demo.params_type(steps=100, delay_ms=10_000)

    async def run() -> None:
        engine = create_async_engine(os.environ["DATABASE_URL"])
        queue = WorkerQueue(Redis.from_url(stack.redis.url), name=stack.queue)
        try:
            ids = [uuid.uuid4() for _ in range(count)]
            async with async_sessionmaker(engine)() as session:
                repository = JobRepository(session)
                for job_id in ids:
                    await repository.add(
                        job_id=job_id,
                        owner_sub=BACKLOG_OWNER.sub,
                        kind="demo",
                        queue=stack.queue,
                        params={"steps": 100, "delay_ms": 10_000},
                        total_steps=100,
                        message="Waiting for a worker",
                    )
                await session.commit()
            for job_id in ids:
                await queue.enqueue(saq_job_for(demo, params, job_id, BACKLOG_OWNER))
        finally:
            await queue.disconnect()
            await engine.dispose()

    asyncio.run(run())


def _messages_until_close(
    socket: WebSocketTestSession, timeout: float
) -> tuple[list[dict[str, Any]], int]:
    """Every message the socket still sends, and its close code."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"the socket stayed open; got {messages}"
        try:
            messages.append(socket.receive_json(timeout=deadline - time.monotonic()))
        except WebSocketDisconnect as closed:
            return messages, closed.code


def test_a_dead_workers_job_fails_within_ttl_and_sweep_behind_1000_queued_jobs(
    stack: PrivateStack, auth: Auth, token: Token
) -> None:
    """Issue: with 500+ jobs queued, a dead worker's job stayed `active` for good."""
    client, headers = stack.client, auth("carol")
    one_slot = {**stack.worker_env, "WORKER_CONCURRENCY": "1"}
    with running_worker(one_slot) as doomed:
        # Long enough to outlast queueing the backlog on a busy machine.
        job_id = start_job(client, headers, steps=100, delay_ms=1000)["job_id"]
        path = f"/ws/jobs/{job_id}?token={token('carol')}"
        with client.websocket_connect(path) as socket:
            while socket.receive_json(timeout=20)["step"] < 1:
                continue
            _queue_backlog(stack, 1000)
            with running_worker(one_slot):  # busy with the backlog from its first second
                running = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
                assert running["status"] == "active", running
                doomed.kill()
                killed_at = time.monotonic()
                job = wait_for_job(client, headers, job_id, finished, timeout=30)
                took = time.monotonic() - killed_at
                messages, code = _messages_until_close(socket, timeout=10)
    ttl = int(stack.worker_env["WORKER_LIVENESS_TTL_SECONDS"])
    interval = int(stack.worker_env["JOB_SWEEP_INTERVAL_SECONDS"])
    assert (job["status"], job["error"]) == ("failed", WORKER_LOST)
    # TTL + interval is the design bound; the rest is slack for a loaded test machine.
    assert took < ttl + interval + 5, f"the sweep took {took:.1f} s"
    assert messages[-1]["status"] == "failed"
    assert code == 1000
    queued = client.get("/v1/jobs?status=queued", headers=headers).json()["total"]
    assert queued == 0  # carol's; the backlog belongs to someone else and stays queued


def test_sigterm_hands_a_long_job_back_and_the_next_worker_completes_it(
    stack: PrivateStack, auth: Auth, token: Token
) -> None:
    client, headers = stack.client, auth("bob")
    short_grace = {**stack.worker_env, "WORKER_SHUTDOWN_GRACE_SECONDS": "1"}
    with running_worker(short_grace) as old:
        job_id = start_job(client, headers, steps=10, delay_ms=600)["job_id"]
        socket_path = f"/ws/jobs/{job_id}?token={token('bob')}"
        with client.websocket_connect(socket_path) as socket:
            wait_for_job(client, headers, job_id, lambda job: job["step"] >= 2)
            stopped_at = time.monotonic()
            old.terminate()
            assert old.wait(timeout=15) == 0
            stop_took = time.monotonic() - stopped_at
            handed_back = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            with running_worker(stack.worker_env):
                job = wait_for_job(client, headers, job_id, finished, timeout=30)
                messages, code = _messages_until_close(socket, timeout=10)
    # The 1 s drain, SAQ's wait for its slots, the hand-back; slack for a loaded machine.
    assert stop_took < 1 + SAQ_STOP_WAIT_S + 5, f"the worker took {stop_took:.1f} s to stop"
    assert (handed_back["status"], handed_back["error"]) == ("queued", None)
    assert job["status"] == "complete"
    assert (job["progress"], job["step"], job["result"]["steps"]) == (100, 10, 10)
    statuses = [message["status"] for message in messages]
    assert "failed" not in statuses
    assert statuses[-1] == "complete"
    assert code == 1000
    # The new run started over: its steps count up from 1 again after the hand-back.
    payloads = [message["payload"]["message"] for message in messages]
    assert RETRY_PENDING in payloads
    assert "Started again (attempt 2)" in payloads
    assert stack.saq_job(job_id).status == "complete"


LITESTAR_WORKER = ("-m", "litestar", "--app", "app.main:app", "workers", "run")


@pytest.mark.parametrize("command", [SAQ_WORKER, LITESTAR_WORKER], ids=["saq", "litestar"])
def test_a_job_that_fits_in_the_grace_period_completes_on_the_stopping_worker(
    stack: PrivateStack, auth: Auth, command: tuple[str, ...]
) -> None:
    client, headers = stack.client, auth("bob")
    long_grace = {**stack.worker_env, "WORKER_SHUTDOWN_GRACE_SECONDS": "20"}
    with running_worker(long_grace, command=command) as old:
        job_id = start_job(client, headers, steps=6, delay_ms=500)["job_id"]
        wait_for_job(client, headers, job_id, lambda job: job["step"] >= 1)
        old.terminate()
        time.sleep(0.5)
        later_id = start_job(client, headers, steps=1, delay_ms=0)["job_id"]
        assert old.wait(timeout=20) == 0
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        later = client.get(f"/v1/jobs/{later_id}", headers=headers).json()
    assert job["status"] == "complete"
    assert stack.saq_job(job_id).attempts == 1  # finished where it started
    # A stopping worker takes no new job: the later one waits for the next worker.
    assert later["status"] == "queued"
    assert stack.saq_job(later_id).attempts == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_worker_stops_at_once_and_quietly(
    stack: PrivateStack, tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C (SIGINT to the group) or SIGTERM: exit 0 within seconds, no warning line."""
    log_path = tmp_path / "worker.log"
    with running_worker(stack.worker_env, log_path=log_path) as worker:
        time.sleep(1.5)  # SAQ's upkeep timers are mid-sleep, as in any real stop
        started = time.monotonic()
        os.killpg(worker.process.pid, signum)
        assert worker.wait(timeout=10) == 0
        took = time.monotonic() - started
    output = log_path.read_text()
    assert took < 3, f"stopping took {took:.1f} s"
    noisy = [
        line
        for line in output.splitlines()
        if "warning" in line.lower() or "error" in line.lower() or "Traceback" in line
    ]
    assert noisy == [], output
