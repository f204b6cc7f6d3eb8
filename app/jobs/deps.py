"""How API handlers get the job service."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar_saq import TaskQueues
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.jobs.progress import ProgressPublisher
from app.jobs.service import JobService

__all__ = ["provide_job_service"]


def provide_job_service(
    db_session: NamedDependency[AsyncSession],
    task_queues: NamedDependency[TaskQueues],
    redis: NamedDependency[Redis],
    state: State,
) -> JobService:
    settings: Settings = state["job_settings"]
    return JobService(
        db_session,
        task_queues.get(settings.saq_queue),
        ProgressPublisher(redis),
        redis_timeout_s=settings.job_enqueue_timeout_s,
        max_open_jobs=settings.max_open_jobs_per_user,
    )
