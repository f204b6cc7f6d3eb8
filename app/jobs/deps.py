"""The jobs domain's dependencies: the SAQ queue the API enqueues on, and the service."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.plugins import InitPluginProtocol
from redis.asyncio import Redis
from saq.queue import Queue
from saq.queue.redis import RedisQueue
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.jobs.service import JobService

__all__ = ["JobsPlugin", "provide_job_service"]


class JobsPlugin(InitPluginProtocol):
    """Builds the API's SAQ queue at startup on the app's shared Redis client.

    The API never runs jobs or listens on SAQ's channels: it only enqueues and aborts,
    so the queue adds no Redis connection of its own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state["job_settings"] = self._settings
        app_config.dependencies["job_queue"] = Provide(_provide_queue, sync_to_thread=False)
        return app_config


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
    return JobService(db_session, job_queue, redis, redis_timeout_s=settings.job_enqueue_timeout_s)
