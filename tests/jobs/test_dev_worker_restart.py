"""`scripts/dev` starts a crashed worker again instead of stopping the whole stack."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
import uuid

import redis
from devstack import RestartingChild

from tests.jobs.conftest import FAST_SWEEP_ENV
from tests.support.processes import SAQ_WORKER, forget_saq_queue


def _alive_workers(client: redis.Redis, queue: str) -> set[bytes]:
    return set(client.scan_iter(match=f"jobs:alive:{queue}:*"))


def test_a_killed_worker_is_started_again_with_backoff() -> None:
    queue = f"dev-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, **FAST_SWEEP_ENV, "SAQ_QUEUE": queue}
    client = redis.Redis.from_url(env["REDIS_URL"])
    worker = RestartingChild("worker", [sys.executable, *SAQ_WORKER], env=env)
    try:
        worker.start()
        deadline = time.monotonic() + 30
        while not _alive_workers(client, queue):
            assert time.monotonic() < deadline, "the worker never came up"
            worker.check()
            time.sleep(0.1)
        first = worker.process
        assert first is not None
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no shutdown hook runs
        first.wait()

        deadline = time.monotonic() + 30
        while worker.restarts == 0:
            assert time.monotonic() < deadline, "the worker was not started again"
            worker.check()
            time.sleep(0.1)
        assert worker.process is not None
        assert worker.process.pid != first.pid
        assert worker.process.poll() is None
    finally:
        worker.stop()
        client.close()
        forget_saq_queue(env["REDIS_URL"], queue)


def test_a_child_that_keeps_dying_is_restarted_ever_more_slowly() -> None:
    child = RestartingChild("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    child.start()
    started_at: list[float] = []
    deadline = time.monotonic() + 15
    while child.restarts < 3:
        assert time.monotonic() < deadline
        before = child.restarts
        child.check()
        if child.restarts > before:
            started_at.append(time.monotonic())
        time.sleep(0.05)
    child.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(started_at)]
    assert 1.5 < gaps[0] < 3  # 2 s after the second death
    assert 3.5 < gaps[1] < 5.5  # then 4 s
