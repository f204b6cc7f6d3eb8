"""The one place a request's project service is built: always scoped to the caller.

Handlers ask for `project_service` and get a service whose repository adds the caller's
tenant scope (and soft delete) to every statement; there is no unscoped way in.
"""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db.tenancy import TenantScope
from app.projects.service import ProjectService

__all__ = ["ProjectServiceDependency", "project_dependencies", "provide_project_service"]


def provide_project_service(
    db_session: NamedDependency[AsyncSession], caller: NamedDependency[Principal]
) -> ProjectService:
    return ProjectService.for_scope(db_session, TenantScope.for_caller(caller))


project_dependencies = {
    "project_service": Provide(provide_project_service, sync_to_thread=False),
}

ProjectServiceDependency = NamedDependency[ProjectService]
