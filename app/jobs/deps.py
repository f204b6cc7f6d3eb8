"""The jobs domain's wiring: the SAQ queue the API enqueues on, the service, and the
`litestar workers run` command (an alias of `saq app.worker.settings`)."""

from __future__ import annotations

from click import Group
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol
from redis.asyncio import Redis
from saq.queue import Queue
from saq.queue.redis import RedisQueue
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.jobs.service import JobService

__all__ = ["JobsPlugin", "provide_job_service"]

WORKER_SETTINGS = "app.worker.settings"


class JobsPlugin(InitPluginProtocol, CLIPluginProtocol):
    """Builds the API's SAQ queue on the app's shared Redis client, when first needed.

    The API never runs jobs or listens on SAQ's channels: it only enqueues and aborts,
    so the queue adds no Redis connection of its own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state["job_settings"] = self._settings
        app_config.dependencies["job_queue"] = Provide(_provide_queue, sync_to_thread=False)
        return app_config

    def on_cli_init(self, cli: Group) -> None:
        @cli.group(name="workers", help="SAQ workers (the same as `saq app.worker.settings`).")
        def workers() -> None:
            """The group `litestar workers ...`."""

        @workers.command(name="run", help="Run a worker with its cron schedule until stopped.")
        def run() -> None:
            from saq.worker import start

            start(WORKER_SETTINGS)


def _provide_queue(state: State) -> Queue:
    queue: Queue | None = state.get("job_queue")
    if queue is None:
        settings: Settings = state["job_settings"]
        redis: Redis = state["redis"]
        queue = RedisQueue(redis, name=settings.saq_queue)
        state["job_queue"] = queue
    return queue


def provide_job_service(
    db_session: NamedDependency[AsyncSession],
    job_queue: NamedDependency[Queue],
    redis: NamedDependency[Redis],
    state: State,
) -> JobService:
    settings: Settings = state["job_settings"]
    return JobService(
        db_session,
        job_queue,
        redis,
        redis_timeout_s=settings.job_enqueue_timeout_s,
        max_open_jobs=settings.max_open_jobs_per_user,
    )
