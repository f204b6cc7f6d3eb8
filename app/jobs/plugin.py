"""The jobs runtime on litestar-saq: one queue definition for the API and the worker.

`build_queue_config` says everything about the queue: its functions (one per job kind),
cron schedule, hooks, concurrency and timers. The API gets it through `SAQPlugin`
(which also adds `litestar workers run`); `app/worker.py` turns the same definition
into the settings `saq app.worker.settings` reads.
"""

from __future__ import annotations

import contextlib
from typing import Any

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin
from redis.exceptions import RedisError
from saq.types import PartialTimersDict

import app.jobs.metrics  # noqa: F401  # registers the job gauges and their scrape hook
from app.config import Settings, WorkerSettings
from app.jobs.queue import DEQUEUE_TIMEOUT_S, WorkerQueue, create_queue_redis
from app.jobs.runtime import shutdown, startup
from app.jobs.tasks import (
    after_process,
    job_functions,
    purge_old_job_records,
    purge_soft_deleted_rows,
)
from app.tracing import traced_job

__all__ = [
    "SAQ_STOP_WAIT_S",
    "SAQ_SWEEP_INTERVAL_S",
    "JobsPlugin",
    "build_jobs_plugins",
    "build_queue_config",
    "build_saq_config",
    "worker_settings",
]

# SAQ's own sweep of jobs past their time limit or heartbeat (see WorkerQueue.sweep).
SAQ_SWEEP_INTERVAL_S = 15
# After a stop, how long SAQ waits for its idle slots (each at most one dequeue timeout)
# before it cancels what is left; the grace for running jobs is the worker's own drain.
SAQ_STOP_WAIT_S = int(DEQUEUE_TIMEOUT_S) + 1
# How long a cancelled job may take to hand itself back and record that.
SAQ_CANCEL_DEADLINE_S = 5.0


def build_queue_config(settings: WorkerSettings, queue: WorkerQueue) -> QueueConfig:
    return QueueConfig(
        broker_instance=queue.redis,
        name=queue.name,
        tasks=job_functions(),
        scheduled_tasks=[
            CronJob(traced_job(purge_soft_deleted_rows), cron="47 3 * * *", timeout=600, ttl=3600),
            CronJob(traced_job(purge_old_job_records), cron="17 4 * * *", timeout=600, ttl=3600),
        ],
        concurrency=settings.worker_concurrency,
        startup=[startup],
        shutdown=[shutdown],
        after_process=[after_process],
        # SAQ's defaults, but its own sweep every 15 s instead of 60.
        timers=PartialTimersDict(schedule=1, worker_info=10, sweep=SAQ_SWEEP_INTERVAL_S, abort=1),
        dequeue_timeout=DEQUEUE_TIMEOUT_S,
        shutdown_grace_period_s=SAQ_STOP_WAIT_S,
        cancellation_hard_deadline_s=SAQ_CANCEL_DEADLINE_S,
        separate_process=True,
    )


def build_saq_config(settings: WorkerSettings) -> SAQConfig:
    queue = WorkerQueue(
        create_queue_redis(settings.redis_url),
        name=settings.saq_queue,
        max_active_per_owner=settings.max_active_jobs_per_user,
    )
    return SAQConfig(
        queue_configs=[build_queue_config(settings, queue)],
        # Our queue class, not the one litestar-saq would build from the broker.
        queue_instances={queue.name: queue},
        web_enabled=False,
        use_server_lifespan=False,
        enable_otel=False,
    )


def worker_settings(config: SAQConfig) -> dict[str, Any]:
    """What `saq app.worker.settings` needs, from the same queue definition."""
    (queue_config,) = config.queue_configs
    return {
        "queue": config.get_queues().get(queue_config.name),
        "functions": queue_config.tasks,
        "cron_jobs": queue_config.scheduled_tasks,
        "concurrency": queue_config.concurrency,
        "startup": queue_config.startup,
        "shutdown": queue_config.shutdown,
        "after_process": queue_config.after_process,
        "timers": queue_config.timers,
        "dequeue_timeout": queue_config.dequeue_timeout,
        "shutdown_grace_period_s": queue_config.shutdown_grace_period_s,
        "cancellation_hard_deadline_s": queue_config.cancellation_hard_deadline_s,
    }


class JobsPlugin(InitPluginProtocol):
    """What the API adds around SAQ's plugin: its settings, and closing the queue's client."""

    def __init__(self, settings: Settings, saq: SAQPlugin) -> None:
        self._settings = settings
        self._saq = saq

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state["job_settings"] = self._settings
        # The API never runs a worker (workers are their own processes): SAQPlugin's
        # per-worker app hooks would only start a heartbeat thread nothing here uses,
        # whose stop logs a RuntimeError traceback on every shutdown (litestar-saq 0.8).
        for worker in self._saq.get_workers().values():
            with contextlib.suppress(ValueError):
                app_config.on_startup.remove(worker.on_app_startup)
            with contextlib.suppress(ValueError):
                app_config.on_shutdown.remove(worker.on_app_shutdown)
        app_config.on_shutdown.append(self._close)
        return app_config

    async def _close(self) -> None:
        for queue in self._saq.get_queues().queues.values():
            # Redis may be gone by now; there is nothing left to tell it.
            with contextlib.suppress(RedisError, OSError):
                await queue.disconnect()


def build_jobs_plugins(settings: Settings) -> list[InitPluginProtocol]:
    """SAQ's plugin (queue, `litestar workers run`) and ours, for `Litestar(plugins=...)`."""
    saq = SAQPlugin(build_saq_config(settings))
    return [saq, JobsPlugin(settings, saq)]
