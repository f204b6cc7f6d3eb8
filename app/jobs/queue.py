"""The SAQ queue this service uses, in the API and in the worker.

`WorkerQueue` is SAQ's `RedisQueue` with five changes, all through methods SAQ's worker
calls on any queue (`dequeue`, `sweep`, `finish`, `retry`, and the two storage hooks
behind `update` and `finish`):

- A stopping worker takes no new job: once `stop_taking_jobs()` is called, `dequeue`
  waits instead of asking Redis, and a job that arrives while it stops is handed back
  untouched (rolling restarts).
- A Redis that fails or freezes is logged and waited out, instead of a silent retry
  loop: every call has a socket timeout (`create_queue_redis`), and a blocking dequeue
  waits `DEQUEUE_TIMEOUT_S`, well inside it.
- Fair shares: a job whose caller already holds `MAX_ACTIVE_JOBS_PER_USER` of this
  worker's slots is not started; it goes back to the queue untouched to wait its turn
  (`app/jobs/shares.py`). `finish` and `retry` give the share back.
- SAQ saves a job and then publishes its new status as two round trips, when it marks
  a job active and when it finishes it; here each is one pipeline (`_update`,
  `_finish`), with the same keys, values and message in the same order.
- SAQ's sweep frees any job in its active list that is not marked active yet, which
  catches a job between a worker's dequeue and its "active" write (SAQ issue #277, open
  in 0.26). Here such a job is freed only once it has stayed so for a grace period.
  This and the pipelines read SAQ's keys by their names, so they are an adapter for
  saq 0.26.x only: pyproject pins `<0.27` and tests/jobs/test_saq_adapter.py fails with
  a clear message on another version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import saq
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq import Job as SaqJob
from saq.job import Status
from saq.queue.redis import RedisQueue

from app.jobs.shares import FairShares

__all__ = [
    "DEQUEUE_TIMEOUT_S",
    "REDIS_SOCKET_TIMEOUT_S",
    "SAQ_ADAPTER_VERSION",
    "WorkerQueue",
    "create_queue_redis",
]

logger = logging.getLogger(__name__)

# The SAQ minor version whose Redis layout `WorkerQueue.sweep` was written against.
SAQ_ADAPTER_VERSION = "0.26."
# A blocking dequeue returns after this long without a job; it also bounds how long a
# stopping worker's idle slots take to notice.
DEQUEUE_TIMEOUT_S = 1.0
# Any Redis reply slower than this is an error: more than the blocking dequeue and SAQ's
# 5-second wait for a swept job to abort, so neither trips it when Redis is healthy.
REDIS_SOCKET_TIMEOUT_S = 10.0
# After a Redis error in dequeue, wait this long before the slot asks again.
REDIS_RETRY_PAUSE_S = 1.0


def create_queue_redis(url: str) -> Redis:
    """The queue's Redis client: bounded connects and replies, dead peers detected."""
    return Redis.from_url(
        url,
        socket_connect_timeout=5,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=30,
    )


class WorkerQueue(RedisQueue):
    def __init__(
        self,
        redis: Redis,
        *,
        name: str,
        max_active_per_owner: int | None = None,
        mid_dequeue_grace_s: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(redis, name=name, **kwargs)
        self.taking_jobs = True
        # None: no share limit (the API's queue only enqueues; so do some tests).
        self.fair = (
            FairShares(
                redis,
                limit=max_active_per_owner,
                active=self.namespace("active"),
                incomplete=self.namespace("incomplete"),
                queued=self.namespace("queued"),
            )
            if max_active_per_owner
            else None
        )
        self._grace_s = mid_dequeue_grace_s
        self._not_active_since: dict[str, float] = {}
        self._redis_failing = False

    def stop_taking_jobs(self) -> None:
        self.taking_jobs = False

    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109  # SAQ's signature
        poll_interval: float = 0.0,
    ) -> SaqJob | None:
        if not self.taking_jobs:
            await asyncio.sleep(timeout or DEQUEUE_TIMEOUT_S)
            return None
        try:
            job = await super().dequeue(timeout, poll_interval)
        except RedisError as exc:
            # SAQ's worker would retry at once and say nothing: say it, once, and pause.
            if not self._redis_failing:
                logger.warning("queue %s: Redis is not answering: %r", self.name, exc)
                self._redis_failing = True
            await asyncio.sleep(REDIS_RETRY_PAUSE_S)
            return None
        if self._redis_failing:
            logger.warning("queue %s: Redis answers again", self.name)
            self._redis_failing = False
        if job is not None and not self.taking_jobs:
            # Arrived while this worker stops: back to the queue, attempts untouched.
            await self.retry(job, error=None)
            return None
        if job is not None and self.fair is not None and not await self.fair.admit(job):
            return None  # over its caller's share: put back to wait its turn
        return job

    async def _update(self, job: SaqJob, status: Status | None = None, **kwargs: Any) -> None:
        if status is None:  # SAQ reads the stored status first: its own way
            await super()._update(job, status, **kwargs)
            return
        job.status = status
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(job.id, self.serialize(job))
            pipe.publish(job.id, job.status)
            await pipe.execute()

    async def _finish(
        self,
        job: SaqJob,
        status: Status,
        *,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.namespace("active"), 1, job.id)
            pipe.zrem(self.namespace("incomplete"), job.id)
            if job.ttl > 0:
                pipe.setex(job.id, job.ttl, self.serialize(job))
            elif job.ttl == 0:
                pipe.set(job.id, self.serialize(job))
            else:
                pipe.delete(job.id)
            pipe.publish(job.id, job.status)
            await pipe.execute()

    async def finish(self, job: SaqJob, status: Status, **kwargs: Any) -> None:
        try:
            await super().finish(job, status, **kwargs)
        finally:
            if self.fair is not None:
                await self.fair.release(job)

    async def retry(self, job: SaqJob, error: str | None) -> None:
        try:
            await super().retry(job, error)
        finally:
            if self.fair is not None:
                await self.fair.release(job)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        # The same lock as SAQ's: one sweep per `lock` seconds across all workers.
        if not await self.redis.set(self.namespace("sweep"), 1, ex=lock, nx=True):
            return []
        job_ids: list[bytes] = await self.redis.lrange(  # type: ignore[misc]
            self.namespace("active"), 0, -1
        )
        stored = await self.redis.mget(job_ids) if job_ids else []
        now = time.monotonic()
        seen: dict[str, float] = {}
        swept: list[str] = []
        for raw_id, payload in zip(job_ids, stored, strict=True):
            job_id = raw_id.decode()
            job = self.deserialize(payload)
            if job is None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self.namespace("active"), 0, job_id)
                    pipe.zrem(self.namespace("incomplete"), job_id)
                    await pipe.execute()
                swept.append(job_id)
            elif job.status == Status.ACTIVE:
                if job.stuck:
                    await self._free(job, abort)
                    swept.append(job_id)
            else:
                seen[job_id] = self._not_active_since.get(job_id, now)
                if now - seen[job_id] >= self._grace_s:
                    await self._free(job, abort)
                    swept.append(job_id)
                    del seen[job_id]
        self._not_active_since = seen
        if swept:
            logger.info("SAQ sweep freed %s", swept)
        return swept

    async def _free(self, job: SaqJob, abort: float) -> None:
        """What SAQ's sweep does with a job: abort it, then retry it or end it aborted."""
        await self.abort(job, error=self.swept_error_message)
        with contextlib.suppress(TimeoutError):
            await job.refresh(abort)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)


def saq_version_supported() -> bool:
    return saq.__version__.startswith(SAQ_ADAPTER_VERSION)
