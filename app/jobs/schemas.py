"""Job request/response bodies and the progress message (README, "API reference")."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Literal

import msgspec

from app.children.schemas import Child
from app.jobs.status import JobStatus
from app.projects.schemas import Project

__all__ = [
    "DemoJobRequest",
    "DemoParams",
    "DemoResult",
    "ExportJobRequest",
    "ExportParams",
    "Job",
    "JobKindName",
    "JobPage",
    "JobRequest",
    "JobResult",
    "JobStatus",
    "JobSummary",
    "ProgressMessage",
    "ProgressPayload",
]

JobKindName = Literal["demo", "export"]


# --- parameters of each kind (strict: unknown fields are a 400 naming them) -------------


class DemoParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    steps: Annotated[int, msgspec.Meta(ge=1, le=100, description="How many steps to run")] = 10
    delay_ms: Annotated[
        int, msgspec.Meta(ge=0, le=10_000, description="Pause after each step, in milliseconds")
    ] = 200
    fail_at_step: (
        Annotated[
            int,
            msgspec.Meta(
                ge=1,
                le=100,
                description="Crash on purpose at this step, to see how a failed job looks",
            ),
        ]
        | None
    ) = None


class ExportParams(msgspec.Struct, forbid_unknown_fields=True):
    """The export takes no parameters: it always covers the caller's own data."""


# --- POST /v1/jobs bodies: one per kind, told apart by `kind` ---------------------------


class DemoJobRequest(msgspec.Struct, tag_field="kind", tag="demo", forbid_unknown_fields=True):
    """Counts through `steps`, reporting progress after each one."""

    params: DemoParams = msgspec.field(default_factory=DemoParams)


class ExportJobRequest(msgspec.Struct, tag_field="kind", tag="export", forbid_unknown_fields=True):
    """Collects the caller's children and projects into the job's result."""

    params: ExportParams = msgspec.field(default_factory=ExportParams)


JobRequest = DemoJobRequest | ExportJobRequest

# --- results ----------------------------------------------------------------------------


# Tagged with the kind, so clients (and the OpenAPI document) can tell results apart.
class DemoResult(msgspec.Struct, kw_only=True, tag_field="kind", tag="demo"):
    steps: int
    message: str


class ExportResult(msgspec.Struct, kw_only=True, tag_field="kind", tag="export"):
    exported_at: datetime.datetime
    message: str
    children: list[Child]
    projects: list[Project]


JobResult = DemoResult | ExportResult

# --- responses --------------------------------------------------------------------------


class JobSummary(msgspec.Struct, kw_only=True):
    """A job in a list: everything but its result (read the job itself for that), so a
    page stays small however large the results."""

    job_id: uuid.UUID
    kind: JobKindName
    status: JobStatus
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)]
    step: int
    total_steps: int
    error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class Job(JobSummary, kw_only=True):
    """One job, with its result once it has completed."""

    result: JobResult | None


class JobPage(msgspec.Struct, kw_only=True):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int


class ProgressPayload(msgspec.Struct):
    message: str


class ProgressMessage(msgspec.Struct, kw_only=True):
    """One WebSocket / Redis pub/sub message: the job's state after an update."""

    job_id: str
    status: JobStatus
    progress: int
    step: int
    total_steps: int
    payload: ProgressPayload
