"""Project rules: input normalisation, preconditions (If-Match), not-found vs conflict.

`ProjectService` is always built around a `TenantScope` (see deps.py) or, for scheduled
maintenance, `EveryRow`, so whatever a method does, it does within the caller's
projects. Reads are precompiled (no transaction); writes run in the service's session.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from advanced_alchemy.exceptions import NotFoundError
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_412_PRECONDITION_FAILED
from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repository import DomainService
from app.db.scope import EveryRow
from app.db.tenancy import TenantScope
from app.projects.models import Project as ProjectModel
from app.projects.repository import ProjectRepository
from app.projects.schemas import (
    Project,
    ProjectCreate,
    ProjectPage,
    ProjectPatch,
    ProjectSort,
    VersionedProject,
)

__all__ = ["IfMatch", "PreconditionFailedError", "ProjectService", "etag"]


class PreconditionFailedError(HTTPException):
    status_code = HTTP_412_PRECONDITION_FAILED
    detail = "The project has changed since it was read (If-Match does not match its ETag)"


def etag(version: int) -> str:
    """The ETag of a project version (strong: one version has exactly one representation)."""
    return f'"{version}"'


# One entity-tag of an If-Match list: optional weakness prefix, then a quoted opaque tag.
_ENTITY_TAG = re.compile(r'^(W/)?"([^"]*)"$')


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A parsed If-Match header: `versions` the client has seen, or None for `*` (any)."""

    versions: frozenset[int] | None

    @classmethod
    def parse(cls, header: str | None) -> IfMatch | None:
        """None when the header is absent (the change applies unconditionally)."""
        if header is None:
            return None
        header = header.strip()
        if header == "*":
            return cls(versions=None)
        versions: set[int] = set()
        for part in header.split(","):
            match = _ENTITY_TAG.match(part.strip())
            if match is None:
                raise ValidationException(
                    "If-Match must be a list of quoted entity tags or *",
                    extra=[{"key": "If-Match", "message": 'expected an ETag such as "3"'}],
                )
            # A tag that is not one of ours can never match; it is simply ignored. So is a
            # weak one (W/"3"): If-Match compares strongly (RFC 9110 13.1.1), and a weak
            # tag promises no byte-for-byte sameness.
            weak, opaque = match.group(1), match.group(2)
            if not weak and opaque.isdigit() and len(opaque) < 10:
                versions.add(int(opaque))
        return cls(versions=frozenset(versions))


class ProjectService(DomainService[ProjectModel, ProjectRepository]):
    """The caller's projects, on Advanced-Alchemy's service and repository.

    Build it with `for_caller` (requests, through `provide_service`, and jobs acting for
    a caller) or `for_maintenance` (scheduled jobs such as the purge).
    """

    repository_type = ProjectRepository

    @classmethod
    def for_caller(
        cls, session: AsyncSession, *, tenant_id: str | None, owner_sub: str
    ) -> ProjectService:
        return cls(session=session, scope=TenantScope(tenant_id=tenant_id, owner_sub=owner_sub))

    @classmethod
    def for_maintenance(cls, session: AsyncSession) -> ProjectService:
        """Every tenant's projects, for scheduled jobs such as the purge (never a request).

        It commits its own work, as a job has no request cycle to do it.
        """
        return cls(session=session, scope=EveryRow(), auto_commit=True)

    # -- reads --------------------------------------------------------------------------

    async def list_projects(
        self, *, limit: int, offset: int, q: str | None, sort: ProjectSort
    ) -> ProjectPage:
        items, total = await self.repository.page(
            limit=limit, offset=offset, name_contains=q or None, sort=sort
        )
        return ProjectPage(items=items, total=total, limit=limit, offset=offset)

    async def get_project(self, project_id: UUID) -> VersionedProject:
        found = await self.repository.find(project_id)
        if found is None:
            raise NotFoundError("project not found")
        return found

    # -- writes -------------------------------------------------------------------------

    async def create_project(self, data: ProjectCreate) -> VersionedProject:
        row = await self.repository.insert(
            name=_clean_name(data.name), description=_clean_description(data.description)
        )
        return self._versioned(row)

    def _versioned(self, row: ProjectModel) -> VersionedProject:
        return VersionedProject(self.to_schema(row, schema_type=Project), row.version)

    async def update_project(
        self, project_id: UUID, patch: ProjectPatch, if_match: IfMatch | None
    ) -> VersionedProject:
        """Change the fields present in `patch`, atomically checked against `if_match`."""
        values: dict[str, Any] = {}
        if patch.name is not UNSET:
            values["name"] = _clean_name(patch.name)
        if patch.description is not UNSET:
            values["description"] = _clean_description(patch.description)
        if not values:
            # Nothing to change: answer like a read, still honouring the precondition.
            current = await self.get_project(project_id)
            if if_match is not None and not _satisfies(if_match, current.version):
                raise PreconditionFailedError()
            return current
        changed = await self.repository.change(
            project_id, values, expected_versions=_expected(if_match)
        )
        if changed is None:
            raise await self._miss(project_id)
        return self._versioned(changed)

    async def delete_project(self, project_id: UUID, if_match: IfMatch | None) -> None:
        if not await self.repository.remove(project_id, expected_versions=_expected(if_match)):
            raise await self._miss(project_id)

    async def _miss(self, project_id: UUID) -> Exception:
        """A conditional write matched no row: 412 if the project is there, else 404."""
        if await self.repository.version_of(project_id) is not None:
            return PreconditionFailedError()
        return NotFoundError("project not found")

    # -- maintenance ------------------------------------------------------------------

    async def purge_deleted_projects(self, older_than_days: int) -> int:
        """Permanently remove projects soft-deleted more than `older_than_days` days ago,
        within this service's scope, and return how many went.

        The worker's cron purges every soft-deletable domain at once (app/db/crud.py's
        `purge_soft_deleted`); this is the same for projects alone.
        """
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        return await self.purge_deleted(datetime.timedelta(days=older_than_days))


def _expected(if_match: IfMatch | None) -> frozenset[int] | None:
    return None if if_match is None else if_match.versions


def _satisfies(if_match: IfMatch, version: int) -> bool:
    return if_match.versions is None or version in if_match.versions


def _clean_name(name: str) -> str:
    return name.strip()  # never blank: the schema's pattern asks for a visible character


def _clean_description(description: str | None) -> str | None:
    return None if description is None else description.strip()
