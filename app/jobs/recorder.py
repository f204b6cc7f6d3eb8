"""Worker side: every change to a job's record is committed, then published.

Each change is conditional on the record's current status, so an abort by the owner, a
late write of a worker and the sweep are safe against each other without locks. A change
is one compiled UPDATE in autocommit (`JobRepository.change`): committed when it
returns, so the message that follows never announces an uncommitted state.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any

from app.jobs.progress import ProgressPublisher, progress_message
from app.jobs.repository import JobRepository, ProgressRow
from app.jobs.schemas import ProgressMessage
from app.jobs.status import UNFINISHED, JobStatus

__all__ = ["JobAborted", "JobStateWriter"]

MESSAGE_MAX = 500


class JobAborted(Exception):
    """The job's record left `active` (aborted, or failed by the sweep): stop working on it."""


class JobStateWriter:
    """Records a run's progress and outcome; publishes each change after committing it."""

    def __init__(self, repository: JobRepository, publisher: ProgressPublisher) -> None:
        self._repository = repository
        self._publisher = publisher

    async def _write(
        self,
        job_id: uuid.UUID,
        *,
        from_statuses: Sequence[str],
        unchanged_since: datetime.datetime | None = None,
        **values: Any,
    ) -> ProgressRow | None:
        row = await self._repository.change(
            job_id, from_statuses=from_statuses, unchanged_since=unchanged_since, **values
        )
        if row is not None:
            await self.publish(progress_message(row))
        return row

    async def publish(self, message: ProgressMessage) -> None:
        await self._publisher.publish(message)

    async def claim(self, job_id: uuid.UUID, attempt: int) -> bool:
        message = "Started" if attempt <= 1 else f"Started again (attempt {attempt})"
        row = await self._repository.claim(job_id, message)
        if row is not None:
            await self.publish(progress_message(row))
        return row is not None

    async def report(self, job_id: uuid.UUID, step: int, total_steps: int, message: str) -> None:
        progress = min(100, step * 100 // total_steps) if total_steps else 0
        row = await self._write(
            job_id,
            from_statuses=_ACTIVE,
            step=step,
            progress=progress,
            message=message[:MESSAGE_MAX],
        )
        if row is None:
            raise JobAborted(job_id)

    async def complete(self, job_id: uuid.UUID, result: Any, message: str) -> bool:
        row = await self._write(
            job_id,
            from_statuses=_ACTIVE,
            status=JobStatus.COMPLETE.value,
            progress=100,
            result=result,
            message=message[:MESSAGE_MAX],
        )
        return row is not None

    async def fail(
        self,
        job_id: uuid.UUID,
        error: str,
        *,
        from_statuses: Sequence[str] = (JobStatus.ACTIVE,),
        unchanged_since: datetime.datetime | None = None,
    ) -> bool:
        row = await self._write(
            job_id,
            from_statuses=from_statuses,
            unchanged_since=unchanged_since,
            status=JobStatus.FAILED.value,
            error=error[:MESSAGE_MAX],
            message=error[:MESSAGE_MAX],
        )
        return row is not None

    async def fail_unfinished(
        self, job_id: uuid.UUID, error: str, *, unchanged_since: datetime.datetime | None = None
    ) -> bool:
        """Fail a queued or active record (one that already finished keeps its outcome)."""
        return await self.fail(
            job_id, error, from_statuses=UNFINISHED, unchanged_since=unchanged_since
        )

    async def requeue(
        self, job_id: uuid.UUID, message: str, *, unchanged_since: datetime.datetime | None = None
    ) -> bool:
        """An active record goes back to `queued`: its job will run again from the start."""
        row = await self._write(
            job_id,
            from_statuses=_ACTIVE,
            unchanged_since=unchanged_since,
            status=JobStatus.QUEUED.value,
            message=message[:MESSAGE_MAX],
        )
        return row is not None


_ACTIVE = (JobStatus.ACTIVE.value,)
