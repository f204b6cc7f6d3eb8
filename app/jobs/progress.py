"""Progress messages and the one place they are published.

Every change to a job is committed to its row first and published second, on
`job_progress:{job_id}`, so a listener that subscribes and then reads the row has missed
nothing. The API (an abort) and the worker (every step and outcome) both publish through
`ProgressPublisher`.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Row

from app.jobs.schemas import ProgressMessage, ProgressPayload
from app.jobs.status import JobStatus

if TYPE_CHECKING:
    from app.jobs.repository import ProgressRow

__all__ = ["ProgressPublisher", "parse_job_id", "progress_channel", "progress_message"]

logger = logging.getLogger(__name__)

encode = msgspec.json.Encoder().encode


def progress_channel(job_id: uuid.UUID | str) -> str:
    """The Redis pub/sub channel that carries a job's progress messages."""
    return f"job_progress:{job_id}"


def parse_job_id(raw: str) -> uuid.UUID | None:
    """A job id from a path; None when it cannot be one (answered like an unknown job)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def progress_message(row: Row[Any] | ProgressRow) -> ProgressMessage:
    """The message for a row holding the progress columns."""
    return ProgressMessage(
        job_id=str(row.id),
        status=JobStatus(row.status),
        progress=row.progress,
        step=row.step,
        total_steps=row.total_steps,
        payload=ProgressPayload(message=row.message),
    )


class ProgressPublisher:
    """Sends a job's state to its channel. Best effort: the row is the truth."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, message: ProgressMessage) -> None:
        """Publish; a Redis error is logged, never raised (listeners resync from the row)."""
        try:
            await self.publish_or_raise(message)
        except RedisError as exc:
            logger.warning("could not publish progress of job %s: %r", message.job_id, exc)

    async def publish_or_raise(self, message: ProgressMessage) -> None:
        await self._redis.publish(progress_channel(message.job_id), encode(message))
