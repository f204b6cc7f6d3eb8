"""The sweep: no job stays `active` after its worker died, and records agree with SAQ.

It runs in every worker on a timer of its own (`JOB_SWEEP_INTERVAL_SECONDS`), never as
a job on the queue: a cron job would wait behind the backlog it is meant to rescue. A
Redis lock lets one worker sweep per interval. Each sweep reads every `active` record
of its queue (at most the workers' total concurrency, so it always finds a dead
worker's jobs) and one page of `queued` records, continuing where the last sweep
stopped, so any backlog is covered in turn. It speaks only when it changes something.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saq import Job as SaqJob
from saq.job import Status
from saq.queue import Queue
from sqlalchemy import Row

from app.clock import utc_now
from app.jobs.repository import JobRepository
from app.jobs.resources import WorkerResources, alive_key
from app.jobs.status import JobStatus

__all__ = [
    "LOST",
    "RETRY_PENDING",
    "SWEEP_PAGE",
    "WORKER_LOST",
    "SweepResult",
    "Sweeper",
]

logger = logging.getLogger(__name__)

# Errors a client may read: never a traceback or a driver message.
WORKER_LOST = "The worker running this job stopped unexpectedly"
LOST = "The job was lost before it could finish"
UNEXPECTED = "The job failed unexpectedly"
RETRY_PENDING = "Waiting to retry after an interruption"

# How long a record may lag SAQ before the sweep corrects it (the worker writes the
# outcome right after SAQ's own bookkeeping), and how long a queued record may have
# no SAQ job at all (the API creates the record a moment before enqueueing).
SETTLE = datetime.timedelta(seconds=10)
UNQUEUED_GRACE = datetime.timedelta(seconds=60)
SWEEP_PAGE = 500


@dataclass(frozen=True)
class SweepResult:
    checked: int = 0
    changed: int = 0


class Sweeper:
    def __init__(self, resources: WorkerResources, queue: Queue) -> None:
        self._resources = resources
        self._queue = queue
        # Where the next page of queued records starts (None: from the oldest).
        self._queued_after: tuple[datetime.datetime, uuid.UUID] | None = None

    @property
    def lock_key(self) -> str:
        return f"jobs:sweep-lock:{self._queue.name}"

    async def run_forever(self, interval_s: float) -> None:
        failing = False
        while True:
            await asyncio.sleep(interval_s)
            try:
                # Held a little less than the interval, so the next tick anywhere may sweep.
                if await self._resources.redis.set(
                    self.lock_key, b"1", px=max(int(interval_s * 900), 100), nx=True
                ):
                    await self.sweep()
            except Exception as exc:  # the next tick tries again
                if not failing:
                    logger.warning("job sweep failed: %r", exc)
                failing = True
            else:
                failing = False

    async def sweep(self) -> SweepResult:
        """One pass: every active record, then the next page of queued ones."""
        checked = changed = 0
        after: tuple[datetime.datetime, uuid.UUID] | None = None
        while True:  # active records: bounded by the workers' concurrency
            rows = await self._records(JobStatus.ACTIVE, after)
            checked, changed = checked + len(rows), changed + await self._settle_all(rows)
            if len(rows) < SWEEP_PAGE:
                break
            after = (rows[-1].updated_at, rows[-1].id)
        rows = await self._records(JobStatus.QUEUED, self._queued_after)
        checked, changed = checked + len(rows), changed + await self._settle_all(rows)
        self._queued_after = (rows[-1].updated_at, rows[-1].id) if len(rows) == SWEEP_PAGE else None
        if changed:
            logger.info("job sweep corrected %d of %d unfinished jobs", changed, checked)
        return SweepResult(checked=checked, changed=changed)

    async def _records(
        self, status: JobStatus, after: tuple[datetime.datetime, uuid.UUID] | None
    ) -> Sequence[Row[Any]]:
        async with self._resources.sessions() as session:
            return await JobRepository(session).unfinished(
                self._queue.name, status, limit=SWEEP_PAGE, after=after
            )

    async def _settle_all(self, rows: Sequence[Row[Any]]) -> int:
        if not rows:
            return 0
        saq_jobs = await self._queue.jobs([str(row.id) for row in rows])
        worker_ids = {job.worker_id for job in saq_jobs if job is not None and job.worker_id}
        alive = await self._alive_workers(worker_ids)
        now = utc_now()
        changed = 0
        for row, saq_job in zip(rows, saq_jobs, strict=True):
            if await self._settle(row.id, now - row.updated_at, saq_job, alive):
                changed += 1
        return changed

    async def _alive_workers(self, worker_ids: set[str]) -> set[str]:
        ordered = sorted(worker_ids)
        if not ordered:
            return set()
        keys = [alive_key(self._queue.name, worker) for worker in ordered]
        flags = await self._resources.redis.mget(keys)
        return {worker for worker, flag in zip(ordered, flags, strict=True) if flag is not None}

    async def _settle(
        self,
        record_id: uuid.UUID,
        age: datetime.timedelta,
        saq_job: SaqJob | None,
        alive: set[str],
    ) -> bool:
        writer = self._resources.writer
        if saq_job is None:
            # Never enqueued (the API lost Redis mid-request) or expired from SAQ.
            return age > UNQUEUED_GRACE and await writer.fail_unfinished(record_id, LOST)
        running = saq_job.status in (Status.ACTIVE, Status.ABORTING)
        if running and saq_job.worker_id and saq_job.worker_id not in alive:
            if saq_job.retryable:
                await self._queue.retry(saq_job, "worker stopped")
                return await writer.requeue(record_id, RETRY_PENDING)
            await self._queue.finish(saq_job, Status.FAILED, error="worker stopped")
            return await writer.fail_unfinished(record_id, WORKER_LOST)
        if age < SETTLE:
            return False
        if saq_job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
            # SAQ finished it (e.g. its own sweep) but the record never heard.
            error = WORKER_LOST if saq_job.status == Status.ABORTED else UNEXPECTED
            return await writer.fail_unfinished(record_id, error)
        if saq_job.status == Status.QUEUED:
            return await writer.requeue(record_id, RETRY_PENDING)
        return False
