"""Job request/response bodies and the progress message (README, "API reference")."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, Literal

import msgspec

from app.children.schemas import Child
from app.jobs.status import JobStatus

__all__ = [
    "DemoJobRequest",
    "DemoParams",
    "DemoResult",
    "EraseParams",
    "EraseReceipt",
    "ExportJobRequest",
    "ExportParams",
    "ExportResult",
    "ExportedChild",
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

JobKindName = Literal["demo", "export", "erase"]


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


class EraseParams(msgspec.Struct, forbid_unknown_fields=True):
    """An erasure takes no parameters: it always covers the caller's own data. It is
    started by `POST /v1/me/erase`, not by `POST /v1/jobs`."""


# --- POST /v1/jobs bodies: one per kind, told apart by `kind` ---------------------------


class DemoJobRequest(msgspec.Struct, tag_field="kind", tag="demo", forbid_unknown_fields=True):
    """Counts through `steps`, reporting progress after each one."""

    params: DemoParams = msgspec.field(default_factory=DemoParams)


class ExportJobRequest(msgspec.Struct, tag_field="kind", tag="export", forbid_unknown_fields=True):
    """Collects everything kept about the caller into the job's result ("Your data")."""

    params: ExportParams = msgspec.field(default_factory=ExportParams)


JobRequest = DemoJobRequest | ExportJobRequest

# --- results ----------------------------------------------------------------------------


# Tagged with the kind, so clients (and the OpenAPI document) can tell results apart.
class DemoResult(msgspec.Struct, kw_only=True, tag_field="kind", tag="demo"):
    steps: int
    message: str


Row = dict[str, Any]


class ExportedChild(Child, kw_only=True):
    """A child as stored, with the rows of every child-linked domain, by table."""

    linked: dict[str, list[Row]] = msgspec.field(default_factory=dict)


class ExportResult(msgspec.Struct, kw_only=True, tag_field="kind", tag="export"):
    """Everything the service keeps about the caller (README, "Your data"). Defaults let
    results stored by the previous format (children and visible projects) still read."""

    format: Annotated[int, msgspec.Meta(description="Version of this document's shape")] = 1
    exported_at: datetime.datetime
    sub: str = ""
    message: str
    profile: Annotated[
        Row, msgspec.Meta(description="Fields of the caller's own kept by the service")
    ] = msgspec.field(default_factory=dict)
    children: list[ExportedChild]
    projects: Annotated[
        list[Row], msgspec.Meta(description="Projects the caller created, deleted ones too")
    ]
    jobs: Annotated[
        list[Row], msgspec.Meta(description="The caller's jobs; exports' results left out")
    ] = msgspec.field(default_factory=list)
    other: Annotated[
        dict[str, list[Row]], msgspec.Meta(description="Any other table's rows, by table")
    ] = msgspec.field(default_factory=dict)


class EraseReceipt(msgspec.Struct, kw_only=True, tag_field="kind", tag="erase"):
    """What an erasure removed: rows of each kind (`<table>_left_with_tenant`: rows that
    stay with a tenant, no longer naming the caller)."""

    receipt_id: uuid.UUID
    erased_at: datetime.datetime
    counts: dict[str, int]
    message: str


JobResult = DemoResult | ExportResult | EraseReceipt

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
