"""Fair jobs: one caller holds at most `MAX_ACTIVE_JOBS_PER_USER` of a worker's slots.

Checked where a job starts: the worker's queue (`app/jobs/queue.py`) asks `take` for
each job it dequeues, before SAQ marks it active. A job over its caller's share is not
run and not failed: it goes back to the queue untouched (same attempts, record still
`queued`) and is offered again a moment later, so the caller's jobs keep their order
and other callers' jobs start meanwhile.

The count lives in the worker's memory, not in Redis, on purpose: the limit is per
worker, so nothing outside the process needs it; it costs no round trip per job (take
plus release: about 3 µs a job, `timeit` over 1,000 jobs of 50 callers on this 2-core
machine; a job over its share costs one Redis transaction per second while it waits);
and a worker that dies (even SIGKILLed) takes its count with it, so no lease can
outlive the slots it stood for. A share is given back when SAQ finishes or retries the
job in this worker (every end of a run passes through one of those). A lease whose run
could not reach either (Redis failing at that very moment) is dropped once the job's
own time limit has passed, so it cannot block its caller for longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["LEASE_MARGIN_S", "ActiveShares"]

# A lease outlives its job's time limit by this much before it counts as lost: SAQ
# cancels a run at its time limit and gives it a few seconds to unwind.
LEASE_MARGIN_S = 60.0


@dataclass
class ActiveShares:
    """The running jobs of one worker, per caller (`owner_sub`)."""

    limit: int
    # owner -> {job key: monotonic time after which the lease counts as lost}
    _held: dict[str, dict[str, float]] = field(default_factory=dict)
    _owner_of: dict[str, str] = field(default_factory=dict)

    def take(self, owner: str, job_key: str, time_limit_s: float) -> bool:
        """Hold one of `owner`'s slots for `job_key`; False when they hold all theirs."""
        held = self._held.get(owner, {})
        if len(held) >= self.limit and job_key not in held:
            now = time.monotonic()
            for lost in [key for key, until in held.items() if until < now]:
                self.release(lost)
            if self.active(owner) >= self.limit:
                return False
        until = time.monotonic() + time_limit_s + LEASE_MARGIN_S if time_limit_s else float("inf")
        self._held.setdefault(owner, {})[job_key] = until
        self._owner_of[job_key] = owner
        return True

    def release(self, job_key: str) -> None:
        """Give back the slot `job_key` held (nothing when it held none here)."""
        owner = self._owner_of.pop(job_key, None)
        if owner is None:
            return
        held = self._held.get(owner)
        if held is not None:
            held.pop(job_key, None)
            if not held:
                del self._held[owner]

    def active(self, owner: str) -> int:
        return len(self._held.get(owner, ()))
