"""What the HTTP API does with jobs: create, read, list and abort, always for the caller.

The `jobs` row in PostgreSQL is the job's state (owner, status, progress, result,
error); SAQ's copy in Redis only schedules the run. The worker side is in
`app/jobs/recorder.py` and `app/jobs/tasks.py`, the WebSocket side in `app/jobs/follow.py`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException
from redis.exceptions import RedisError
from saq import Job as SaqJob
from saq.job import TERMINAL_STATUSES as SAQ_TERMINAL_STATUSES
from saq.queue import Queue
from sqlalchemy import Row
from uuid_utils.compat import uuid7

from app.auth import Principal
from app.errors import ServiceUnavailableError
from app.jobs.progress import ProgressPublisher, parse_job_id, progress_message
from app.jobs.registry import KINDS, JobKind, kind_of
from app.jobs.repository import JOB_AND_PROGRESS_COLUMNS, JobRepository, JobRow
from app.jobs.schemas import Job, JobPage, JobRequest, JobSummary
from app.jobs.status import UNFINISHED, JobStatus
from app.limits import too_many_open_jobs
from app.tracing import job_trace_context

__all__ = ["SAQ_JOB_TTL_S", "JobService", "job_from_row", "saq_job_for"]

logger = logging.getLogger(__name__)

# SAQ's own copy of a finished job is only for SAQ; clients read the database row.
SAQ_JOB_TTL_S = 3600
ABORTED_MESSAGE = "Aborted by the caller"
QUEUED_MESSAGE = "Waiting for a worker"


def _summary_fields(row: Row[Any] | JobRow) -> dict[str, Any]:
    return {
        "job_id": row.id,
        "kind": row.kind,
        "status": JobStatus(row.status),
        "progress": row.progress,
        "step": row.step,
        "total_steps": row.total_steps,
        "error": row.error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def job_from_row(row: Row[Any] | JobRow) -> Job:
    result = row.result
    if result is not None:
        kind = KINDS.get(row.kind)
        result = msgspec.convert(result, kind.result_type) if kind is not None else None
    return Job(**_summary_fields(row), result=result)


def summary_from_row(row: Row[Any]) -> JobSummary:
    return JobSummary(**_summary_fields(row))


def saq_job_for(
    kind: JobKind[Any, Any], params: msgspec.Struct, job_id: uuid.UUID, caller: Principal
) -> SaqJob:
    """The SAQ job that runs a record: its function is the kind's name, its key the id."""
    return SaqJob(
        function=kind.name,
        key=str(job_id),
        kwargs={
            "job_id": str(job_id),
            "owner_sub": caller.sub,
            "tenant_id": caller.tenant_id,
            "params": msgspec.to_builtins(params),
        },
        timeout=kind.time_limit_s(params),
        heartbeat=kind.heartbeat_s,
        retries=kind.attempts,
        retry_delay=kind.retry_delay_s,
        ttl=SAQ_JOB_TTL_S,
        # The request's trace context: the worker's run continues its trace (if on).
        meta=job_trace_context(),
    )


def _redis_unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        detail="Service temporarily unavailable: Redis is not answering",
        headers={"Retry-After": "5"},
    )


class JobService:
    """What the HTTP API does with jobs, always scoped to the caller."""

    def __init__(
        self,
        repository: JobRepository,
        queue: Queue,
        publisher: ProgressPublisher,
        *,
        redis_timeout_s: float,
        max_open_jobs: int = 0,
    ) -> None:
        self._max_open_jobs = max_open_jobs
        self._repository = repository
        self._session = repository.session
        self._queue = queue
        self._publisher = publisher
        self._redis_timeout_s = redis_timeout_s

    async def create(self, caller: Principal, request: JobRequest) -> Job:
        return await self.start(caller, kind_of(request), request.params)

    async def start(
        self, caller: Principal, kind: JobKind[Any, Any], params: msgspec.Struct
    ) -> Job:
        """Admit, record and enqueue a job of `kind` for the caller (`POST /v1/jobs`, and
        routes that start a kind of their own, like `POST /v1/me/erase`). The creation
        rate is a guard on the route (app/limits.py), refused before the body is even
        read; the open-jobs cap is checked with the insert, in one step per owner
        (`JobRepository.add`)."""
        job_id = uuid.UUID(str(uuid7()))
        # Committed when it returns, before enqueueing: a worker may pick the job up
        # before this request ends.
        row = await self._repository.add(
            job_id=job_id,
            owner_sub=caller.sub,
            kind=kind.name,
            queue=self._queue.name,
            params=msgspec.to_builtins(params),
            total_steps=kind.total_steps(params),
            message=QUEUED_MESSAGE,
            max_open=self._max_open_jobs,
        )
        if row is None:
            raise too_many_open_jobs(self._max_open_jobs)
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._queue.enqueue(saq_job_for(kind, params, job_id, caller))
        except (RedisError, TimeoutError) as exc:
            logger.warning("could not enqueue job %s: %r", job_id, exc)
            await self._forget(job_id)
            raise _redis_unavailable() from exc
        return job_from_row(row)

    async def _forget(self, job_id: uuid.UUID) -> None:
        """Remove a record whose job never reached the queue (the client got a 503)."""
        try:
            await self._repository.remove(job_id)
            await self._session.commit()
        except Exception:  # the sweep fails such a record later if this cannot
            logger.exception("could not remove the record of unqueued job %s", job_id)

    async def get(self, caller: Principal, raw_job_id: str) -> Job:
        job_id = parse_job_id(raw_job_id)
        row = await self._repository.get_for_owner(job_id, caller.sub) if job_id else None
        if row is None:
            raise NotFoundException(detail="Job not found")
        return job_from_row(row)

    async def page(
        self, caller: Principal, *, limit: int, offset: int, status: JobStatus | None
    ) -> JobPage:
        rows, total = await self._repository.page_for_owner(
            caller.sub, limit=limit, offset=offset, status=status
        )
        if total is None:  # past the end (or nothing at all): count separately
            total = await self._repository.count_for_owner(caller.sub, status) if offset else 0
        return JobPage(
            items=[summary_from_row(row) for row in rows], total=total, limit=limit, offset=offset
        )

    async def abort(self, caller: Principal, raw_job_id: str) -> Job:
        """Stop a queued or active job. The record is final at once; the worker stops soon."""
        job_id = parse_job_id(raw_job_id)
        if job_id is None:
            raise NotFoundException(detail="Job not found")
        row = await self._repository.transition(
            job_id,
            from_statuses=UNFINISHED,
            owner_sub=caller.sub,
            returning=JOB_AND_PROGRESS_COLUMNS,
            status=JobStatus.ABORTED,
            error=ABORTED_MESSAGE,
            message=ABORTED_MESSAGE,
        )
        if row is None:
            if await self._repository.exists_for_owner(job_id, caller.sub):
                raise ClientException(detail="The job has already finished", status_code=409)
            raise NotFoundException(detail="Job not found")
        await self._session.commit()
        await self._stop_run(job_id, row)
        return job_from_row(row)

    async def _stop_run(self, job_id: uuid.UUID, row: Row[Any]) -> None:
        """Tell listeners and SAQ. Best effort: the worker also checks the record each step."""
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._publisher.publish_or_raise(progress_message(row))
                saq_job = await self._queue.job(str(job_id))
                if saq_job is not None and saq_job.status not in SAQ_TERMINAL_STATUSES:
                    await self._queue.abort(saq_job, error=ABORTED_MESSAGE)
        except (RedisError, TimeoutError) as exc:
            logger.warning("job %s aborted in the database only: %r", job_id, exc)
