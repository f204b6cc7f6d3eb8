"""Worker side: every change to a job's record is committed, then published.

Each change is conditional on the record's current status, so an abort by the owner, a
late write of a worker and the sweep are safe against each other without locks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.progress import ProgressPublisher, progress_message
from app.jobs.repository import JobRepository
from app.jobs.schemas import ProgressMessage
from app.jobs.status import UNFINISHED, JobStatus

__all__ = ["JobAborted", "JobStateWriter"]

MESSAGE_MAX = 500


class JobAborted(Exception):
    """The job's record left `active` (aborted, or failed by the sweep): stop working on it."""


class JobStateWriter:
    """Records a run's progress and outcome; publishes each change after committing it."""

    def __init__(
        self,
        session_factory: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        publisher: ProgressPublisher,
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher

    async def _write(self, change: Callable[[JobRepository], Any]) -> Row[Any] | None:
        async with self._session_factory() as session:
            row: Row[Any] | None = await change(JobRepository(session))
            await session.commit()
        if row is not None:
            await self.publish(progress_message(row))
        return row

    async def publish(self, message: ProgressMessage) -> None:
        await self._publisher.publish(message)

    async def claim(self, job_id: uuid.UUID, attempt: int) -> bool:
        message = "Started" if attempt <= 1 else f"Started again (attempt {attempt})"
        return await self._write(lambda repo: repo.claim(job_id, message)) is not None

    async def report(self, job_id: uuid.UUID, step: int, total_steps: int, message: str) -> None:
        progress = min(100, step * 100 // total_steps) if total_steps else 0
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=(JobStatus.ACTIVE,),
                step=step,
                progress=progress,
                message=message[:MESSAGE_MAX],
            )
        )
        if row is None:
            raise JobAborted(job_id)

    async def complete(self, job_id: uuid.UUID, result: Any, message: str) -> bool:
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=(JobStatus.ACTIVE,),
                status=JobStatus.COMPLETE,
                progress=100,
                result=result,
                message=message[:MESSAGE_MAX],
            )
        )
        return row is not None

    async def fail(
        self,
        job_id: uuid.UUID,
        error: str,
        *,
        from_statuses: Sequence[JobStatus] = (JobStatus.ACTIVE,),
    ) -> bool:
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=from_statuses,
                status=JobStatus.FAILED,
                error=error[:MESSAGE_MAX],
                message=error[:MESSAGE_MAX],
            )
        )
        return row is not None

    async def fail_unfinished(self, job_id: uuid.UUID, error: str) -> bool:
        """Fail a queued or active record (one that already finished keeps its outcome)."""
        return await self.fail(job_id, error, from_statuses=UNFINISHED)

    async def requeue(self, job_id: uuid.UUID, message: str) -> bool:
        """An active record goes back to `queued`: its job will run again from the start."""
        row = await self._write(
            lambda repo: repo.transition(
                job_id,
                from_statuses=(JobStatus.ACTIVE,),
                status=JobStatus.QUEUED,
                message=message[:MESSAGE_MAX],
            )
        )
        return row is not None
