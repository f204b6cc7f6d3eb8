"""Per-caller limits counted in Redis, so that every API process shares them.

- Requests (`RATE_LIMIT_PER_MINUTE`): a fixed one-minute window per caller `sub`. A Redis
  round trip per request would cost more than a small request itself, so each process
  decides locally from the window's total as Redis last told it plus its own requests
  not yet sent, and a background task adds those to Redis in one pipeline every
  `FLUSH_INTERVAL_S`, reading the new totals back. Only a caller's first request in a
  window on a process waits for Redis (to learn what other processes counted). Other
  processes' requests are seen within one flush interval, so a caller may overshoot by
  what they send in that time. A refusal is decided from local numbers: a caller at the
  limit costs others nothing.
- Job creation (`JOB_LIMIT_PER_MINUTE`): the same window, counted in Redis on each
  `POST /v1/jobs` (which talks to Redis anyway).
- Open jobs (`MAX_OPEN_JOBS_PER_USER`): counted by the jobs repository with the insert
  (app/jobs/repository.py); `too_many_open_jobs` is its 429.

Redis down: nothing is refused for lack of a counter. A process keeps counting locally
and stops waiting on Redis for `REDIS_BACKOFF_S` after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from litestar.handlers import BaseRouteHandler
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.background import cancel_and_wait
from app.config import Settings

__all__ = [
    "JobCreationLimiter",
    "LimitsPlugin",
    "RequestLimiter",
    "limit_job_creation",
    "too_many_open_jobs",
]

logger = logging.getLogger("app.limits")

WINDOW_S = 60
# How often a process adds its counts to Redis. Each flush is a pipeline round trip
# (a fixed cost per interval, whatever the load); other processes see a caller's requests
# this much later, so a caller spread over several processes may overshoot by what it
# sends in that time.
FLUSH_INTERVAL_S = 0.25
# After Redis failed, how long requests stop waiting for it (they are counted locally).
REDIS_BACKOFF_S = 5.0
# The most a request waits for Redis to learn a caller's count; then it goes on.
REDIS_WAIT_S = 0.25
OPEN_JOBS_RETRY_AFTER_S = 5
_STATE_KEY = "job_creation_limiter"


def _retry_after(window: int, now: float) -> int:
    """Whole seconds until `window` ends (at least 1)."""
    return max(1, math.ceil((window + 1) * WINDOW_S - now))


class _Slot:
    """One caller's count in one window, as this process knows it."""

    __slots__ = ("known", "pending", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.known = 0  # the window's total in Redis, as last read (ours included)
        self.pending = 0  # ours, not yet added to Redis


class RequestLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        key_prefix: str,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.limit = limit
        self._redis = redis
        self._prefix = f"{key_prefix}rate:"
        self._flush_interval_s = flush_interval_s
        self._slots: dict[str, _Slot] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._redis_down_until = 0.0
        self._pruned_window = 0
        self._task: asyncio.Task[None] | None = None

    def admit(self, sub: str) -> int | None:
        """0: go on; more: refused, retry after that many seconds; None: the caller's first
        request in this window here, to be decided by `admit_first`."""
        now = time.time()
        window = int(now // WINDOW_S)
        slot = self._slots.get(sub)
        if slot is None or slot.window != window:
            if now >= self._redis_down_until:
                return None
            slot = self._slots[sub] = _Slot(window)
        if slot.known + slot.pending >= self.limit:
            return _retry_after(window, now)
        slot.pending += 1
        dirty = self._dirty
        if not dirty:
            self._wake.set()
        dirty.add(sub)
        return 0

    async def admit_first(self, sub: str) -> int:
        """Count the request in Redis and decide from the window's total there."""
        now = time.time()
        window = int(now // WINDOW_S)
        try:
            async with asyncio.timeout(REDIS_WAIT_S):
                total = await self._add(((sub, window, 1),))
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)
            total = None
        slot = self._slots.get(sub)
        if slot is None or slot.window != window:
            slot = self._slots[sub] = _Slot(window)
        if total is None:
            slot.pending += 1  # sent with the next flush, if Redis is back by then
            self._dirty.add(sub)
            return 0
        slot.known = max(slot.known, total[0])
        return _retry_after(window, now) if total[0] > self.limit else 0

    async def _add(self, counts: tuple[tuple[str, int, int], ...]) -> list[int]:
        pipe = self._redis.pipeline(transaction=False)
        for sub, window, count in counts:
            key = f"{self._prefix}{sub}:{window}"
            pipe.incrby(key, count)
            pipe.expire(key, 2 * WINDOW_S)
        results: list[Any] = await pipe.execute()
        return [int(total) for total in results[::2]]

    def _redis_failed(self, exc: BaseException) -> None:
        now = time.time()
        if now >= self._redis_down_until:  # once per outage, not per request
            logger.warning("rate limit counts not shared: Redis unavailable (%r)", exc)
        self._redis_down_until = now + REDIS_BACKOFF_S

    async def flush(self) -> None:
        """Add this process's pending counts to Redis and read back the totals."""
        dirty, self._dirty = self._dirty, set()
        batch: list[tuple[_Slot, str, int, int]] = []
        for sub in dirty:
            slot = self._slots.get(sub)
            if slot is not None and slot.pending:
                batch.append((slot, sub, slot.window, slot.pending))
                # Counted as known now, so requests arriving meanwhile see the same total.
                slot.known += slot.pending
                slot.pending = 0
        self._prune()
        if not batch:
            return
        try:
            async with asyncio.timeout(2.0):
                totals = await self._add(tuple((sub, w, n) for _, sub, w, n in batch))
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)
            return
        for (slot, _, window, _), total in zip(batch, totals, strict=True):
            if slot.window == window:
                slot.known = max(slot.known, total)

    def _prune(self) -> None:
        """Forget callers whose window is over (once per window)."""
        window = int(time.time() // WINDOW_S)
        if window != self._pruned_window:
            self._pruned_window = window
            self._slots = {sub: s for sub, s in self._slots.items() if s.window >= window}

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
            except Exception:  # never let accounting end; requests go on regardless
                logger.exception("rate limit flush failed")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rate-limit-flush")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await self.flush()


class JobCreationLimiter:
    """`POST /v1/jobs` per caller per window, counted in Redis on every call."""

    def __init__(self, redis: Redis, *, limit: int, key_prefix: str) -> None:
        self.limit = limit
        self._redis = redis
        self._prefix = f"{key_prefix}jobs:"

    async def admit(self, sub: str) -> int:
        """0, or the seconds to wait before the caller may create another job."""
        now = time.time()
        window = int(now // WINDOW_S)
        key = f"{self._prefix}{sub}:{window}"
        try:
            async with asyncio.timeout(REDIS_WAIT_S):
                pipe = self._redis.pipeline(transaction=False)
                pipe.incr(key)
                pipe.expire(key, 2 * WINDOW_S)
                total, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError):
            return 0  # not refused for lack of a counter; enqueueing will answer 503
        return _retry_after(window, now) if int(total) > self.limit else 0


async def limit_job_creation(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard of the job-creating handlers: 429 over `JOB_LIMIT_PER_MINUTE`."""
    limiter: JobCreationLimiter | None = connection.app.state.get(_STATE_KEY)
    user = connection.scope.get("user")
    sub = getattr(user, "sub", None)
    if limiter is None or not isinstance(sub, str):
        return
    retry_after = await limiter.admit(sub)
    if retry_after:
        raise TooManyRequestsException(
            detail=f"Too many jobs created: at most {limiter.limit} per minute",
            headers={"Retry-After": str(retry_after)},
        )


def too_many_open_jobs(limit: int) -> TooManyRequestsException:
    """The 429 for a caller who already has `limit` queued or active jobs."""
    return TooManyRequestsException(
        detail=f"Too many open jobs: at most {limit} queued or active at once",
        headers={"Retry-After": str(OPEN_JOBS_RETRY_AFTER_S)},
    )


class LimitsPlugin(InitPluginProtocol):
    """Builds the limiters on the app's Redis client and runs the request limiter's
    background accounting with the app."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        prefix = settings.limits_key_prefix
        self.requests = (
            RequestLimiter(redis, limit=settings.rate_limit_per_minute, key_prefix=prefix)
            if settings.rate_limit_per_minute
            else None
        )
        self.jobs = (
            JobCreationLimiter(redis, limit=settings.job_limit_per_minute, key_prefix=prefix)
            if settings.job_limit_per_minute
            else None
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self.jobs is not None:
            app_config.state[_STATE_KEY] = self.jobs
        if self.requests is not None:
            app_config.on_startup.append(self._start)
            app_config.on_shutdown.append(self._stop)
        return app_config

    async def _start(self, _: Litestar) -> None:
        if self.requests is not None:
            await self.requests.start()

    async def _stop(self, _: Litestar) -> None:
        if self.requests is not None:
            await self.requests.stop()
