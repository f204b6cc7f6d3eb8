"""The one place a request's project service is built: always scoped to the caller.

Handlers ask for `project_service` and get an Advanced-Alchemy service whose repository
adds the caller's tenant scope, and soft delete, to every statement it runs; there is
no unscoped way in.
"""

from __future__ import annotations

from typing import Any

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.db.services import provide_service
from app.projects.service import ProjectService

__all__ = ["ProjectServiceDependency", "project_dependencies", "project_reads"]


def _project_service(session: AsyncSession, caller: Any) -> ProjectService:
    principal: Principal = caller
    return ProjectService.for_caller(
        session, tenant_id=principal.tenant_id, owner_sub=principal.sub
    )


project_dependencies = {"project_service": provide_service(_project_service)}
# List and get only make precompiled reads: the cheaper, read-only provider.
project_reads = {"project_service": provide_service(_project_service, read_only=True)}

ProjectServiceDependency = NamedDependency[ProjectService]
