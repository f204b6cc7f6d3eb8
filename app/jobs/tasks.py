"""What the SAQ worker runs: one function per job kind, the outcome hook, the cron jobs.

A run: claim the record (skipped if it was aborted before starting), run the kind's body
with a `JobRun` for progress and its own database sessions, keep SAQ's heartbeat fresh,
then record the outcome. Outcomes SAQ decides itself (time limit, crash, a job handed
back by a stopping worker) reach the record through `after_process`; a worker that dies
outright is found by the sweep (`app/jobs/sweep.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job as SaqJob
from saq.job import Status
from saq.types import Context
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.crud import purge_soft_deleted
from app.domains import domain_models
from app.jobs.recorder import JobAborted, JobStateWriter
from app.jobs.registry import KINDS, JobFailure, JobKind, check_result_size
from app.jobs.repository import JobRepository
from app.jobs.runtime import resources_of
from app.jobs.sweep import RETRY_PENDING, UNEXPECTED
from app.tracing import span, traced_job

__all__ = [
    "TIME_LIMIT",
    "after_process",
    "job_functions",
    "purge_old_job_records",
    "purge_soft_deleted_rows",
]

logger = logging.getLogger(__name__)

TIME_LIMIT = "The job took longer than its time limit"


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
    max_result_bytes: int
    redis: Redis

    async def report(self, step: int, message: str) -> None:
        with span("job step", {"job.step": step}):  # its UPDATE and PUBLISH under it
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
        resources = resources_of(ctx)
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
            max_result_bytes=resources.settings.max_job_result_bytes,
            redis=resources.redis,
        )
        heartbeat = asyncio.create_task(_keep_heartbeat(saq_job, kind.heartbeat_s))
        try:
            result = await kind.run(job_run, typed_params)
            check_result_size(len(msgspec.json.encode(result)), job_run.max_result_bytes)
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

    # SAQ registers a function under its qualified name; the API enqueues the kind's name.
    run.__qualname__ = run.__name__ = kind.name
    return traced_job(run)


def _final_message(result: Any) -> str:
    message = getattr(result, "message", None)
    return message if isinstance(message, str) and message else "Done"


def job_functions() -> list[JobFunction]:
    """SAQ functions named after the kinds, as the API enqueues them."""
    return [_runner(kind) for kind in KINDS.values()]


def _client_error(exc: BaseException | None) -> str:
    if isinstance(exc, JobFailure):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return TIME_LIMIT
    return UNEXPECTED


async def after_process(ctx: Context) -> None:
    """Carry outcomes SAQ decided (time limit, crash, retry, hand-back) to the record."""
    job = ctx.get("job")
    if job is None or job.function not in KINDS:
        return  # cron jobs have no record
    resources = resources_of(ctx)
    record_id = uuid.UUID(job.key)
    try:
        if job.status == Status.QUEUED:
            await resources.writer.requeue(record_id, RETRY_PENDING)
        elif job.status in (Status.FAILED, Status.ABORTED):
            # Conditional: a record already aborted by its owner or failed by the body
            # keeps its own outcome.
            await resources.writer.fail_unfinished(record_id, _client_error(ctx.get("exception")))
    except Exception:  # the sweep corrects the record later
        logger.exception("could not record the outcome of job %s", job.key)


# --- cron -------------------------------------------------------------------------------


async def purge_old_job_records(ctx: Context) -> int:
    """Finished job records are kept for `job_state_ttl_s`, then deleted."""
    resources = resources_of(ctx)
    async with resources.sessions() as session:
        deleted = await JobRepository(session).purge_finished(
            datetime.timedelta(seconds=resources.settings.job_state_ttl_s),
            now=resources.clock(),
        )
        await session.commit()
    if deleted:
        logger.info("deleted %d finished job records", deleted)
    return deleted


async def purge_soft_deleted_rows(ctx: Context) -> int:
    """Rows of every soft-deletable model (every domain's, app/domains.py) deleted longer
    ago than `purge_deleted_after_days` go for good."""
    resources = resources_of(ctx)
    async with resources.sessions() as session:
        purged = await purge_soft_deleted(
            session,
            domain_models(),
            datetime.timedelta(days=resources.settings.purge_deleted_after_days),
            now=resources.clock(),
        )
    for table, count in purged.items():
        if count:
            logger.info("purged %d long-deleted rows of %s", count, table)
    return sum(purged.values())
