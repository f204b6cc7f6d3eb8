"""The job kinds a client may start, each with typed parameters and its SAQ limits.

Adding a kind: a params Struct and a request Struct (tagged with the kind's name) in
schemas.py, a body here, and an entry in `KINDS`. The body receives a `JobRun` for
reporting progress and for opening its own database sessions; it returns the result.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.children.service import ChildService
from app.clock import utc_now
from app.jobs.schemas import (
    DemoJobRequest,
    DemoParams,
    DemoResult,
    ExportJobRequest,
    ExportParams,
    ExportResult,
)
from app.projects.schemas import Project, ProjectSort
from app.projects.service import ProjectService

__all__ = ["KINDS", "JobFailure", "JobKind", "JobRun", "kind_of"]

P = TypeVar("P", bound=msgspec.Struct)
R = TypeVar("R", bound=msgspec.Struct)


class JobFailure(Exception):
    """A failure whose message is written for the client (stored as the job's `error`)."""


class JobRun(Protocol):
    """What a running job can see and do."""

    @property
    def owner_sub(self) -> str: ...

    @property
    def tenant_id(self) -> str | None: ...

    async def report(self, step: int, message: str) -> None:
        """Record and publish progress; raises if the job was aborted meanwhile."""

    @property
    def engine(self) -> AsyncEngine:
        """The worker's database engine, for readers that take their own connections."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A new database session of the job's own (commit it yourself)."""


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
    """The caller's children and the projects the caller can see, as the API shows them."""
    # The same services as the API's, with the caller's scope at the time the export
    # was asked for: the same rules, written once.
    async with run.session() as session:
        children = await ChildService.for_parent(session, run.owner_sub).list_children()
        await run.report(1, f"Collected {len(children)} children")
        projects_of_caller = ProjectService.for_caller(
            session, tenant_id=run.tenant_id, owner_sub=run.owner_sub
        )
        projects: list[Project] = []
        while True:  # oldest first, so projects created meanwhile can only come after
            page = await projects_of_caller.list_projects(
                limit=EXPORT_PAGE, offset=len(projects), q=None, sort=ProjectSort.OLDEST
            )
            projects += page.items
            if not page.items or len(projects) >= page.total:
                break
    await run.report(2, f"Collected {len(projects)} projects")
    return ExportResult(
        exported_at=utc_now(),
        message=f"Exported {len(children)} children and {len(projects)} projects",
        children=children,
        projects=projects,
    )


EXPORT_PAGE = 100


EXPORT: JobKind[ExportParams, ExportResult] = JobKind(
    name="export",
    request_type=ExportJobRequest,
    params_type=ExportParams,
    result_type=ExportResult,
    run=run_export,
    total_steps=lambda params: 2,
    time_limit_s=lambda params: 120,
    heartbeat_s=30,
    # Read-only and cheap: worth one more try if its worker dies half-way.
    attempts=2,
)

KINDS: dict[str, JobKind[Any, Any]] = {kind.name: kind for kind in (DEMO, EXPORT)}


def kind_of(request: msgspec.Struct) -> JobKind[Any, Any]:
    """The kind a POST /v1/jobs body asks for (its tag)."""
    tag = type(request).__struct_config__.tag
    return KINDS[str(tag)]
