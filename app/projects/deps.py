"""The one place a request's project services are built: always scoped to the caller.

Handlers ask for `project_reads` (list, get) or `project_service` (changes) and get an
object that adds the caller's tenant scope, and soft delete, to every statement it runs;
there is no unscoped way in.
"""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth import Principal
from app.db.tenancy import TenantScope
from app.projects.service import ProjectReads, ProjectService

__all__ = [
    "ProjectReadsDependency",
    "ProjectServiceDependency",
    "project_dependencies",
    "provide_project_reads",
    "provide_project_service",
]


def provide_project_reads(
    db_engine: NamedDependency[AsyncEngine], caller: NamedDependency[Principal]
) -> ProjectReads:
    # Reads take the engine, not a session: no session, transaction or commit per request.
    return ProjectReads.for_scope(db_engine, TenantScope.for_caller(caller))


def provide_project_service(
    db_session: NamedDependency[AsyncSession], caller: NamedDependency[Principal]
) -> ProjectService:
    return ProjectService.for_scope(db_session, TenantScope.for_caller(caller))


project_dependencies = {
    "project_reads": Provide(provide_project_reads, sync_to_thread=False),
    "project_service": Provide(provide_project_service, sync_to_thread=False),
}

ProjectReadsDependency = NamedDependency[ProjectReads]
ProjectServiceDependency = NamedDependency[ProjectService]
