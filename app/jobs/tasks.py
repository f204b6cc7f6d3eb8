"""What the SAQ worker runs: one function per job kind, the cron jobs, lifecycle hooks.

A run: claim the record (skipped if it was aborted before starting), run the kind's body
with a `JobRun` for progress and its own database sessions, keep SAQ's heartbeat fresh,
then record the outcome. Outcomes SAQ decides itself (time limit, retry after a
shutdown) reach the record through `after_process`; a worker that dies outright is
found by `sweep_jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job as SaqJob
from saq.job import Status
from saq.queue import Queue
from saq.queue.redis import RedisQueue
from saq.types import Context
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings, get_settings
from app.db.config import driver_connect_args
from app.jobs.registry import KINDS, JobFailure, JobKind
from app.jobs.repository import JobRepository
from app.jobs.service import JobAborted, JobStateWriter
from app.projects.service import ProjectService

__all__ = [
    "WorkerQueue",
    "WorkerResources",
    "after_process",
    "alive_key",
    "cron_expression_every",
    "job_functions",
    "purge_deleted_projects",
    "purge_old_job_records",
    "shutdown",
    "startup",
    "sweep_jobs",
]

logger = logging.getLogger(__name__)

# Errors a client may read: never a traceback or a driver message.
WORKER_LOST = "The worker running this job stopped unexpectedly"
TIME_LIMIT = "The job took longer than its time limit"
UNEXPECTED = "The job failed unexpectedly"
LOST = "The job was lost before it could finish"
RETRY_PENDING = "Waiting to retry after an interruption"

# How long a record may lag SAQ before the sweep corrects it (the worker writes the
# outcome right after SAQ's own bookkeeping), and how long a queued record may have
# no SAQ job at all (the API creates the record a moment before enqueueing).
SETTLE = datetime.timedelta(seconds=10)
UNQUEUED_GRACE = datetime.timedelta(seconds=60)
SWEEP_BATCH = 500


@dataclass
class WorkerResources:
    """Per worker process: database engine, Redis for progress, liveness advertising."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    worker_id: str
    queue_name: str
    writer: JobStateWriter = field(init=False)
    _alive_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.writer = JobStateWriter(self.sessions, self.redis)

    @property
    def alive_key(self) -> str:
        return alive_key(self.queue_name, self.worker_id)

    async def say_alive(self) -> None:
        await self.redis.set(self.alive_key, b"1", ex=self.settings.worker_liveness_ttl_s)

    async def keep_saying_alive(self) -> None:
        # Runs on the event loop on purpose: a worker whose loop is blocked for longer
        # than the TTL cannot run its jobs either, and is treated as dead.
        while True:
            await asyncio.sleep(max(self.settings.worker_liveness_ttl_s / 4, 0.5))
            try:
                await self.say_alive()
            except RedisError as exc:
                logger.warning("could not refresh worker liveness: %r", exc)


def alive_key(queue_name: str, worker_id: str) -> str:
    return f"saq:{queue_name}:alive:{worker_id}"


def _resources(ctx: Context) -> WorkerResources:
    resources = ctx.get("resources")
    assert isinstance(resources, WorkerResources), "worker startup hook did not run"
    return resources


# --- the worker's queue -----------------------------------------------------------------


class WorkerQueue(RedisQueue):
    """SAQ's Redis queue with a sweep that cannot catch a job in the middle of dequeueing.

    SAQ's sweep frees every job in the active list whose status is not `active`. A worker
    moves a job into that list and marks it active a moment later, so a sweep in between
    (likely when a worker starts while jobs wait) aborts a healthy job. Here such a job
    is only swept once it has stayed that way for `mid_dequeue_grace_s`; stuck active
    jobs (past their time limit or heartbeat) and vanished ones are swept as SAQ does.
    """

    def __init__(self, *args: Any, mid_dequeue_grace_s: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grace_s = mid_dequeue_grace_s
        self._not_active_since: dict[str, float] = {}

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        # The same lock as SAQ's: one sweep per `lock` seconds across all workers.
        if not await self.redis.set(self.namespace("sweep"), 1, ex=lock, nx=True):
            return []
        job_ids: list[bytes] = await self.redis.lrange(  # type: ignore[misc]
            self.namespace("active"), 0, -1
        )
        stored = await self.redis.mget(job_ids) if job_ids else []
        now = time.monotonic()
        seen: dict[str, float] = {}
        swept: list[str] = []
        for raw_id, payload in zip(job_ids, stored, strict=True):
            job_id = raw_id.decode()
            job = self.deserialize(payload)
            if job is None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self.namespace("active"), 0, job_id)
                    pipe.zrem(self.namespace("incomplete"), job_id)
                    await pipe.execute()
                swept.append(job_id)
            elif job.status == Status.ACTIVE:
                if job.stuck:
                    await self._free(job, abort)
                    swept.append(job_id)
            else:
                seen[job_id] = self._not_active_since.get(job_id, now)
                if now - seen[job_id] >= self._grace_s:
                    await self._free(job, abort)
                    swept.append(job_id)
                    del seen[job_id]
        self._not_active_since = seen
        if swept:
            logger.info("SAQ sweep freed %s", swept)
        return swept

    async def _free(self, job: SaqJob, abort: float) -> None:
        """What SAQ's sweep does with a job: abort it, then retry it or end it aborted."""
        await self.abort(job, error=self.swept_error_message)
        with contextlib.suppress(TimeoutError):
            await job.refresh(abort)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)


# --- lifecycle --------------------------------------------------------------------------


def create_worker_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=max(2, settings.worker_concurrency // 2),
        max_overflow=settings.worker_concurrency,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        connect_args=driver_connect_args(
            settings, application_name="litestar-spa-worker", command_timeout=60
        ),
    )


async def startup(ctx: Context) -> None:
    worker = ctx["worker"]
    settings = get_settings()
    engine = create_worker_engine(settings)
    redis = worker.queue.redis  # type: ignore[attr-defined]  # a RedisQueue
    resources = WorkerResources(
        settings=settings,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        redis=redis,
        worker_id=worker.id,
        queue_name=worker.queue.name,
    )
    # Alive before the first job is taken, so no sweep can mistake its jobs for orphans.
    await resources.say_alive()
    resources._alive_task = asyncio.create_task(resources.keep_saying_alive())
    ctx["resources"] = resources  # type: ignore[typeddict-unknown-key]
    logger.info("worker %s ready on queue %s", worker.id, worker.queue.name)


async def shutdown(ctx: Context) -> None:
    resources = ctx.get("resources")
    if not isinstance(resources, WorkerResources):
        return
    if resources._alive_task is not None:
        resources._alive_task.cancel()
    with contextlib.suppress(RedisError, OSError):
        await resources.redis.delete(resources.alive_key)
    await resources.engine.dispose()


# --- running a kind ---------------------------------------------------------------------


@dataclass
class _Run:
    """The `JobRun` a kind's body receives."""

    job_id: uuid.UUID
    owner_sub: str
    tenant_id: str | None
    total_steps: int
    writer: JobStateWriter
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def report(self, step: int, message: str) -> None:
        await self.writer.report(self.job_id, step, self.total_steps, message)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session


async def _keep_heartbeat(job: SaqJob, heartbeat_s: int) -> None:
    """Touch the SAQ job well within its heartbeat, however long a step takes."""
    while True:
        await asyncio.sleep(max(heartbeat_s / 3, 1))
        try:
            await job.update()
        except RedisError as exc:
            logger.warning("heartbeat of job %s failed: %r", job.key, exc)


JobFunction = Callable[..., Awaitable[None]]


def _runner(kind: JobKind[Any, Any]) -> JobFunction:
    async def run(
        ctx: Context,
        *,
        job_id: str,
        owner_sub: str,
        tenant_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        resources = _resources(ctx)
        saq_job = ctx["job"]
        record_id = uuid.UUID(job_id)
        if not await resources.writer.claim(record_id, saq_job.attempts):
            logger.info("job %s was aborted before it started", job_id)
            return
        typed_params = msgspec.convert(params or {}, kind.params_type)
        job_run = _Run(
            job_id=record_id,
            owner_sub=owner_sub,
            tenant_id=tenant_id,
            total_steps=kind.total_steps(typed_params),
            writer=resources.writer,
            engine=resources.engine,
            sessions=resources.sessions,
        )
        heartbeat = asyncio.create_task(_keep_heartbeat(saq_job, kind.heartbeat_s))
        try:
            result = await kind.run(job_run, typed_params)
        except JobAborted:
            logger.info("job %s stopped: its record is no longer active", job_id)
            return
        except JobFailure as exc:
            # A failure the body explained: final, not worth retrying.
            saq_job.retries = saq_job.attempts
            await resources.writer.fail(record_id, str(exc))
            raise
        finally:
            heartbeat.cancel()
        await resources.writer.complete(
            record_id, msgspec.to_builtins(result), _final_message(result)
        )

    run.__qualname__ = run.__name__ = f"run_{kind.name}"
    return run


def _final_message(result: Any) -> str:
    message = getattr(result, "message", None)
    return message if isinstance(message, str) and message else "Done"


def job_functions() -> list[tuple[str, JobFunction]]:
    """SAQ functions named after the kinds, as the API enqueues them."""
    return [(name, _runner(kind)) for name, kind in KINDS.items()]


def _client_error(exc: BaseException | None) -> str:
    if isinstance(exc, JobFailure):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return TIME_LIMIT
    return UNEXPECTED


async def after_process(ctx: Context) -> None:
    """Carry outcomes SAQ decided (time limit, crash, retry) over to the record."""
    job = ctx.get("job")
    if job is None or job.function not in KINDS:
        return  # cron jobs have no record
    resources = _resources(ctx)
    record_id = uuid.UUID(job.key)
    try:
        if job.status == Status.QUEUED:
            await resources.writer.requeue(record_id, RETRY_PENDING)
        elif job.status in (Status.FAILED, Status.ABORTED):
            # Conditional: a record already aborted by its owner or failed by the body
            # keeps its own outcome.
            error = _client_error(ctx.get("exception"))
            await resources.writer.fail(record_id, error, from_statuses=("queued", "active"))
    except Exception:  # the sweep corrects the record later
        logger.exception("could not record the outcome of job %s", job.key)


# --- cron -------------------------------------------------------------------------------


async def sweep_jobs(ctx: Context) -> dict[str, int]:
    """No job stays `active` after its worker died, and records agree with SAQ."""
    resources = _resources(ctx)
    queue: Queue = ctx["worker"].queue
    async with resources.sessions() as session:
        rows = await JobRepository(session).unfinished(queue.name, limit=SWEEP_BATCH)
    if not rows:
        return {"checked": 0, "changed": 0}
    saq_jobs = await queue.jobs([str(row.id) for row in rows])
    worker_ids = {job.worker_id for job in saq_jobs if job is not None and job.worker_id}
    alive = await _alive_workers(resources, worker_ids)
    now = datetime.datetime.now(datetime.UTC)
    changed = 0
    for row, saq_job in zip(rows, saq_jobs, strict=True):
        age = now - row.updated_at
        if await _settle(resources, queue, row.id, age, saq_job, alive):
            changed += 1
    if changed:
        logger.info("job sweep corrected %d of %d unfinished jobs", changed, len(rows))
    return {"checked": len(rows), "changed": changed}


async def _alive_workers(resources: WorkerResources, worker_ids: set[str]) -> set[str]:
    ordered = sorted(worker_ids)
    if not ordered:
        return set()
    flags = await resources.redis.mget([alive_key(resources.queue_name, w) for w in ordered])
    return {worker for worker, flag in zip(ordered, flags, strict=True) if flag is not None}


async def _settle(
    resources: WorkerResources,
    queue: Queue,
    record_id: uuid.UUID,
    age: datetime.timedelta,
    saq_job: SaqJob | None,
    alive: set[str],
) -> bool:
    writer = resources.writer
    unfinished = ("queued", "active")
    if saq_job is None:
        # Never enqueued (the API lost Redis mid-request) or expired from SAQ.
        return age > UNQUEUED_GRACE and await writer.fail(record_id, LOST, from_statuses=unfinished)
    running = saq_job.status in (Status.ACTIVE, Status.ABORTING)
    if running and saq_job.worker_id and saq_job.worker_id not in alive:
        if saq_job.retryable:
            await queue.retry(saq_job, "worker stopped")
            return await writer.requeue(record_id, RETRY_PENDING)
        await queue.finish(saq_job, Status.FAILED, error="worker stopped")
        return await writer.fail(record_id, WORKER_LOST, from_statuses=unfinished)
    if age < SETTLE:
        return False
    if saq_job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
        # SAQ finished it (e.g. its own sweep) but the record never heard.
        error = WORKER_LOST if saq_job.status == Status.ABORTED else UNEXPECTED
        return await writer.fail(record_id, error, from_statuses=unfinished)
    if saq_job.status == Status.QUEUED:
        return await writer.requeue(record_id, RETRY_PENDING)
    return False


async def purge_old_job_records(ctx: Context) -> int:
    """Finished job records are kept for `job_state_ttl_s`, then deleted."""
    resources = _resources(ctx)
    async with resources.sessions() as session:
        deleted = await JobRepository(session).purge_finished(
            datetime.timedelta(seconds=resources.settings.job_state_ttl_s)
        )
        await session.commit()
    if deleted:
        logger.info("deleted %d finished job records", deleted)
    return deleted


async def purge_deleted_projects(ctx: Context) -> int:
    """Projects soft-deleted longer ago than `purge_deleted_after_days` go for good."""
    resources = _resources(ctx)
    async with resources.sessions() as session:
        purged = await ProjectService.for_maintenance(session).purge_deleted_projects(
            resources.settings.purge_deleted_after_days
        )
    if purged:
        logger.info("purged %d long-deleted projects", purged)
    return purged


def cron_expression_every(seconds: int) -> str:
    """A cron line firing every `seconds` (6 fields: croniter's last one counts seconds)."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{max(1, seconds // 60)} * * * *"
