"""Fair jobs: one caller holds at most `MAX_ACTIVE_JOBS_PER_USER` of a worker's slots.

Checked where a job starts: the worker's queue (`app/jobs/queue.py`) asks `admit` for
each job it dequeues, before SAQ marks it active. A job over its caller's share is not
run and not failed: it goes back to SAQ's schedule untouched (same attempts, record
still `queued`) and is offered again at the next whole second, in the order the
caller's jobs were asked for, so other callers' jobs start meanwhile. When one of the
caller's jobs ends in this worker, the oldest job of theirs this worker put back goes
straight to the head of the queue: the caller's next job starts at once, not a second
later. Jobs further back in a caller's line are offered again later, a second per
share's worth of jobs ahead of them here (at most `MAX_DEFER_S`): they start through
that quick start anyway, and a backlog offered back whole every second cost more than
the jobs themselves (400 one-user demo jobs, 10 slots, share 3: 5.4 against 3.2 ms of
worker CPU per job, `scripts/bench --jobs`).

The count lives in the worker's memory, not in Redis, on purpose: the limit is per
worker, so nothing outside the process needs it; it costs no round trip per job (take
plus release: about 3 µs a job, `timeit` over 1,000 jobs of 50 callers on this 2-core
machine); and a worker that dies (even SIGKILLed) takes its count with it, so no lease
can outlive the slots it stood for (the jobs it put back come back on SAQ's schedule
whoever runs it). A share is given back when SAQ finishes or retries the job in this
worker (every end of a run passes through one of those). A lease whose run could not
reach either (Redis failing at that very moment) is dropped once the job's own time
limit has passed, so it cannot block its caller for longer.

A job waiting over its share costs one Redis transaction (about 130 µs of the worker's
CPU, measured over 2,000 on this machine) plus SAQ's dequeue each second it waits:
with `MAX_OPEN_JOBS_PER_USER` at 20, well under 1 % of a core per flooding caller.

Reads SAQ's `incomplete` (schedule) and `queued` lists by name, like the sweep in
`app/jobs/queue.py`: an adapter for saq 0.26 (`tests/jobs/test_saq_adapter.py`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job as SaqJob

__all__ = ["DEFER_S", "LEASE_MARGIN_S", "MAX_DEFER_S", "ActiveShares", "FairShares"]

logger = logging.getLogger(__name__)

# A job over its caller's share is offered again from the next whole second on (SAQ's
# scheduler moves due jobs back once a second): about one look per second per waiting
# job, instead of spinning on them.
DEFER_S = 1
# The latest a job put back is offered again (then again each time it comes back).
MAX_DEFER_S = 10
# Jobs put back and remembered for a quick start, per caller and in all (beyond that
# they still come back on SAQ's schedule).
WAITING_PER_OWNER = 1000
WAITING_OWNERS = 10_000

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

    def release(self, job_key: str) -> str | None:
        """Give back the slot `job_key` held; its owner, or None when it held none here."""
        owner = self._owner_of.pop(job_key, None)
        if owner is None:
            return None
        held = self._held.get(owner)
        if held is not None:
            held.pop(job_key, None)
            if not held:
                del self._held[owner]
        return owner

    def active(self, owner: str) -> int:
        return len(self._held.get(owner, ()))


# A job put back (a score in SAQ's schedule set above 0) goes to the head of the queue
# at once; one that came back already, was taken or was aborted meanwhile is left alone.
_START_NOW = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > 0 then
    redis.call('ZADD', KEYS[1], 0, ARGV[1])
    redis.call('LPUSH', KEYS[2], ARGV[1])
    return 1
end
return 0
"""


def _due(seconds: int) -> int:
    """When a job put back now, to be offered again in `seconds`, is due.

    Whole seconds: every job put back within one second for the same delay gets the same
    score, and SAQ's scheduler hands back equal scores in the order of their ids, which
    for our time-ordered job ids is the order they were asked for: a caller's waiting
    jobs keep their order, however the slots that put them back raced.
    """
    return math.floor(time.time()) + seconds


class FairShares:
    """A worker's fair shares on SAQ's Redis queue: admit or put back, then release."""

    def __init__(
        self, redis: Redis, *, limit: int, active: str, incomplete: str, queued: str
    ) -> None:
        self.shares = ActiveShares(limit)
        self._redis = redis
        self._active, self._incomplete, self._queued = active, incomplete, queued
        self._start_now = redis.register_script(_START_NOW)
        # owner -> ids of their jobs this worker put back, oldest first (an ordered set)
        self._waiting: dict[str, dict[str, None]] = {}

    async def admit(self, job: SaqJob) -> bool:
        """True: run the job (its share is taken). False: it was put back to wait."""
        owner = (job.kwargs or {}).get("owner_sub")
        if not isinstance(owner, str):
            return True  # cron jobs belong to nobody
        if self.shares.take(owner, job.key, job.timeout):
            waiting = self._waiting.get(owner)
            if waiting is not None:
                waiting.pop(job.id, None)
            return True
        await self._put_back(owner, job)
        return False

    async def _put_back(self, owner: str, job: SaqJob) -> None:
        waiting = self._waiting.get(owner)
        ahead = len(waiting) if waiting else 0
        delay = min(DEFER_S * (1 + ahead // self.shares.limit), MAX_DEFER_S)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self._active, 1, job.id)
                pipe.zadd(self._incomplete, {job.id: _due(delay)})
                await pipe.execute()
        except RedisError as exc:
            # Left in the active list unstarted: the queue's sweep frees it after its grace.
            logger.warning("could not put back job %s: %r", job.key, exc)
            return
        if waiting is None and len(self._waiting) < WAITING_OWNERS:
            waiting = self._waiting[owner] = {}
        if waiting is not None and len(waiting) < WAITING_PER_OWNER:
            waiting[job.id] = None

    async def release(self, job: SaqJob) -> None:
        """The job's run ended here: give its share back and start its owner's next one."""
        owner = self.shares.release(job.key)
        if owner is None:
            return
        waiting = self._waiting.get(owner)
        try:
            while waiting:
                job_id = next(iter(waiting))
                del waiting[job_id]
                if await self._start_now(keys=[self._incomplete, self._queued], args=[job_id]):
                    break
        except RedisError as exc:  # it still comes back on SAQ's schedule
            logger.warning("could not start the next waiting job early: %r", exc)
        if waiting is not None and not waiting:
            self._waiting.pop(owner, None)
