"""The SAQ worker, cron included: `saq app.worker.settings` (or `litestar workers run`).

Queue: REDIS_URL, named by SAQ_QUEUE (default "default"). The cron jobs run inside the
workers (no separate scheduler process); each fires once per queue however many workers
run, because SAQ enqueues a cron job under one fixed key.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from saq import CronJob

from app.config import ConfigError, WorkerSettings, get_worker_settings
from app.jobs.tasks import (
    WorkerQueue,
    after_process,
    cron_expression_every,
    job_functions,
    purge_deleted_projects,
    purge_old_job_records,
    shutdown,
    startup,
    sweep_jobs,
)
from app.logging import configure_logging, quiet_routine_cron

__all__ = ["build_settings", "settings"]


def build_settings(app_settings: WorkerSettings) -> dict[str, Any]:
    # No socket timeout: workers block on the queue for as long as it is empty.
    redis = Redis.from_url(
        app_settings.redis_url,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return {
        "queue": WorkerQueue(redis, name=app_settings.saq_queue),
        "functions": job_functions(),
        "concurrency": app_settings.worker_concurrency,
        "cron_jobs": [
            CronJob(
                sweep_jobs,
                cron=cron_expression_every(app_settings.job_sweep_interval_s),
                timeout=60,
                ttl=60,
            ),
            CronJob(purge_deleted_projects, cron="47 3 * * *", timeout=600, ttl=3600),
            CronJob(purge_old_job_records, cron="17 4 * * *", timeout=600, ttl=3600),
        ],
        "startup": startup,
        "shutdown": shutdown,
        "after_process": after_process,
        # SAQ's own sweep of jobs past their heartbeat/time limit: every 15 s, not 60.
        "timers": {"sweep": 15},
    }


try:
    # Only what the worker uses: no Keycloak settings are asked for.
    _app_settings = get_worker_settings()
except ConfigError as error:
    raise SystemExit(f"configuration error: {error}") from None
configure_logging(_app_settings.log_level)
quiet_routine_cron()
settings = build_settings(_app_settings)
