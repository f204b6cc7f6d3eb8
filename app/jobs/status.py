"""A job's status: the one list of values the API, the worker and the database share."""

from __future__ import annotations

import enum

__all__ = ["FINISHED", "UNFINISHED", "JobStatus"]


class JobStatus(enum.StrEnum):
    """Where a job is. `queued` and `active` may change; the other three are final."""

    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in FINISHED


UNFINISHED: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.ACTIVE)
FINISHED: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETE, JobStatus.FAILED, JobStatus.ABORTED}
)
