"""Fair jobs (issue 19, finding 4): one caller never holds more than its share of a
worker's slots, so a flood of long jobs cannot starve another caller's short one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import devstack
from litestar import Litestar
from litestar.testing import TestClient

from app.jobs.shares import LEASE_MARGIN_S, ActiveShares
from tests.jobs.conftest import PrivateStack, finished, start_job, wait_for_job
from tests.support.family import new_parent
from tests.support.processes import running_worker

# Two workers of 3 slots, one slot per caller each: a flood of 8 long jobs used to
# take all 6 slots for 100 s.
FAIR_WORKER = {"WORKER_CONCURRENCY": "3", "MAX_ACTIVE_JOBS_PER_USER": "1"}


def _jobs(client: TestClient[Litestar], headers: dict[str, str], status: str) -> list[str]:
    page = client.get("/v1/jobs", params={"status": status, "limit": 100}, headers=headers)
    return [job["job_id"] for job in page.json()["items"]]


def _wait_until(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what()
        time.sleep(0.1)


def _statuses(client: TestClient[Litestar], headers: dict[str, str]) -> str:
    page = client.get("/v1/jobs", params={"limit": 100}, headers=headers).json()
    return " ".join(f"{job['status']}:{job['step']}" for job in page["items"])


def _abort_all(client: TestClient[Litestar], headers: dict[str, str], ids: list[str]) -> None:
    for job_id in ids:
        client.delete(f"/v1/jobs/{job_id}", headers=headers)


def test_a_flood_of_long_jobs_leaves_slots_for_another_caller(
    stack: PrivateStack, issuer: devstack.IssuerInfo
) -> None:
    # Callers of their own: the counts below are of every job they have.
    client, flooder, other = stack.client, new_parent(issuer), new_parent(issuer)
    env = {**stack.worker_env, **FAIR_WORKER}
    with running_worker(env), running_worker(env) as second:
        flood = [start_job(client, flooder, steps=100, delay_ms=1000)["job_id"] for _ in range(8)]
        try:
            _wait_until(
                lambda: len(_jobs(client, flooder, "active")) >= 2,
                15,
                lambda: f"the flood did not start: {_statuses(client, flooder)}",
            )
            started = time.monotonic()
            short = start_job(client, other, steps=1, delay_ms=0)["job_id"]
            done = wait_for_job(client, other, short, finished, timeout=10)
            assert done["status"] == "complete"
            assert time.monotonic() - started < 10
            # The rest of the flood waits, queued: not failed, not started.
            assert len(_jobs(client, flooder, "active")) == 2
            assert len(_jobs(client, flooder, "queued")) == 6
            assert stack.saq_job(_jobs(client, flooder, "queued")[0]).attempts == 0

            # A worker killed while it holds the caller's share takes the share with it:
            # the next worker runs the caller's waiting jobs.
            second.kill()
            with running_worker(env):
                _wait_until(
                    lambda: (
                        len(_jobs(client, flooder, "failed")) == 1
                        and len(_jobs(client, flooder, "active")) == 2
                    ),
                    45,
                    lambda: (
                        "the caller's share was not given back after its worker died: "
                        + _statuses(client, flooder)
                    ),
                )
        finally:
            _abort_all(client, flooder, flood)


def test_a_caller_alone_runs_one_job_after_another_without_waiting_for_a_tick(
    stack: PrivateStack, issuer: devstack.IssuerInfo
) -> None:
    client, headers = stack.client, new_parent(issuer)
    with running_worker({**stack.worker_env, **FAIR_WORKER}):
        started = time.monotonic()
        jobs = [start_job(client, headers, steps=1, delay_ms=0)["job_id"] for _ in range(8)]
        most_active = 0
        while len(_jobs(client, headers, "complete")) < len(jobs):
            assert time.monotonic() - started < 30, _statuses(client, headers)
            most_active = max(most_active, len(_jobs(client, headers, "active")))
        took = time.monotonic() - started
    # One at a time (polling may miss a job that short), and never failed for waiting.
    assert most_active <= 1
    assert _jobs(client, headers, "failed") == []
    # Each next job started as the one before ended, not at the next once-a-second
    # look at the jobs put back (which would take at least 7 s for 8 jobs).
    assert took < 4, took


def test_shares_count_per_caller_and_come_back() -> None:
    shares = ActiveShares(limit=2)
    assert shares.take("a", "job-1", 60)
    assert shares.take("a", "job-2", 60)
    assert not shares.take("a", "job-3", 60)
    assert shares.take("b", "job-4", 60)  # another caller is not affected
    assert shares.release("job-1") == "a"
    assert shares.release("job-1") is None  # twice, or a key never taken here: nothing
    assert shares.release("unknown") is None
    assert shares.active("a") == 1
    assert shares.take("a", "job-3", 60)
    assert not shares.take("a", "job-5", 60)


def test_a_lease_lost_by_a_run_expires_after_its_time_limit(monkeypatch: Any) -> None:
    shares = ActiveShares(limit=1)
    assert shares.take("a", "lost", 10)
    assert not shares.take("a", "next", 10)
    later = time.monotonic() + 10 + LEASE_MARGIN_S + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert shares.take("a", "next", 10)
    assert shares.active("a") == 1
