"""Readiness probes for the backing services, each bounded in time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from redis.asyncio import Redis
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["check_database", "check_redis"]

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 2.0


async def _probe(name: str, probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, PROBE_TIMEOUT_S)
    except Exception as exc:  # any failure means "not ready"; the log keeps the details
        logger.warning("readiness check %s failed: %r", name, exc)
        return "unavailable" if not isinstance(exc, TimeoutError) else "timeout"
    return "ok"


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(select(literal(1)))


async def check_database(engine: AsyncEngine) -> str:
    return await _probe("database", _select_one(engine))


async def check_redis(redis: Redis) -> str:
    return await _probe("redis", redis.ping())  # type: ignore[arg-type]  # async client: awaitable
