"""The sweep, the outcome hook and the cron jobs, called directly on the real database/Redis."""

from __future__ import annotations

import dataclasses
import datetime
import os
import uuid
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from redis.asyncio import Redis
from saq import Job as SaqJob
from saq.job import Status
from saq.queue.redis import RedisQueue
from saq.types import Context
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.auth import Principal
from app.config import load_settings
from app.jobs import runtime, sweep, tasks
from app.jobs.queue import WorkerQueue
from app.jobs.registry import KINDS
from app.jobs.repository import JobRepository
from app.jobs.service import saq_job_for
from app.jobs.sweep import Sweeper

Auth = Callable[[str], dict[str, str]]
OWNER = Principal(
    sub="cron-test-owner",
    username=None,
    email=None,
    name=None,
    realm_roles=frozenset(),
    client_roles={},
    tenant_id=None,
    expires_at=0,
)


@dataclasses.dataclass
class Harness:
    ctx: Context
    queue: RedisQueue
    resources: runtime.WorkerResources

    @property
    def sweeper(self) -> Sweeper:
        return Sweeper(self.resources, self.queue)

    async def add_job(
        self, kind: str = "demo", *, status: str = "queued", enqueue: bool = True
    ) -> uuid.UUID:
        job_kind = KINDS[kind]
        params = job_kind.params_type()
        job_id = uuid.uuid4()
        async with self.resources.sessions() as session:
            repository = JobRepository(session)
            await repository.add(
                job_id=job_id,
                owner_sub=OWNER.sub,
                kind=kind,
                queue=self.queue.name,
                params=msgspec.to_builtins(params),
                total_steps=job_kind.total_steps(params),
                message="Waiting for a worker",
            )
            if status != "queued":
                await repository.transition(job_id, from_statuses=("queued",), status=status)
            await session.commit()
        if enqueue:
            await self.queue.enqueue(saq_job_for(job_kind, params, job_id, OWNER))
        return job_id

    async def run_on(self, job_id: uuid.UUID, worker_id: str) -> SaqJob:
        """What a worker does on dequeue: the SAQ job becomes active, owned by it."""
        job = await self.queue.dequeue(timeout=2)
        assert job is not None
        assert job.key == str(job_id)
        job.worker_id = worker_id
        job.attempts += 1
        job.started = job.touched = int(datetime.datetime.now().timestamp() * 1000)
        await job.update(status=Status.ACTIVE)
        return job

    async def record(self, db: asyncpg.Connection, job_id: uuid.UUID) -> asyncpg.Record:
        row = await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        assert row is not None
        return row


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A worker's resources and context on a queue of the test's own."""
    settings = load_settings().model_copy(update={"job_state_ttl_s": 86_400})
    redis = Redis.from_url(os.environ["REDIS_URL"])
    queue = RedisQueue(redis, name=f"cron-{uuid.uuid4().hex[:12]}")
    engine = runtime.create_worker_engine(settings)
    resources = runtime.WorkerResources(
        settings=settings,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        redis=redis,
        worker_id="the-sweeper",
        queue_name=queue.name,
    )
    ctx = cast("Context", {"worker": SimpleNamespace(queue=queue), "resources": resources})
    yield Harness(ctx, queue, resources)
    await engine.dispose()
    keys = [
        key
        for pattern in (f"saq:*{queue.name}*", f"jobs:*{queue.name}*")
        async for key in redis.scan_iter(match=pattern)
    ]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_sweep_fails_the_active_job_of_a_dead_worker(
    harness: Harness, db: asyncpg.Connection
) -> None:
    job_id = await harness.add_job("demo", status="active")
    await harness.run_on(job_id, worker_id="crashed-worker")  # no liveness key: it died

    assert (await harness.sweeper.sweep()).changed >= 1

    row = await harness.record(db, job_id)
    assert row["status"] == "failed"
    assert row["error"] == sweep.WORKER_LOST
    saq_job = await harness.queue.job(str(job_id))
    assert saq_job is not None
    assert saq_job.status == Status.FAILED


async def test_sweep_retries_a_retryable_job_of_a_dead_worker(
    harness: Harness, db: asyncpg.Connection
) -> None:
    job_id = await harness.add_job("export", status="active")  # two attempts allowed
    await harness.run_on(job_id, worker_id="crashed-worker")

    await harness.sweeper.sweep()

    row = await harness.record(db, job_id)
    assert row["status"] == "queued"
    assert row["message"] == sweep.RETRY_PENDING
    saq_job = await harness.queue.job(str(job_id))
    assert saq_job is not None
    assert saq_job.status == Status.QUEUED
    # Back in SAQ's schedule, to run again after the kind's retry delay.
    assert await harness.queue.count("incomplete") == 1
    assert await harness.queue.count("active") == 0


async def test_sweep_leaves_the_jobs_of_live_workers_alone(
    harness: Harness, db: asyncpg.Connection
) -> None:
    job_id = await harness.add_job("demo", status="active")
    await harness.run_on(job_id, worker_id="busy-worker")
    await harness.resources.redis.set(runtime.alive_key(harness.queue.name, "busy-worker"), b"1")

    await harness.sweeper.sweep()

    assert (await harness.record(db, job_id))["status"] == "active"


async def test_sweep_fails_records_whose_job_never_reached_the_queue(
    harness: Harness, db: asyncpg.Connection
) -> None:
    old = await harness.add_job("demo", enqueue=False)
    fresh = await harness.add_job("demo", enqueue=False)
    await db.execute("UPDATE jobs SET updated_at = now() - interval '5 minutes' WHERE id = $1", old)

    await harness.sweeper.sweep()

    assert (await harness.record(db, old))["status"] == "failed"
    assert (await harness.record(db, old))["error"] == sweep.LOST
    assert (await harness.record(db, fresh))["status"] == "queued"


async def test_sweep_carries_over_a_job_saq_swept_itself(
    harness: Harness, db: asyncpg.Connection
) -> None:
    job_id = await harness.add_job("demo", status="active")
    saq_job = await harness.run_on(job_id, worker_id="crashed-worker")
    await harness.queue.finish(saq_job, Status.ABORTED, error="swept")
    await db.execute(
        "UPDATE jobs SET updated_at = now() - interval '30 seconds' WHERE id = $1", job_id
    )

    await harness.sweeper.sweep()

    row = await harness.record(db, job_id)
    assert (row["status"], row["error"]) == ("failed", sweep.WORKER_LOST)


@pytest.mark.parametrize(
    ("exception", "error"),
    [
        (TimeoutError(), tasks.TIME_LIMIT),
        (RuntimeError("password=hunter2 at db.internal:5432"), sweep.UNEXPECTED),
    ],
)
async def test_outcomes_decided_by_saq_reach_the_record_as_safe_text(
    harness: Harness, db: asyncpg.Connection, exception: Exception, error: str
) -> None:
    job_id = await harness.add_job("demo", status="active")
    saq_job = await harness.run_on(job_id, worker_id="the-sweeper")
    await harness.queue.finish(saq_job, Status.FAILED, error="Traceback ...")
    ctx: dict[str, Any] = {**harness.ctx, "job": saq_job, "exception": exception}

    await tasks.after_process(cast("Context", ctx))

    row = await harness.record(db, job_id)
    assert (row["status"], row["error"]) == ("failed", error)


async def test_after_process_keeps_an_abort_by_the_owner(
    harness: Harness, db: asyncpg.Connection
) -> None:
    job_id = await harness.add_job("demo", status="aborted")
    saq_job = SaqJob("demo", key=str(job_id), queue=harness.queue, status=Status.ABORTED)
    await tasks.after_process(cast("Context", {**harness.ctx, "job": saq_job}))
    assert (await harness.record(db, job_id))["status"] == "aborted"


async def test_old_finished_job_records_are_purged(
    harness: Harness, db: asyncpg.Connection
) -> None:
    old_done = await harness.add_job("demo", status="complete", enqueue=False)
    old_running = await harness.add_job("demo", status="active", enqueue=False)
    recent_done = await harness.add_job("demo", status="failed", enqueue=False)
    await db.execute(
        "UPDATE jobs SET updated_at = now() - interval '2 days' WHERE id = ANY($1::uuid[])",
        [old_done, old_running],
    )

    assert await tasks.purge_old_job_records(harness.ctx) >= 1

    remaining = {
        row["id"]
        for row in await db.fetch(
            "SELECT id FROM jobs WHERE id = ANY($1::uuid[])", [old_done, old_running, recent_done]
        )
    }
    assert remaining == {old_running, recent_done}


async def test_long_deleted_projects_are_purged(
    harness: Harness, db: asyncpg.Connection, client: TestClient[Litestar], auth: Auth
) -> None:
    """The cron purges every soft-deletable domain, projects included, after
    `purge_deleted_after_days`."""
    harness.resources.settings = harness.resources.settings.model_copy(
        update={"purge_deleted_after_days": 1}
    )
    ids = []
    for name in ("old", "recent", "kept"):
        response = client.post("/v1/projects", json={"name": name}, headers=auth("carol"))
        ids.append(uuid.UUID(response.json()["id"]))
    old, recent, kept = ids
    for project_id in (old, recent):
        deleted = client.delete(f"/v1/projects/{project_id}", headers=auth("carol"))
        assert deleted.status_code == 204
    await db.execute(
        "UPDATE projects SET deleted_at = now() - interval '2 days' WHERE id = $1", old
    )

    assert await tasks.purge_soft_deleted_rows(harness.ctx) >= 1

    rows = await db.fetch(
        "SELECT id, is_deleted FROM projects WHERE id = ANY($1::uuid[])", [old, recent, kept]
    )
    assert {row["id"]: row["is_deleted"] for row in rows} == {recent: True, kept: False}


async def test_saq_sweep_spares_a_job_being_dequeued(harness: Harness) -> None:
    """A job moved to the active list but not yet marked active is not aborted at once."""
    queue = WorkerQueue(harness.queue.redis, name=harness.queue.name)
    job_id = await harness.add_job("demo")
    dequeued = await queue.dequeue(timeout=2)  # in the active list, status still "queued"
    assert dequeued is not None

    assert await queue.sweep(lock=1) == []
    assert (await queue.job(str(job_id))).status == Status.QUEUED  # type: ignore[union-attr]

    patient = WorkerQueue(harness.queue.redis, name=queue.name, mid_dequeue_grace_s=0)
    await harness.queue.redis.delete(queue.namespace("sweep"))
    assert await patient.sweep(lock=1, abort=0.1) == [f"saq:job:{queue.name}:{job_id}"]
    # Never started (its worker died before marking it active): queued again, not lost.
    assert (await queue.job(str(job_id))).status == Status.QUEUED  # type: ignore[union-attr]
    assert await queue.count("active") == 0


async def test_saq_sweep_frees_an_active_job_past_its_time_limit(harness: Harness) -> None:
    queue = WorkerQueue(harness.queue.redis, name=harness.queue.name)
    job_id = await harness.add_job("export")  # two attempts: freed means retried
    job = await harness.run_on(job_id, worker_id="the-sweeper")
    job.timeout = 1
    job.started -= 5_000  # started five seconds ago, with a one-second limit
    await job.update()

    assert await queue.sweep(lock=1, abort=0.1) == [job.id]
    freed = await queue.job(str(job_id))
    assert freed is not None
    assert freed.status == Status.QUEUED
    assert freed.error == "swept"


async def _add_backlog(harness: Harness, db: asyncpg.Connection, count: int, age_s: int) -> None:
    """`count` queued records of the harness's queue, all `age_s` seconds old, not enqueued."""
    await db.execute(
        """
        INSERT INTO jobs (id, owner_sub, kind, queue, params, status, progress, step,
                          total_steps, message, attempts, created_at, updated_at)
        SELECT gen_random_uuid(), $1, 'demo', $2, '{}', 'queued', 0, 0, 10, 'Waiting', 0,
               now() - make_interval(secs => $3), now() - make_interval(secs => $3)
        FROM generate_series(1, $4)
        """,
        OWNER.sub,
        harness.queue.name,
        float(age_s),
        count,
    )


async def test_sweep_finds_a_dead_workers_job_behind_a_large_backlog(
    harness: Harness, db: asyncpg.Connection
) -> None:
    """Issue: with 500+ older queued records the sweep never reached the active one."""
    await _add_backlog(harness, db, 3 * sweep.SWEEP_PAGE, age_s=5)
    job_id = await harness.add_job("demo", status="active")
    await harness.run_on(job_id, worker_id="crashed-worker")

    result = await harness.sweeper.sweep()

    assert (await harness.record(db, job_id))["status"] == "failed"
    assert result.changed == 1  # the fresh backlog is left alone


async def test_sweep_pages_through_the_whole_backlog_in_turn(
    harness: Harness, db: asyncpg.Connection
) -> None:
    """Records lost before reaching SAQ are failed wherever they sit in a long backlog."""
    total = 2 * sweep.SWEEP_PAGE + 10
    await _add_backlog(harness, db, total, age_s=600)
    sweeper = harness.sweeper

    changed = [(await sweeper.sweep()).changed for _ in range(3)]

    assert changed == [sweep.SWEEP_PAGE, sweep.SWEEP_PAGE, 10]
    left = await db.fetchval(
        "SELECT count(*) FROM jobs WHERE queue = $1 AND status = 'queued'", harness.queue.name
    )
    assert left == 0


async def test_sweep_says_nothing_when_nothing_changed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.add_job("demo")  # queued, as it should be
    with caplog.at_level("DEBUG", logger="app.jobs"):
        assert (await harness.sweeper.sweep()).changed == 0
    assert caplog.records == []
