"""The durable record of a job: who asked for it, what it is, where it got to.

SAQ keeps its own copy in Redis for scheduling; this row is what clients read. It is the
state a late WebSocket listener starts from, it survives API, worker and Redis restarts,
and it outlives SAQ's copy (kept for `Settings.job_state_ttl_s`).
"""

from __future__ import annotations

from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy import CheckConstraint, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.jobs.status import UNFINISHED, JobStatus

__all__ = ["JobRecord"]


class JobRecord(UUIDv7AuditBase):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(status.value) for status in JobStatus)})",
            name="status_known",
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
    )

    owner_sub: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # The SAQ queue it was sent to: a worker's sweep judges only its own queue's jobs.
    queue: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    progress: Mapped[int] = mapped_column(SmallInteger, default=0)
    step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    # The human line of the latest progress message, so a late listener's first message
    # matches what earlier listeners were sent.
    message: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[Any | None] = mapped_column(JsonB, nullable=True, default=None)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True, default=None)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)


# "The caller's recent jobs", newest first.
Index("ix_jobs_owner_sub_created_at", JobRecord.owner_sub, JobRecord.created_at.desc())
# The sweep only looks at its queue's unfinished jobs; keep that lookup small.
Index(
    "ix_jobs_unfinished_queue_updated_at",
    JobRecord.queue,
    JobRecord.updated_at,
    postgresql_where=JobRecord.status.in_(UNFINISHED),
)
# Retention purge of finished records.
Index("ix_jobs_updated_at", JobRecord.updated_at)
