"""Statements for job records, all on `JobRepository` (Advanced-Alchemy's repository).

Statements select the columns each caller needs: job rows only ever become JSON or a
progress message, so no ORM objects are built. The hot ones (a POST's admission and
insert, every state change a worker makes) are compiled once and run on the driver
(`app/db/precompiled.py`), in autocommit or in one short transaction, without a session. Every
state change is conditional on the current status, which is what makes an abort, a late
worker write and the sweep safe against each other without locks (the one lock is an
owner's admission lock, see `add`). Records are not row-scoped (the worker and the
sweep work across owners); methods that serve a caller take the caller's `owner_sub`.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any, cast

import msgspec
from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.clock import utc_now
from app.db.driver import driver_connection
from app.db.precompiled import PrecompiledStatement
from app.db.repository import DomainRepository
from app.jobs.models import JobRecord
from app.jobs.schemas import JobKindName
from app.jobs.status import UNFINISHED, JobStatus

__all__ = [
    "JOB_AND_PROGRESS_COLUMNS",
    "JOB_COLUMNS",
    "JOB_SUMMARY_COLUMNS",
    "PROGRESS_COLUMNS",
    "JobRepository",
    "JobRow",
    "ProgressRow",
]

_table = cast("Table", JobRecord.__table__)
_t = _table.c

# Seeds the hash of an owner's advisory-lock key, keeping these keys apart from any other
# advisory locks on the database.
_ADMISSION_LOCK_SEED = 0x6A6F6273

# What a listed job (`JobSummary`) needs, what a `Job` response needs, and what a
# progress message needs. Lists never read the result column.
JOB_SUMMARY_COLUMNS = (
    _t.id,
    _t.kind,
    _t.status,
    _t.progress,
    _t.step,
    _t.total_steps,
    _t.error,
    _t.created_at,
    _t.updated_at,
)
JOB_COLUMNS = (*JOB_SUMMARY_COLUMNS, _t.result)
PROGRESS_COLUMNS = (_t.id, _t.status, _t.progress, _t.step, _t.total_steps, _t.message)
JOB_AND_PROGRESS_COLUMNS = (*JOB_COLUMNS, _t.message)

Executor = AsyncSession | AsyncConnection | AsyncEngine


class JobRow(msgspec.Struct):
    """A record's `JOB_COLUMNS`, as the fast statements return them."""

    id: uuid.UUID
    kind: JobKindName
    status: str
    progress: int
    step: int
    total_steps: int
    result: Any
    error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ProgressRow(msgspec.Struct):
    """A record's `PROGRESS_COLUMNS`, as the fast statements return them."""

    id: uuid.UUID
    status: str
    progress: int
    step: int
    total_steps: int
    message: str


class _Locked(msgspec.Struct):
    pass


def _param(column: str) -> Any:
    """The bind parameter carrying a new value of `column` (named apart from the column,
    as SQLAlchemy asks for explicit parameters in a SET or VALUES clause)."""
    return bindparam(f"new_{column}", type_=_t[column].type)


def _status_in(statuses: Sequence[str]) -> ColumnElement[bool]:
    # OR of equalities rather than IN: IN takes a list parameter, which SQLAlchemy
    # expands per call, and a compiled-once statement has none.
    return or_(*(_t.status == status for status in statuses))


# Every column a new record is written with, in the INSERT's order.
_NEW_RECORD = (
    "id",
    "owner_sub",
    "kind",
    "queue",
    "params",
    "status",
    "progress",
    "step",
    "total_steps",
    "message",
    "attempts",
    "created_at",
    "updated_at",
)


def _add_statement(capped: bool) -> Any:
    """INSERT a record; `capped`: only while the owner has fewer than `max_open` queued
    or active records (run after taking the owner's admission lock, see `add`)."""
    values = {column: _param(column) for column in _NEW_RECORD}
    if not capped:
        return insert(_table).values(values).returning(*JOB_COLUMNS)
    open_jobs = (
        select(func.count())
        .where(_t.owner_sub == values["owner_sub"], _status_in(UNFINISHED))
        .scalar_subquery()
    )
    room = select(*values.values()).where(open_jobs < bindparam("max_open"))
    return insert(_table).from_select(list(values), room).returning(*JOB_COLUMNS)


_ADD = PrecompiledStatement(lambda: _add_statement(capped=False), JobRow)
_ADD_IF_ROOM = PrecompiledStatement(lambda: _add_statement(capped=True), JobRow)
_ADMISSION_LOCK = PrecompiledStatement(
    lambda: select(
        func.pg_advisory_xact_lock(
            func.hashtextextended(
                bindparam("owner_sub", type_=_t.owner_sub.type), _ADMISSION_LOCK_SEED
            )
        ).label("locked")
    ),
    _Locked,
)

# (from statuses, changed columns, attempts counted, only if unchanged since) -> UPDATE
_ChangeShape = tuple[tuple[str, ...], tuple[str, ...], bool, bool]
_CHANGES: dict[_ChangeShape, PrecompiledStatement[ProgressRow]] = {}


def _change_statement(shape: _ChangeShape) -> PrecompiledStatement[ProgressRow]:
    """The compiled UPDATE for one shape of state change (a handful exist)."""
    statement = _CHANGES.get(shape)
    if statement is None:
        from_statuses, columns, count_attempt, if_unchanged = shape

        def build() -> Any:
            values: dict[str, Any] = {column: _param(column) for column in columns}
            values["updated_at"] = _param("updated_at")
            if count_attempt:
                values["attempts"] = _t.attempts + 1
            conditions = [_t.id == bindparam("job_id", type_=_t.id.type), _status_in(from_statuses)]
            if if_unchanged:
                conditions.append(_t.updated_at == bindparam("read_at", type_=_t.updated_at.type))
            return update(_table).where(*conditions).values(values).returning(*PROGRESS_COLUMNS)

        statement = _CHANGES[shape] = PrecompiledStatement(build, ProgressRow)
    return statement


class JobRepository(DomainRepository[JobRecord]):
    model_type = JobRecord

    def __init__(self, executor: Executor | None = None, **kwargs: Any) -> None:
        """`JobRepository(session)`; a bare connection (a reader outside any unit of
        work) or an engine (the worker's state changes, which are fast statements
        only) gets a session of its own on it."""
        if isinstance(executor, AsyncConnection | AsyncEngine):
            executor = AsyncSession(bind=executor)
        if executor is not None:
            kwargs["session"] = executor
        super().__init__(**kwargs)
        self._db = self.session

    @property
    def _engine(self) -> AsyncEngine:
        """Where the fast statements run: each on a pooled connection of its own."""
        bind = self._db.bind
        if not isinstance(bind, AsyncEngine):
            raise TypeError("the fast statements need a repository bound to an AsyncEngine")
        return bind

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
            select(*JOB_SUMMARY_COLUMNS, func.count().over().label("total"))
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

    async def all_for_owner(self, owner_sub: str) -> Sequence[Row[Any]]:
        """Every record of the owner, oldest first (their export), with its parameters."""
        statement = (
            select(*JOB_COLUMNS, _t.params, _t.message)
            .where(_t.owner_sub == owner_sub)
            .order_by(_t.created_at, _t.id)
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
        max_open: int = 0,
    ) -> JobRow | None:
        """Insert a queued record, committed when this returns; None (nothing written)
        when `max_open` is set and the owner already has that many queued or active.

        Uncapped: one INSERT in autocommit. Capped: one transaction that first takes the
        owner's admission lock (a transaction-level advisory lock on the owner), then
        counts and inserts in one statement, whose snapshot is taken after the lock is
        granted. Two requests (in any API processes) cannot both count 19 and both add
        the 20th; another owner's requests never wait for the lock.
        """
        now = utc_now()
        values = {
            "new_id": job_id,
            "new_owner_sub": owner_sub,
            "new_kind": kind,
            "new_queue": queue,
            "new_params": params,
            "new_status": JobStatus.QUEUED.value,
            "new_progress": 0,
            "new_step": 0,
            "new_total_steps": total_steps,
            "new_message": message,
            "new_attempts": 0,
            "new_created_at": now,
            "new_updated_at": now,
        }
        engine = self._engine
        if not max_open:
            return await _ADD.one_or_none(engine, **values)
        async with driver_connection(engine) as connection, connection.transaction():
            await _ADMISSION_LOCK.rows_on(connection, engine.dialect, owner_sub=owner_sub)
            rows = await _ADD_IF_ROOM.rows_on(
                connection, engine.dialect, **values, max_open=max_open
            )
        found = rows.structs()
        return found[0] if found else None

    async def remove(self, job_id: uuid.UUID) -> None:
        await self._db.execute(delete(_table).where(_t.id == job_id))

    async def remove_for_owner(
        self, owner_sub: str, *, keep_kinds: Sequence[str]
    ) -> Sequence[Row[Any]]:
        """Delete the owner's records but those of `keep_kinds`; the (id, queue, status)
        of each, for removing their SAQ copies."""
        statement = (
            delete(_table)
            .where(_t.owner_sub == owner_sub, _t.kind.not_in(keep_kinds))
            .returning(_t.id, _t.queue, _t.status)
        )
        return (await self._db.execute(statement)).all()

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

    async def change(
        self,
        job_id: uuid.UUID,
        *,
        from_statuses: Sequence[str],
        unchanged_since: datetime.datetime | None = None,
        count_attempt: bool = False,
        **values: Any,
    ) -> ProgressRow | None:
        """Apply `values` if the job is in one of `from_statuses` (and, with
        `unchanged_since`, was last changed exactly then): the new progress columns, or
        None. One compiled UPDATE in autocommit: committed when this returns.

        `unchanged_since` makes a decision taken on an earlier read (the sweep's) apply
        only to the record as it was read, not to one a worker changed meanwhile.
        """
        statuses = tuple(str(status) for status in from_statuses)
        shape = (statuses, tuple(values), count_attempt, unchanged_since is not None)
        statement = _change_statement(shape)
        params = {f"new_{column}": value for column, value in values.items()}
        params.update(job_id=job_id, new_updated_at=utc_now(), read_at=unchanged_since)
        try:
            return await statement.one_or_none(self._engine, **params)
        except ConnectionError:
            # The worker's pool does not ping: after a PostgreSQL restart every idle
            # connection is dead. Start a fresh pool and try once more (the same UPDATE
            # again is harmless: it sets the same values, under the same conditions).
            await self._engine.dispose()
            return await statement.one_or_none(self._engine, **params)

    async def claim(self, job_id: uuid.UUID, message: str) -> ProgressRow | None:
        """Mark a queued (or re-run) job active for a new attempt; None if it was aborted."""
        return await self.change(
            job_id,
            from_statuses=UNFINISHED,
            count_attempt=True,
            status=JobStatus.ACTIVE.value,
            progress=0,
            step=0,
            message=message,
            error=None,
        )

    async def purge_finished(
        self, older_than: datetime.timedelta, *, now: datetime.datetime | None = None
    ) -> int:
        statement = delete(_table).where(
            _t.status.not_in(UNFINISHED), _t.updated_at < (now or utc_now()) - older_than
        )
        result = await self._db.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
