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
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from saq.types import Context
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from app.config import WorkerSettings, get_worker_settings
from app.db.config import driver_connect_args
from app.jobs.queue import WorkerQueue
from app.jobs.resources import WorkerResources, alive_key
from app.jobs.sweep import Sweeper

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
