"""A worker process's life: its resources, its liveness, its sweep and its stop.

- Startup: a database engine, the progress publisher, a liveness key refreshed on the
  event loop (`jobs:alive:{queue}:{worker id}`, outside SAQ's key space), and the sweep
  (`app/jobs/sweep.py`) on a timer of its own.
- Stop (SIGTERM or Ctrl-C): the worker takes no new job, lets running ones finish for up
  to `worker_shutdown_grace_s`, then lets SAQ cancel the rest, which hands them back to
  the queue (SAQ retries a job cancelled by a stopping worker) for another worker to run
  from the start. A second signal stops at once, with the same hand-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.types import Context
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import WorkerSettings, get_worker_settings
from app.db.config import driver_connect_args
from app.db.soft_delete import utc_now
from app.jobs.progress import ProgressPublisher
from app.jobs.queue import WorkerQueue
from app.jobs.recorder import JobStateWriter

if TYPE_CHECKING:
    from saq.worker import Worker

__all__ = [
    "WorkerResources",
    "alive_key",
    "create_worker_engine",
    "resources_of",
    "shutdown",
    "startup",
]

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
    # What the retention crons take as "now"; tests move it to see rows age.
    clock: Callable[[], datetime.datetime] = utc_now
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


def resources_of(ctx: Context) -> WorkerResources:
    resources = ctx.get("resources")
    assert isinstance(resources, WorkerResources), "worker startup hook did not run"
    return resources


def create_worker_engine(settings: WorkerSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=max(2, settings.worker_concurrency // 2),
        max_overflow=settings.worker_concurrency,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        connect_args=driver_connect_args(
            settings, application_name="litestar-spa-worker", command_timeout=60
        ),
    )


async def startup(ctx: Context) -> None:
    from app.jobs.sweep import Sweeper  # the sweep needs these resources; not the reverse

    worker: Worker[Any] = ctx["worker"]
    queue = worker.queue
    assert isinstance(queue, WorkerQueue), "the worker must run on app.jobs.queue.WorkerQueue"
    settings = get_worker_settings()
    engine = create_worker_engine(settings)
    resources = WorkerResources(
        settings=settings,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        redis=queue.redis,
        worker_id=str(worker.id),
        queue_name=queue.name,
    )
    # Alive before the first job is taken, so no sweep can mistake its jobs for orphans.
    await resources.say_alive()
    sweeper = Sweeper(resources, queue)
    resources.background += [
        asyncio.create_task(resources.keep_saying_alive()),
        asyncio.create_task(sweeper.run_forever(settings.job_sweep_interval_s)),
    ]
    ctx["resources"] = resources  # type: ignore[typeddict-unknown-key]
    _stop_gracefully_on_signals(worker, queue, settings.worker_shutdown_grace_s)
    logger.info("worker %s ready on queue %s", worker.id, queue.name)


async def shutdown(ctx: Context) -> None:
    resources = ctx.get("resources")
    if not isinstance(resources, WorkerResources):
        return
    for task in resources.background:
        task.cancel()
    # Wait for them to unwind (a sweep may be mid-statement) before the engine and the
    # loop go away; a task left pending is reported as destroyed at exit.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1):
            await asyncio.gather(*resources.background, return_exceptions=True)
    with contextlib.suppress(RedisError, OSError):
        await resources.redis.delete(resources.alive_key)
    await resources.engine.dispose()


def _stop_gracefully_on_signals(worker: Worker[Any], queue: WorkerQueue, grace_s: float) -> None:
    """Replace SAQ's stop-at-once signal handlers with a drain, then SAQ's own stop.

    SAQ's worker installs its handlers before it runs the startup hooks, on the same
    loop, so these replace them; it removes them again when it stops.
    """
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if draining:  # asked twice: stop now (running jobs are handed back)
            _stop_now(worker)
        else:
            draining.append(loop.create_task(_drain(worker, queue, grace_s)))

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal)


async def _drain(worker: Worker[Any], queue: WorkerQueue, grace_s: float) -> None:
    queue.stop_taking_jobs()
    running = len(worker.job_task_contexts)
    if running:
        logger.info("stopping: letting %d running job(s) finish (up to %g s)", running, grace_s)
    deadline = time.monotonic() + grace_s
    # Polled: SAQ offers no event for "a job ended", and the check is a dict lookup.
    while worker.job_task_contexts and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    if worker.job_task_contexts:
        logger.warning(
            "stopping: handing %d unfinished job(s) back to the queue",
            len(worker.job_task_contexts),
        )
    _stop_now(worker)


def _stop_now(worker: Worker[Any]) -> None:
    """SAQ's stop: cancel the upkeep timers now (they may be mid-sleep), then the slots.

    Without this SAQ's stop waits for each timer's sleep to end and then warns that
    tasks outlived the shutdown grace period, on every clean stop.
    """
    worker.event.set()
    for task in list(worker.tasks):
        if task.get_name() != "process":
            task.cancel()
