"""Statements for job records, all on `JobRepository` (Advanced-Alchemy's repository).

Statements select the columns each caller needs: job rows only ever become JSON or a
progress message, so no ORM objects are built. Every state change is conditional on
the current status, which is what makes an abort, a late worker write and the sweep
safe against each other without locks (the one lock is an owner's admission lock, see
`count_open_for_owner`). Records are not row-scoped (the worker and the
sweep work across owners); methods that serve a caller take the caller's `owner_sub`.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.clock import utc_now
from app.db.repository import DomainRepository
from app.jobs.models import JobRecord
from app.jobs.status import UNFINISHED, JobStatus

__all__ = ["JOB_AND_PROGRESS_COLUMNS", "JOB_COLUMNS", "PROGRESS_COLUMNS", "JobRepository"]

_table = cast("Table", JobRecord.__table__)
_t = _table.c

# Seeds the hash of an owner's advisory-lock key, keeping these keys apart from any other
# advisory locks on the database.
_ADMISSION_LOCK_SEED = 0x6A6F6273

# What a `Job` response needs, and what a progress message needs.
JOB_COLUMNS = (
    _t.id,
    _t.kind,
    _t.status,
    _t.progress,
    _t.step,
    _t.total_steps,
    _t.result,
    _t.error,
    _t.created_at,
    _t.updated_at,
)
PROGRESS_COLUMNS = (_t.id, _t.status, _t.progress, _t.step, _t.total_steps, _t.message)
JOB_AND_PROGRESS_COLUMNS = (*JOB_COLUMNS, _t.message)

Executor = AsyncSession | AsyncConnection


class JobRepository(DomainRepository[JobRecord]):
    model_type = JobRecord

    def __init__(self, executor: Executor | None = None, **kwargs: Any) -> None:
        """`JobRepository(session)`; a bare connection (a reader outside any unit of
        work) gets a session of its own on that connection."""
        if isinstance(executor, AsyncConnection):
            executor = AsyncSession(bind=executor)
        if executor is not None:
            kwargs["session"] = executor
        super().__init__(**kwargs)
        self._db = self.session

    # --- reads --------------------------------------------------------------------------

    async def get_for_owner(self, job_id: uuid.UUID, owner_sub: str) -> Row[Any] | None:
        statement = select(*JOB_COLUMNS).where(_t.id == job_id, _t.owner_sub == owner_sub)
        return (await self._db.execute(statement)).first()

    async def progress_for_owner(self, job_id: uuid.UUID, owner_sub: str) -> Row[Any] | None:
        statement = select(*PROGRESS_COLUMNS).where(_t.id == job_id, _t.owner_sub == owner_sub)
        return (await self._db.execute(statement)).first()

    async def exists_for_owner(self, job_id: uuid.UUID, owner_sub: str) -> bool:
        statement = select(_t.id).where(_t.id == job_id, _t.owner_sub == owner_sub)
        return (await self._db.execute(statement)).first() is not None

    async def page_for_owner(
        self, owner_sub: str, *, limit: int, offset: int, status: str | None
    ) -> tuple[Sequence[Row[Any]], int | None]:
        """Newest first, with the total in the same round trip (None when the page is empty)."""
        statement = (
            select(*JOB_COLUMNS, func.count().over().label("total"))
            .where(_t.owner_sub == owner_sub)
            .order_by(_t.created_at.desc(), _t.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if status is not None:
            statement = statement.where(_t.status == status)
        rows = (await self._db.execute(statement)).all()
        return rows, (rows[0].total if rows else None)

    async def count_for_owner(self, owner_sub: str, status: str | None) -> int:
        statement = select(func.count()).where(_t.owner_sub == owner_sub)
        if status is not None:
            statement = statement.where(_t.status == status)
        return int((await self._db.execute(statement)).scalar_one())

    async def count_open_for_owner(self, owner_sub: str) -> int:
        """The owner's queued and active jobs (for MAX_OPEN_JOBS_PER_USER), counted under
        the owner's admission lock.

        The lock (a transaction-level advisory lock on the owner) is held until this
        transaction ends, so a count and the insert that follows it are one step for that
        owner: two requests (in any API processes) cannot both count 19 and both add
        the 20th. Another owner's requests never wait for it.
        """
        owner_key = func.hashtextextended(owner_sub, _ADMISSION_LOCK_SEED)
        await self._db.execute(select(func.pg_advisory_xact_lock(owner_key)))
        statement = select(func.count()).where(_t.owner_sub == owner_sub, _t.status.in_(UNFINISHED))
        return int((await self._db.execute(statement)).scalar_one())

    async def unfinished(
        self,
        queue: str,
        status: JobStatus,
        *,
        limit: int,
        after: tuple[datetime.datetime, uuid.UUID] | None = None,
    ) -> Sequence[Row[Any]]:
        """A queue's records in one unfinished status, by (updated_at, id), after `after`.

        For the sweep: active records are few (workers x concurrency) and read whole;
        queued ones may be thousands, so they are read a page at a time from a cursor.
        """
        statement = (
            select(_t.id, _t.status, _t.updated_at)
            .where(_t.queue == queue, _t.status == status)
            .order_by(_t.updated_at, _t.id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(
                tuple_(_t.updated_at, _t.id) > tuple_(literal(after[0]), literal(after[1]))
            )
        return (await self._db.execute(statement)).all()

    async def counts(self) -> Sequence[Row[Any]]:
        """(kind, status, count) over every record still kept, for the metrics."""
        statement = select(_t.kind, _t.status, func.count()).group_by(_t.kind, _t.status)
        return (await self._db.execute(statement)).all()

    async def recent_durations(
        self, since: datetime.timedelta, quantiles: Sequence[float]
    ) -> Sequence[Row[Any]]:
        """(kind, seconds at each quantile) from request to completion, jobs completed lately."""
        seconds = func.extract("epoch", _t.updated_at - _t.created_at)
        statement = (
            select(
                _t.kind,
                *(
                    func.percentile_cont(q).within_group(seconds).label(f"q{i}")
                    for i, q in enumerate(quantiles)
                ),
            )
            .where(_t.status == JobStatus.COMPLETE, _t.updated_at >= utc_now() - since)
            .group_by(_t.kind)
        )
        return (await self._db.execute(statement)).all()

    # --- writes -------------------------------------------------------------------------

    # Named like Advanced-Alchemy's `add` because callers know it so; a record is built
    # from values here rather than passed in as a model.
    async def add(  # type: ignore[override]
        self,
        *,
        job_id: uuid.UUID,
        owner_sub: str,
        kind: str,
        queue: str,
        params: dict[str, Any],
        total_steps: int,
        message: str,
    ) -> Row[Any]:
        now = utc_now()
        statement = (
            insert(_table)
            .values(
                id=job_id,
                owner_sub=owner_sub,
                kind=kind,
                queue=queue,
                params=params,
                status=JobStatus.QUEUED,
                progress=0,
                step=0,
                total_steps=total_steps,
                message=message,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .returning(*JOB_COLUMNS)
        )
        return (await self._db.execute(statement)).one()

    async def remove(self, job_id: uuid.UUID) -> None:
        await self._db.execute(delete(_table).where(_t.id == job_id))

    async def transition(
        self,
        job_id: uuid.UUID,
        *,
        from_statuses: Sequence[str],
        owner_sub: str | None = None,
        returning: Sequence[Any] = PROGRESS_COLUMNS,
        **values: Any,
    ) -> Row[Any] | None:
        """Apply `values` if the job is in one of `from_statuses`; the new row, or None."""
        statement = (
            update(_table)
            .where(_t.id == job_id, _t.status.in_(from_statuses))
            .values(updated_at=utc_now(), **values)
            .returning(*returning)
        )
        if owner_sub is not None:
            statement = statement.where(_t.owner_sub == owner_sub)
        return (await self._db.execute(statement)).first()

    async def claim(self, job_id: uuid.UUID, message: str) -> Row[Any] | None:
        """Mark a queued (or re-run) job active for a new attempt; None if it was aborted."""
        return await self.transition(
            job_id,
            from_statuses=UNFINISHED,
            status=JobStatus.ACTIVE,
            progress=0,
            step=0,
            message=message,
            error=None,
            attempts=_t.attempts + 1,
        )

    async def purge_finished(self, older_than: datetime.timedelta) -> int:
        statement = delete(_table).where(
            _t.status.not_in(UNFINISHED), _t.updated_at < utc_now() - older_than
        )
        result = await self._db.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
