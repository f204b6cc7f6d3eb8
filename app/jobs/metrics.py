"""Job figures for Prometheus, read at scrape time (nothing is counted on the hot paths).

- `jobs{kind,status}`: job records by kind and status. Finished records are kept for
  JOB_STATE_TTL_SECONDS, so `status="complete"` / `"failed"` count the jobs the workers
  completed / failed over that window, whichever worker ran them.
- `jobs_queue_depth{queue}` (waiting to start), `jobs_queue_running{queue}`,
  `jobs_queue_scheduled{queue}` (retries and cron runs due later): SAQ's queue counts.
- `jobs_workers{queue}`: workers that reported to SAQ within its worker-info interval.
- `jobs_worker_runs{queue,worker,outcome}`: what each live worker process finished since
  it started (complete, failed, retried, aborted), from the stats SAQ's workers publish.
- `jobs_recent_duration_seconds{kind,quantile}`: how long jobs completed in the last
  ten minutes took from request to result (queue wait included: what a user waits).

Each API process refreshes these from PostgreSQL and Redis before its own scrape.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping

from litestar import Litestar
from litestar_saq import SAQPlugin
from prometheus_client import Gauge

from app.config import Settings
from app.db.driver import app_engine
from app.jobs.repository import JobRepository
from app.metrics import REGISTRY, before_scrape

__all__ = ["refresh_job_metrics"]

logger = logging.getLogger(__name__)

# A scrape never waits longer than this for the database or Redis.
SCRAPE_TIMEOUT_S = 2.0

JOBS = Gauge("jobs", "Job records by kind and status", ["kind", "status"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("jobs_queue_depth", "Jobs waiting for a worker", ["queue"], registry=REGISTRY)
QUEUE_RUNNING = Gauge(
    "jobs_queue_running", "Jobs a worker is running", ["queue"], registry=REGISTRY
)
QUEUE_SCHEDULED = Gauge(
    "jobs_queue_scheduled", "Jobs due later (retries, cron)", ["queue"], registry=REGISTRY
)
WORKERS = Gauge("jobs_workers", "Live workers on the queue", ["queue"], registry=REGISTRY)
WORKER_RUNS = Gauge(
    "jobs_worker_runs",
    "Jobs a live worker process finished since it started, by outcome",
    ["queue", "worker", "outcome"],
    registry=REGISTRY,
)
OUTCOMES = ("complete", "failed", "retried", "aborted")
DURATIONS = Gauge(
    "jobs_recent_duration_seconds",
    "Request-to-result time of jobs completed in the last ten minutes",
    ["kind", "quantile"],
    registry=REGISTRY,
)
DURATION_WINDOW = datetime.timedelta(minutes=10)
QUANTILES = (0.5, 0.9, 0.99)


async def refresh_job_metrics(app: Litestar) -> None:
    """Before a scrape: job counts from PostgreSQL, queue and workers from SAQ."""
    settings: Settings = app.state["job_settings"]
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_S):
            await _refresh_records(app)
    except Exception as exc:  # the scrape goes on with the last figures
        logger.warning("job metrics: could not read job records: %r", exc)
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_S):
            await _refresh_queue(app, settings.saq_queue)
    except Exception as exc:
        logger.warning("job metrics: could not read the queue: %r", exc)


async def _refresh_records(app: Litestar) -> None:
    async with app_engine(app).connect() as connection:
        repository = JobRepository(connection)
        rows = await repository.counts()
        durations = await repository.recent_durations(DURATION_WINDOW, QUANTILES)
    JOBS.clear()
    for kind, status, count in rows:
        JOBS.labels(kind=kind, status=status).set(count)
    DURATIONS.clear()
    for kind, *values in durations:
        for quantile, value in zip(QUANTILES, values, strict=True):
            DURATIONS.labels(kind=kind, quantile=str(quantile)).set(float(value))


async def _refresh_queue(app: Litestar, name: str) -> None:
    queue = app.plugins.get(SAQPlugin).get_queue(name)
    info = await queue.info()
    QUEUE_DEPTH.labels(queue=name).set(info["queued"])
    QUEUE_RUNNING.labels(queue=name).set(info["active"])
    QUEUE_SCHEDULED.labels(queue=name).set(info["scheduled"])
    WORKERS.labels(queue=name).set(len(info["workers"]))
    WORKER_RUNS.clear()  # workers come and go: only the live ones are reported
    for worker_id, worker in info["workers"].items():
        stats: Mapping[str, int] = worker.get("stats") or {}  # type: ignore[assignment]
        for outcome in OUTCOMES:
            value = stats.get(outcome, 0)
            WORKER_RUNS.labels(queue=name, worker=worker_id, outcome=outcome).set(value)


before_scrape(refresh_job_metrics)
