"""What a worker process holds while it runs: its database engine, Redis, the job state
writer and its liveness key. Built by app/jobs/runtime.py at startup, used by the tasks
and the sweep (app/jobs/sweep.py), which therefore do not depend on the runtime."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import WorkerSettings
from app.jobs.progress import ProgressPublisher
from app.jobs.recorder import JobStateWriter

__all__ = ["WorkerResources", "alive_key"]

logger = logging.getLogger(__name__)


def alive_key(queue_name: str, worker_id: str) -> str:
    return f"jobs:alive:{queue_name}:{worker_id}"


@dataclass
class WorkerResources:
    """Per worker process: database engine, Redis for progress, liveness advertising."""

    settings: WorkerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    worker_id: str
    queue_name: str
    writer: JobStateWriter = field(init=False)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writer = JobStateWriter(self.sessions, ProgressPublisher(self.redis))

    @property
    def alive_key(self) -> str:
        return alive_key(self.queue_name, self.worker_id)

    async def say_alive(self) -> None:
        await self.redis.set(self.alive_key, b"1", ex=self.settings.worker_liveness_ttl_s)

    async def keep_saying_alive(self) -> None:
        # Runs on the event loop on purpose: a worker whose loop is blocked for longer
        # than the TTL cannot run its jobs either, and is treated as dead.
        failing = False
        while True:
            await asyncio.sleep(max(self.settings.worker_liveness_ttl_s / 4, 0.5))
            try:
                await self.say_alive()
            except RedisError as exc:
                if not failing:
                    logger.warning("could not refresh worker liveness: %r", exc)
                failing = True
            else:
                if failing:
                    logger.warning("worker liveness refreshed again")
                failing = False
