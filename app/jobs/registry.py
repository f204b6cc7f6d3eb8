"""The job kinds a client may start, each with typed parameters and its SAQ limits.

Adding a kind: a params Struct and a request Struct (tagged with the kind's name) in
schemas.py, a body here, and an entry in `KINDS`. The body receives a `JobRun` for
reporting progress and for opening its own database sessions; it returns the result.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from uuid_utils.compat import uuid7

from app.clock import utc_now
from app.jobs.schemas import (
    DemoJobRequest,
    DemoParams,
    DemoResult,
    EraseParams,
    EraseReceipt,
    ExportedChild,
    ExportJobRequest,
    ExportParams,
    ExportResult,
)
from app.personal_data import ExportTooLarge, erase_personal_data, export_personal_data

__all__ = ["KINDS", "JobFailure", "JobKind", "JobRun", "check_result_size", "kind_of"]

P = TypeVar("P", bound=msgspec.Struct)
R = TypeVar("R", bound=msgspec.Struct)


class JobFailure(Exception):
    """A failure whose message is written for the client (stored as the job's `error`)."""


def check_result_size(size: int, limit: int) -> None:
    """A result is kept whole in the job's record, and only up to `limit` bytes of JSON
    (MAX_JOB_RESULT_BYTES): beyond it the job fails, saying so."""
    if size > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> JobFailure:
    return JobFailure(f"The result is larger than {limit} bytes, the most a job's result may hold")


class JobRun(Protocol):
    """What a running job can see and do."""

    @property
    def owner_sub(self) -> str: ...

    @property
    def tenant_id(self) -> str | None: ...

    async def report(self, step: int, message: str) -> None:
        """Record and publish progress; raises if the job was aborted meanwhile."""

    @property
    def max_result_bytes(self) -> int:
        """The largest result (its JSON, in bytes) the job may return."""

    @property
    def engine(self) -> AsyncEngine:
        """The worker's database engine, for readers that take their own connections."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A new database session of the job's own (commit it yourself)."""

    @property
    def redis(self) -> Redis:
        """The worker's Redis client (an erasure removes SAQ's copies with it)."""


@dataclass(frozen=True, slots=True)
class JobKind(Generic[P, R]):
    name: str
    request_type: type[msgspec.Struct]
    params_type: type[P]
    result_type: type[R]
    run: Callable[[JobRun, P], Awaitable[R]]
    total_steps: Callable[[P], int]
    # SAQ limits. `time_limit_s`: the run is cancelled and the job fails after this long.
    # `heartbeat_s`: the runner touches the SAQ job well within this, so SAQ's own sweep
    # can free a job whose worker vanished. `attempts`: total tries when a worker dies or
    # the body raises something other than JobFailure (1 = never retried).
    time_limit_s: Callable[[P], int]
    heartbeat_s: int
    attempts: int
    retry_delay_s: float = 1.0


# --- demo -------------------------------------------------------------------------------


async def run_demo(run: JobRun, params: DemoParams) -> DemoResult:
    for step in range(1, params.steps + 1):
        if params.delay_ms:
            await asyncio.sleep(params.delay_ms / 1000)
        if step == params.fail_at_step:
            # An unexpected error, as a bug would raise: its text stays in the worker log
            # and the client reads only a safe sentence.
            raise RuntimeError(f"demo crashed on purpose at step {step} (internal detail)")
        await run.report(step, f"Step {step} of {params.steps} done")
    return DemoResult(steps=params.steps, message=f"Counted {params.steps} steps")


DEMO: JobKind[DemoParams, DemoResult] = JobKind(
    name="demo",
    request_type=DemoJobRequest,
    params_type=DemoParams,
    result_type=DemoResult,
    run=run_demo,
    total_steps=lambda params: params.steps,
    # All the pauses plus a generous margin for the database and Redis writes.
    time_limit_s=lambda params: math.ceil(params.steps * params.delay_ms / 1000) + 30,
    heartbeat_s=30,
    # A demo that fails or loses its worker is reported as failed, not run again.
    attempts=1,
)

# --- export -----------------------------------------------------------------------------


async def run_export(run: JobRun, params: ExportParams) -> ExportResult:
    """Everything kept about the caller, every domain's part (app/personal_data.py)."""
    try:
        async with run.session() as session:
            found = await export_personal_data(
                session, run.owner_sub, max_bytes=run.max_result_bytes
            )
    except ExportTooLarge:  # fails early, holding at most one domain more than it may keep
        raise _too_large(run.max_result_bytes) from None
    await run.report(1, f"Collected {len(found.children)} children")
    tables = dict(found.tables)
    projects, jobs = tables.pop("projects", []), tables.pop("jobs", [])
    return ExportResult(
        exported_at=utc_now(),
        sub=run.owner_sub,
        message=f"Exported {len(found.children)} children and {len(projects)} projects",
        children=msgspec.convert(found.children, list[ExportedChild]),
        projects=projects,
        jobs=jobs,
        other=tables,
    )


EXPORT: JobKind[ExportParams, ExportResult] = JobKind(
    name="export",
    request_type=ExportJobRequest,
    params_type=ExportParams,
    result_type=ExportResult,
    run=run_export,
    total_steps=lambda params: 1,
    time_limit_s=lambda params: 120,
    heartbeat_s=30,
    # Read-only and cheap: worth one more try if its worker dies half-way.
    attempts=2,
)

# --- erase ------------------------------------------------------------------------------


async def run_erase(run: JobRun, params: EraseParams) -> EraseReceipt:
    """Remove everything kept about the caller (app/personal_data.py); the receipt says
    how much of each kind went, never what."""
    async with run.session() as session:
        counts = await erase_personal_data(session, run.owner_sub, run.redis)
    erased = sum(counts.values())
    return EraseReceipt(
        receipt_id=uuid.UUID(str(uuid7())),
        erased_at=utc_now(),
        counts=counts,
        message=f"Erased {erased} records",
    )


ERASE: JobKind[EraseParams, EraseReceipt] = JobKind(
    name="erase",
    request_type=EraseParams,  # started by POST /v1/me/erase, never by POST /v1/jobs
    params_type=EraseParams,
    result_type=EraseReceipt,
    run=run_erase,
    total_steps=lambda params: 1,
    time_limit_s=lambda params: 300,
    heartbeat_s=30,
    # One transaction, so a second try after a lost worker starts from a clean state.
    attempts=3,
)

KINDS: dict[str, JobKind[Any, Any]] = {kind.name: kind for kind in (DEMO, EXPORT, ERASE)}


def kind_of(request: msgspec.Struct) -> JobKind[Any, Any]:
    """The kind a POST /v1/jobs body asks for (its tag)."""
    tag = type(request).__struct_config__.tag
    return KINDS[str(tag)]
