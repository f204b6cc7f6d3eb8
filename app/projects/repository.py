"""Project SQL. Every statement here starts from the scoped repository's visibility
conditions (tenant scope + not deleted), so no query can reach another caller's rows.

The hot paths select plain columns straight into msgspec Structs (no ORM objects) and
do their work in one round trip: the listing returns the page and the total together, and
a conditional change is a single `UPDATE ... WHERE version = ... RETURNING`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, func, select, true, update
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from app.db.soft_delete import utc_now
from app.db.tenancy import TenantScopedRepository
from app.projects.models import Project as ProjectModel
from app.projects.schemas import Project, ProjectSort, VersionedProject

__all__ = ["ProjectRepository"]

# The response's fields, in the order of `schemas.Project`.
_COLUMNS = (
    ProjectModel.id,
    ProjectModel.name,
    ProjectModel.description,
    ProjectModel.tenant_id,
    ProjectModel.created_at,
    ProjectModel.updated_at,
)
_FIELD_COUNT = len(_COLUMNS)

# (column, descending) pairs. Ties (same timestamp or name) are broken by id, so pages
# never overlap or skip rows.
_ORDERINGS: dict[ProjectSort, tuple[tuple[str, bool], ...]] = {
    ProjectSort.NEWEST: (("created_at", True), ("id", True)),
    ProjectSort.OLDEST: (("created_at", False), ("id", False)),
    ProjectSort.NAME: (("name", False), ("id", False)),
    ProjectSort.NAME_DESC: (("name", True), ("id", True)),
}


def _ordering(columns: ReadOnlyColumnCollection[str, Any], sort: ProjectSort) -> list[Any]:
    return [
        columns[key].desc() if descending else columns[key].asc()
        for key, descending in _ORDERINGS[sort]
    ]


def _project(row: Row[Any] | tuple[Any, ...]) -> Project:
    return Project(*row[:_FIELD_COUNT])


def _versioned(row: Row[Any]) -> VersionedProject:
    return VersionedProject(_project(row), row[_FIELD_COUNT])


class ProjectRepository(TenantScopedRepository[ProjectModel]):
    model_type = ProjectModel

    def soft_delete_values(self) -> dict[str, Any]:
        # A delete is a change too: any ETag issued before it no longer matches.
        return {**super().soft_delete_values(), "version": ProjectModel.version + 1}

    async def page(
        self, *, limit: int, offset: int, name_contains: str | None, sort: ProjectSort
    ) -> tuple[list[Project], int]:
        """One page of visible projects and the number of all that match, in one query.

        The total is a one-row count that the page is LEFT JOINed to: the count can use an
        index-only scan, only the page's rows are read from the table, and an offset past
        the end still returns the total (one row of NULLs).
        """
        criteria = self.visibility_criteria()
        if name_contains:
            # `autoescape` makes `%`, `_` and the escape character match themselves.
            criteria.append(ProjectModel.name.icontains(name_contains, autoescape=True))
        total = select(func.count().label("total")).where(*criteria).subquery("total")
        rows = (
            select(*_COLUMNS)
            .where(*criteria)
            .order_by(*_ordering(ProjectModel.__table__.c, sort))
            .limit(limit)
            .offset(offset)
            .subquery("page")
        )
        # The outer ORDER BY repeats the page's: a join does not promise to keep it.
        statement = (
            select(*rows.c, total.c.total)
            .select_from(total.outerjoin(rows, true()))
            .order_by(*_ordering(rows.c, sort))
        )
        result = (await self.session.execute(statement)).all()
        count: int = result[0][-1]
        items = [_project(row) for row in result if row[0] is not None]
        return items, count

    async def find(self, project_id: UUID) -> VersionedProject | None:
        statement = self.visible(
            select(*_COLUMNS, ProjectModel.version).where(ProjectModel.id == project_id)
        )
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else _versioned(row)

    async def version_of(self, project_id: UUID) -> int | None:
        """The current version of a visible project (to tell 412 from 404 after a miss)."""
        statement = self.visible(select(ProjectModel.version).where(ProjectModel.id == project_id))
        version: int | None = await self.session.scalar(statement)
        return version

    async def insert(self, *, name: str, description: str | None) -> VersionedProject:
        # `add` stamps the caller's tenant and subject; every value is known client-side,
        # so the INSERT needs no refresh afterwards.
        row = await self.add(ProjectModel(name=name, description=description), auto_refresh=False)
        return VersionedProject(
            Project(
                id=row.id,
                name=row.name,
                description=row.description,
                tenant_id=row.tenant_id,
                created_at=row.created_at,
                updated_at=row.updated_at,
            ),
            row.version,
        )

    async def change(
        self,
        project_id: UUID,
        values: Mapping[str, Any],
        *,
        expected_versions: Iterable[int] | None,
    ) -> VersionedProject | None:
        """Apply `values` and bump the version in one statement, only if the project is
        visible and (when `expected_versions` is given) still at one of those versions.
        None when nothing matched: then nothing was written."""
        conditions: list[ColumnElement[bool]] = [ProjectModel.id == project_id]
        if expected_versions is not None:
            conditions.append(ProjectModel.version.in_(list(expected_versions)))
        statement = (
            self.visible(update(ProjectModel).where(*conditions))
            .values(
                **values,
                version=ProjectModel.version + 1,
                updated_at=utc_now(),
            )
            .returning(*_COLUMNS, ProjectModel.version)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else _versioned(row)

    async def remove(self, project_id: UUID, *, expected_versions: Iterable[int] | None) -> bool:
        """Soft-delete a visible project (at one of `expected_versions`, when given)."""
        where = (
            [] if expected_versions is None else [ProjectModel.version.in_(list(expected_versions))]
        )
        deleted = await self._soft_delete(
            ProjectModel.id == project_id,
            *where,
            auto_commit=None,
            auto_expunge=None,
            error_messages=None,
            execution_options=None,
        )
        return bool(deleted)
