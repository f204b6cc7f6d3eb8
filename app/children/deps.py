"""How handlers reach the children service: one dependency, scoped to the caller.

`child_service` is built by app/db's `provide_service` from the caller's subject, so
every statement it runs is limited to the caller's children; there is no unscoped way
in. Ownership is checked inside the one statement that reads or writes the child: no
row means "not yours or not there", 404 either way.
"""

from __future__ import annotations

from typing import Any

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.children.service import ChildService
from app.db.services import provide_service

__all__ = ["ChildServiceDependency", "child_dependencies", "child_reads"]


def _child_service(session: AsyncSession, caller: Any) -> ChildService:
    principal: Principal = caller
    return ChildService.for_parent(session, principal.sub)


child_dependencies = {"child_service": provide_service(_child_service)}
# The hot GETs only make precompiled reads: the cheaper, read-only provider.
child_reads = {"child_service": provide_service(_child_service, read_only=True)}

ChildServiceDependency = NamedDependency[ChildService]
