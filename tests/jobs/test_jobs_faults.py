"""Faults, each on a private redis-server the test starts (never the machine's shared one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from litestar.exceptions import WebSocketDisconnect

from tests.jobs.conftest import PrivateStack, finished, start_job, wait_for_job
from tests.support.processes import running_worker

Auth = Callable[[str], dict[str, str]]
Token = Callable[[str], str]


def test_redis_down_makes_post_503_within_2s_while_the_rest_works(
    stack: PrivateStack, auth: Auth, token: Token
) -> None:
    client, headers = stack.client, auth("alice")
    existing = start_job(client, headers, steps=1, delay_ms=0)
    count_before = client.get("/v1/jobs", headers=headers).json()["total"]

    stack.redis.stop()
    for attempt in range(2):  # a broken pooled connection first, then no connection at all
        started = time.monotonic()
        response = client.post("/v1/jobs", json={"kind": "demo"}, headers=headers)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (attempt, response.text)
        assert elapsed < 2, f"attempt {attempt} took {elapsed:.2f} s"
        assert response.json()["detail"] == (
            "Service temporarily unavailable: Redis is not answering"
        )
        assert response.headers["Retry-After"]

    # Everything that does not need Redis keeps working.
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert client.get("/v1/children", headers=headers).status_code == 200
    assert client.get("/v1/projects", headers=headers).status_code == 200
    job = client.get(f"/v1/jobs/{existing['job_id']}", headers=headers)
    assert job.status_code == 200
    assert job.json()["status"] == "queued"
    # The refused jobs left no record behind.
    assert client.get("/v1/jobs", headers=headers).json()["total"] == count_before
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    # A progress socket cannot subscribe: it says so (1013, try again later).
    with (
        client.websocket_connect(f"/ws/jobs/{existing['job_id']}?token={token('alice')}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text(timeout=10)
    assert closed.value.code == 1013

    # Redis is back: jobs can be started again, without restarting the API.
    stack.redis.start()
    deadline = time.monotonic() + 10
    while client.post("/v1/jobs", json={"kind": "demo"}, headers=headers).status_code != 202:
        assert time.monotonic() < deadline, "POST /v1/jobs never recovered"
        time.sleep(0.2)


def test_a_worker_killed_mid_job_leaves_it_failed_not_active(
    stack: PrivateStack, auth: Auth
) -> None:
    client, headers = stack.client, auth("alice")
    with running_worker(stack.worker_env) as doomed:
        job_id = start_job(client, headers, steps=50, delay_ms=200)["job_id"]
        wait_for_job(client, headers, job_id, lambda job: job["step"] >= 2)
        doomed.kill()
    assert client.get(f"/v1/jobs/{job_id}", headers=headers).json()["status"] == "active"

    with running_worker(stack.worker_env):
        job = wait_for_job(client, headers, job_id, finished, timeout=30)
    assert job["status"] == "failed"
    assert job["error"] == "The worker running this job stopped unexpectedly"
    assert stack.saq_job(job_id).status == "failed"


def test_a_job_that_raises_fails_with_a_safe_error(stack: PrivateStack, auth: Auth) -> None:
    client, headers = stack.client, auth("bob")
    with running_worker(stack.worker_env):
        job_id = start_job(client, headers, steps=3, delay_ms=0, fail_at_step=1)["job_id"]
        job = wait_for_job(client, headers, job_id, finished)
    assert job["status"] == "failed"
    assert job["error"] == "The job failed unexpectedly"
    assert "internal detail" not in json.dumps(job)
    # SAQ keeps the traceback for operators; clients never see it.
    assert "internal detail" in str(stack.saq_job(job_id).error)


def test_a_frozen_redis_is_reported_by_the_worker_which_then_recovers(
    stack: PrivateStack, auth: Auth, tmp_path: Path
) -> None:
    """Issue: without socket timeouts a hung Redis blocked the worker silently."""
    client, headers = stack.client, auth("bob")
    log_path = tmp_path / "worker.log"
    with running_worker(stack.worker_env, log_path=log_path):
        stack.redis.freeze()
        try:
            deadline = time.monotonic() + 25  # socket timeout (10 s) plus a liveness tick
            while "Redis is not answering" not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        finally:
            stack.redis.thaw()
        job_id = start_job(client, headers, steps=2, delay_ms=0)["job_id"]
        job = wait_for_job(client, headers, job_id, finished, timeout=30)
    assert job["status"] == "complete"
    assert "Redis answers again" in log_path.read_text()
