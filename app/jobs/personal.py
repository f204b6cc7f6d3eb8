"""The jobs' part of "Your data" (app/db/personal.py): a caller's job records, and the
copies SAQ keeps of them in Redis.

- Export: every record's metadata (kind, status, parameters, progress, times) and its
  result, except exports' results (a copy of an earlier copy of the same data).
- Erase: every record but erase jobs' (their results are the receipts); then, after the
  commit, SAQ's copy of each (a queued or running one is aborted first) and a last
  `aborted` message on its progress channel, so any listener stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.job import TERMINAL_STATUSES
from saq.queue.redis import RedisQueue
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.personal import Erasure, Rows
from app.jobs.models import JobRecord
from app.jobs.progress import ProgressPublisher
from app.jobs.repository import JobRepository
from app.jobs.schemas import ProgressMessage, ProgressPayload
from app.jobs.status import UNFINISHED, JobStatus

__all__ = ["ERASED_MESSAGE", "JOBS_PERSONAL_DATA", "JobsPersonalData"]

logger = logging.getLogger(__name__)

ERASED_MESSAGE = "Erased at the owner's request"
# Kinds whose records an erasure keeps: the receipts.
KEPT_KINDS = ("erase",)
# Kinds whose results an export leaves out.
RESULT_NOT_EXPORTED = ("export",)
# How long to let a worker stop a running job before removing SAQ's copy of it.
STOP_WAIT_S = 5.0

TABLE = str(JobRecord.__tablename__)


class JobsPersonalData:
    async def export(self, session: AsyncSession, owner_sub: str) -> dict[str, Rows]:
        rows = await JobRepository(session).all_for_owner(owner_sub)
        return {TABLE: [_exported(row) for row in rows]}

    async def erase(self, session: AsyncSession, owner_sub: str) -> Erasure:
        removed = await JobRepository(session).remove_for_owner(owner_sub, keep_kinds=KEPT_KINDS)

        async def forget_in_redis(redis: Redis) -> None:
            await forget_saq_copies(redis, removed)

        return Erasure({TABLE: len(removed)}, forget_in_redis if removed else None)


def _exported(row: Row[Any]) -> dict[str, Any]:
    values = dict(row._mapping)  # SQLAlchemy's public name-keyed view of a row
    values["job_id"] = values.pop("id")
    if values["kind"] in RESULT_NOT_EXPORTED:
        values["result"] = None
    return values


async def forget_saq_copies(redis: Redis, records: Sequence[Row[Any]]) -> None:
    """Abort what still runs, tell listeners, and delete SAQ's copies. Best effort: SAQ's
    own TTL removes a copy this misses (`SAQ_JOB_TTL_S`)."""
    by_queue: dict[str, list[Row[Any]]] = defaultdict(list)
    for record in records:
        by_queue[record.queue].append(record)
    publisher = ProgressPublisher(redis)
    try:
        for name, queued in by_queue.items():
            queue = RedisQueue(redis, name=name)
            keys = [str(record.id) for record in queued]
            stopping = []
            for key in keys:
                job = await queue.job(key)
                if job is not None and job.status not in TERMINAL_STATUSES:
                    await queue.abort(job, error=ERASED_MESSAGE)
                    stopping.append(key)
            await _wait_until_stopped(queue, stopping)
            await redis.delete(*(queue.job_id(key) for key in keys))
        for record in records:
            if record.status in UNFINISHED:
                await publisher.publish(_erased_message(record.id))
    except RedisError as exc:
        logger.warning("erased job records; their SAQ copies expire on their own: %r", exc)


async def _wait_until_stopped(queue: RedisQueue, keys: list[str]) -> None:
    """A running job's worker rewrites SAQ's copy when it stops: wait for that first."""
    deadline = asyncio.get_running_loop().time() + STOP_WAIT_S
    while keys and asyncio.get_running_loop().time() < deadline:
        jobs = [await queue.job(key) for key in keys]
        keys = [
            key
            for key, job in zip(keys, jobs, strict=True)
            if job is not None and job.status not in TERMINAL_STATUSES
        ]
        if keys:
            await asyncio.sleep(0.1)


def _erased_message(job_id: uuid.UUID) -> ProgressMessage:
    return ProgressMessage(
        job_id=str(job_id),
        status=JobStatus.ABORTED,
        progress=0,
        step=0,
        total_steps=0,
        payload=ProgressPayload(message=ERASED_MESSAGE),
    )


JOBS_PERSONAL_DATA = JobsPersonalData()
