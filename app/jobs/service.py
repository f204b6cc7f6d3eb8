"""Job rules: creating, reading and aborting (API side); recording progress (worker side).

Where state lives: the `jobs` row in PostgreSQL is the job's state (owner, status,
progress, result, error). SAQ's copy in Redis only schedules the run. Every change is
committed first and published second, on `job_progress:{job_id}`, so anyone who
subscribes and then reads the row has missed nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job as SaqJob
from saq.job import TERMINAL_STATUSES as SAQ_TERMINAL_STATUSES
from saq.queue import Queue
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from uuid_utils.compat import uuid7

from app.auth import Principal
from app.errors import ServiceUnavailableError
from app.jobs.models import UNFINISHED_STATUSES
from app.jobs.registry import KINDS, JobKind, kind_of
from app.jobs.repository import JOB_AND_PROGRESS_COLUMNS, JobRepository
from app.jobs.schemas import (
    TERMINAL_STATUSES,
    Job,
    JobPage,
    JobRequest,
    ProgressMessage,
    ProgressPayload,
    progress_channel,
)
from app.limits import check_open_jobs
from app.realtime import RESYNC, PubSubHub, Subscription

__all__ = [
    "SAQ_JOB_TTL_S",
    "JobAborted",
    "JobNotFound",
    "JobService",
    "JobStateWriter",
    "ProgressFollower",
    "parse_job_id",
    "progress_message",
    "saq_job_for",
]

logger = logging.getLogger(__name__)

# SAQ's own copy of a finished job is only for SAQ; clients read the database row.
SAQ_JOB_TTL_S = 3600
ABORTED_MESSAGE = "Aborted by the caller"
QUEUED_MESSAGE = "Waiting for a worker"

_encode = msgspec.json.Encoder().encode


def parse_job_id(raw: str) -> uuid.UUID | None:
    """A job id from a path; None when it cannot be one (answered like an unknown job)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def progress_message(row: Row[Any]) -> ProgressMessage:
    return ProgressMessage(
        job_id=str(row.id),
        status=row.status,
        progress=row.progress,
        step=row.step,
        total_steps=row.total_steps,
        payload=ProgressPayload(message=row.message),
    )


def job_from_row(row: Row[Any]) -> Job:
    result = row.result
    if result is not None:
        kind = KINDS.get(row.kind)
        result = msgspec.convert(result, kind.result_type) if kind is not None else None
    return Job(
        job_id=row.id,
        kind=row.kind,
        status=row.status,
        progress=row.progress,
        step=row.step,
        total_steps=row.total_steps,
        result=result,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def saq_job_for(
    kind: JobKind[Any, Any], params: msgspec.Struct, job_id: uuid.UUID, caller: Principal
) -> SaqJob:
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
        session: AsyncSession,
        queue: Queue,
        redis: Redis,
        *,
        redis_timeout_s: float,
        max_open_jobs: int = 0,
    ) -> None:
        self._max_open_jobs = max_open_jobs
        self._session = session
        self._repository = JobRepository(session)
        self._queue = queue
        self._redis = redis
        self._redis_timeout_s = redis_timeout_s

    async def create(self, caller: Principal, request: JobRequest) -> Job:
        kind = kind_of(request)
        if self._max_open_jobs:
            open_jobs = await self._repository.count_open_for_owner(caller.sub)
            check_open_jobs(open_jobs, self._max_open_jobs)
        params = request.params
        job_id = uuid.UUID(str(uuid7()))
        row = await self._repository.add(
            job_id=job_id,
            owner_sub=caller.sub,
            kind=kind.name,
            queue=self._queue.name,
            params=msgspec.to_builtins(params),
            total_steps=kind.total_steps(params),
            message=QUEUED_MESSAGE,
        )
        # Committed before enqueueing: a worker may pick the job up before this request ends.
        await self._session.commit()
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
        self, caller: Principal, *, limit: int, offset: int, status: str | None
    ) -> JobPage:
        rows, total = await self._repository.page_for_owner(
            caller.sub, limit=limit, offset=offset, status=status
        )
        if total is None:  # past the end (or nothing at all): count separately
            total = await self._repository.count_for_owner(caller.sub, status) if offset else 0
        return JobPage(
            items=[job_from_row(row) for row in rows], total=total, limit=limit, offset=offset
        )

    async def abort(self, caller: Principal, raw_job_id: str) -> Job:
        """Stop a queued or active job. The record is final at once; the worker stops soon."""
        job_id = parse_job_id(raw_job_id)
        if job_id is None:
            raise NotFoundException(detail="Job not found")
        row = await self._repository.transition(
            job_id,
            from_statuses=UNFINISHED_STATUSES,
            owner_sub=caller.sub,
            returning=JOB_AND_PROGRESS_COLUMNS,
            status="aborted",
            error=ABORTED_MESSAGE,
            message=ABORTED_MESSAGE,
        )
        if row is None:
            if await self._repository.exists_for_owner(job_id, caller.sub):
                raise ClientException(detail="The job has already finished", status_code=409)
            raise NotFoundException(detail="Job not found")
        await self._session.commit()
        await self._stop_run(job_id, progress_message(row))
        return job_from_row(row)

    async def _stop_run(self, job_id: uuid.UUID, message: ProgressMessage) -> None:
        """Tell listeners and SAQ. Best effort: the worker also checks the record each step."""
        try:
            async with asyncio.timeout(self._redis_timeout_s):
                await self._redis.publish(progress_channel(job_id), _encode(message))
                saq_job = await self._queue.job(str(job_id))
                if saq_job is not None and saq_job.status not in SAQ_TERMINAL_STATUSES:
                    await self._queue.abort(saq_job, error=ABORTED_MESSAGE)
        except (RedisError, TimeoutError) as exc:
            logger.warning("job %s aborted in the database only: %r", job_id, exc)


class JobAborted(Exception):
    """The job's record left `active` (aborted, or failed by the sweep): stop working on it."""


class JobStateWriter:
    """Worker side: every change is committed, then published to the job's channel."""

    def __init__(
        self,
        session_factory: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        redis: Redis,
    ) -> None:
        self._session_factory = session_factory
        self._redis = redis

    async def _write(self, change: Callable[[JobRepository], Any]) -> Row[Any] | None:
        async with self._session_factory() as session:
            row: Row[Any] | None = await change(JobRepository(session))
            await session.commit()
        if row is not None:
            await self.publish(progress_message(row))
        return row

    async def publish(self, message: ProgressMessage) -> None:
        try:
            await self._redis.publish(progress_channel(message.job_id), _encode(message))
        except RedisError as exc:  # the row is the truth; listeners resync from it
            logger.warning("could not publish progress of job %s: %r", message.job_id, exc)

    async def claim(self, job_id: uuid.UUID, attempt: int) -> bool:
        message = "Started" if attempt <= 1 else f"Started again (attempt {attempt})"
        return await self._write(lambda repo: repo.claim(job_id, message)) is not None

    async def report(self, job_id: uuid.UUID, step: int, total_steps: int, message: str) -> None:
        progress = min(100, step * 100 // total_steps) if total_steps else 0
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=("active",),
                step=step,
                progress=progress,
                message=message[:500],
            )
        )
        if row is None:
            raise JobAborted(job_id)

    async def complete(self, job_id: uuid.UUID, result: Any, message: str) -> bool:
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=("active",),
                status="complete",
                progress=100,
                result=result,
                message=message[:500],
            )
        )
        return row is not None

    async def fail(
        self, job_id: uuid.UUID, error: str, *, from_statuses: tuple[str, ...] = ("active",)
    ) -> bool:
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=from_statuses,
                status="failed",
                error=error[:500],
                message=error[:500],
            )
        )
        return row is not None

    async def requeue(self, job_id: uuid.UUID, message: str) -> bool:
        row = await self._write(
            lambda repo: repo.transition(
                job_id, from_statuses=("active",), status="queued", message=message[:500]
            )
        )
        return row is not None


# --- following a job's progress (WebSocket side) ----------------------------------------

_decode_progress = msgspec.json.Decoder(ProgressMessage).decode
# A job's updates only move forward within one run: status first, then step.
_STATUS_ORDER = {"queued": 0, "active": 1, "complete": 2, "failed": 2, "aborted": 2}


def _position(status: str, step: int) -> tuple[int, int]:
    return _STATUS_ORDER.get(status, 0), step


class JobNotFound(Exception):
    """No such job for this caller (also: someone else's job)."""


async def _read_progress(
    engine: AsyncEngine, job_id: uuid.UUID, owner_sub: str
) -> ProgressMessage | None:
    async with engine.connect() as connection:
        row = await JobRepository(connection).progress_for_owner(job_id, owner_sub)
    return progress_message(row) if row is not None else None


class ProgressFollower:
    """One listener following one job: the current state, then every newer update.

    Subscribe first, read the row second: an update committed before the read is in the
    row, one published after the subscription arrives as a message. Messages that the
    row already covers (published between the two) are dropped by their position. The
    stream ends after the terminal state, or when `stop()` is called (the client left).
    """

    def __init__(
        self, engine: AsyncEngine, hub: PubSubHub, job_id: uuid.UUID, owner_sub: str
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._job_id = job_id
        self._owner_sub = owner_sub
        self._subscription: Subscription | None = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        if self._subscription is not None:
            self._subscription.close()

    async def messages(self) -> AsyncGenerator[bytes, None]:
        async with self._hub.subscribe(progress_channel(self._job_id)) as subscription:
            self._subscription = subscription
            if self.stopped:
                return
            current = await _read_progress(self._engine, self._job_id, self._owner_sub)
            if current is None:
                raise JobNotFound(self._job_id)
            yield _encode(current)
            if current.status in TERMINAL_STATUSES:
                return
            last = _position(current.status, current.step)
            catching_up = True
            while (item := await subscription.next()) is not None:
                if item is RESYNC:
                    # Messages may have been lost (Redis reconnect, or a slow socket).
                    current = await _read_progress(self._engine, self._job_id, self._owner_sub)
                    if current is None:
                        return
                    if _position(current.status, current.step) > last:
                        yield _encode(current)
                        if current.status in TERMINAL_STATUSES:
                            return
                        last = _position(current.status, current.step)
                    catching_up = True
                    continue
                assert isinstance(item, bytes)
                try:
                    message = _decode_progress(item)
                except msgspec.ValidationError:
                    logger.warning("ignoring a malformed message on %s", subscription.channel)
                    continue
                position = _position(message.status, message.step)
                if catching_up and position <= last:
                    continue
                catching_up, last = False, position
                yield item
                if message.status in TERMINAL_STATUSES:
                    return
