"""Readiness of the backing services: bounded in time, and shared between callers.

`/health/ready` is public and probed by orchestrators and load balancers. Checked on
every call, an anonymous flood of 200 connections took pool connections from real
requests and made the check itself time out (503 on a healthy system). So one check runs
at a time (single flight: callers that arrive meanwhile wait for the same one) and its
answer is reused for `READINESS_TTL_S`. Each probe gives up after `PROBE_TIMEOUT_S` without
waiting for its cancellation to finish: against a frozen PostgreSQL, cancelling a
connection attempt can itself take seconds, which made a 2 s timeout answer after 4 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "PROBE_TIMEOUT_S",
    "READINESS_TTL_S",
    "ReadinessCheck",
    "check_database",
    "check_redis",
]

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 2.0
READINESS_TTL_S = 1.0

# Probes given up on, kept referenced until their cancellation completes.
_abandoned: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def _probe(name: str, probe: Coroutine[Any, Any, object], limit_s: float) -> str:
    task = asyncio.ensure_future(probe)
    # Not asyncio.timeout(): that waits for the cancellation to finish.
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if not done:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        logger.warning("readiness check %s timed out after %.1f s", name, limit_s)
        return "timeout"
    error = task.exception()
    if error is not None:  # any failure means "not ready"; the log keeps the details
        logger.warning("readiness check %s failed: %r", name, error)
        return "unavailable"
    return "ok"


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(select(1))


async def _ping(redis: Redis) -> None:
    await redis.ping()  # type: ignore[misc]  # the async client's ping is awaitable


async def check_database(engine: AsyncEngine, limit_s: float = PROBE_TIMEOUT_S) -> str:
    return await _probe("database", _select_one(engine), limit_s)


async def check_redis(redis: Redis, limit_s: float = PROBE_TIMEOUT_S) -> str:
    return await _probe("redis", _ping(redis), limit_s)


class ReadinessCheck:
    """The state of each backing service ("ok", "timeout", "unavailable"), checked at
    most once per `ttl` seconds however many callers ask."""

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        *,
        ttl: float = READINESS_TTL_S,
        timeout: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._ttl = ttl
        self._timeout = timeout
        self._last: dict[str, str] | None = None
        self._last_at = 0.0
        self._running: asyncio.Future[dict[str, str]] | None = None

    async def checks(self) -> dict[str, str]:
        if self._last is not None and time.monotonic() - self._last_at < self._ttl:
            return self._last
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
        # Shielded: a caller that goes away does not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _run(self) -> dict[str, str]:
        try:
            database, redis = await asyncio.gather(
                check_database(self._engine, self._timeout),
                check_redis(self._redis, self._timeout),
            )
            self._last = {"database": database, "redis": redis}
            self._last_at = time.monotonic()
            return self._last
        finally:
            self._running = None
