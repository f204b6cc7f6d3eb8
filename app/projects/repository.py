"""Project SQL, always within a `TenantScope` and without soft-deleted rows.

Two doors, both built around the caller's scope:

- `ProjectReader` serves the hot reads (list, get) straight from the asyncpg driver: fixed
  SQL text whose WHERE starts with the scope's and soft delete's conditions, one round trip,
  no transaction, no session, rows turned directly into msgspec Structs.
- `ProjectRepository` (Advanced-Alchemy, soft delete, tenant scope) does the writes in the
  request's session, each a single statement; a conditional change is one
  `UPDATE ... WHERE version = ... RETURNING`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from advanced_alchemy.exceptions import NotFoundError
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.soft_delete import not_deleted_sql, utc_now
from app.db.tenancy import TenantScope, TenantScopedRepository
from app.projects.models import Project as ProjectModel
from app.projects.schemas import Project, ProjectSort, VersionedProject

__all__ = ["ListingQuery", "ProjectReader", "ProjectRepository"]

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
_TABLE = "projects"
_SELECT_LIST = ", ".join(f"{_TABLE}.{column.key}" for column in _COLUMNS)

# Ties (same timestamp or name) are broken by id, so pages never overlap or skip rows.
# The newest-first order matches the listing indexes column for column.
_ORDER_SQL: dict[ProjectSort, str] = {
    ProjectSort.NEWEST: "projects.created_at DESC, projects.id DESC",
    ProjectSort.OLDEST: "projects.created_at, projects.id",
    ProjectSort.NAME: "projects.name, projects.id",
    ProjectSort.NAME_DESC: "projects.name DESC, projects.id DESC",
}


def _contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with its `%`, `_` and `\\` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _project(row: Sequence[Any]) -> Project:
    return Project(row[0], row[1], row[2], row[3], row[4], row[5])


def _versioned(row: Sequence[Any]) -> VersionedProject:
    return VersionedProject(_project(row), row[_FIELD_COUNT])


@asynccontextmanager
async def _driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection's asyncpg driver, outside any transaction, for one statement.

    A lone SELECT is its own consistent snapshot, so there is no BEGIN/COMMIT around it, and
    the connection goes back to the pool as soon as the rows are read.
    """
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            yield driver
        except BaseException as error:
            # SQLAlchemy never sees errors raised here: when the link broke or a statement
            # was cut off mid-flight (client gone), keep the connection out of the pool.
            if not isinstance(error, asyncpg.PostgresError) or driver.is_closed():
                with contextlib.suppress(Exception):
                    await connection.invalidate()
            raise


class ListingQuery(NamedTuple):
    page_sql: str
    page_params: list[Any]
    count_sql: str
    count_params: list[Any]


class ProjectReader:
    """The hot reads of one caller's visible projects (no session needed)."""

    def __init__(self, engine: AsyncEngine, scope: TenantScope) -> None:
        self._engine = engine
        self._scope = scope

    def _visible(self, params: list[Any]) -> list[str]:
        """The same rules as `ProjectRepository.visibility_criteria`, as SQL text."""
        return [*self._scope.sql(_TABLE, params), not_deleted_sql(_TABLE)]

    def listing_query(
        self, *, limit: int, offset: int, name_contains: str | None, sort: ProjectSort
    ) -> ListingQuery:
        """The listing's SQL: the page with the total on every row, and the total alone.

        The total is an uncorrelated scalar subquery, computed once (an index-only scan of
        the listing index), while only the page's rows are read from the table.
        """
        params: list[Any] = []
        conditions = self._visible(params)
        if name_contains:
            params.append(_contains_pattern(name_contains))
            conditions.append(f"{_TABLE}.name ILIKE ${len(params)} ESCAPE '\\'")
        # SQL text from this module's constants only; every value travels as a parameter.
        where = " AND ".join(conditions)
        count_sql = f"SELECT count(*) FROM {_TABLE} WHERE {where}"  # noqa: S608
        page_sql = (
            f"SELECT {_SELECT_LIST}, ({count_sql}) FROM {_TABLE} WHERE {where} "  # noqa: S608
            f"ORDER BY {_ORDER_SQL[sort]} LIMIT ${len(params) + 1} OFFSET ${len(params) + 2}"
        )
        return ListingQuery(page_sql, [*params, limit, offset], count_sql, params)

    async def page(
        self, *, limit: int, offset: int, name_contains: str | None, sort: ProjectSort
    ) -> tuple[list[Project], int]:
        """One page of visible projects and the number of all that match, in one query
        (a second one only for an empty page past the first, to still report the total)."""
        query = self.listing_query(
            limit=limit, offset=offset, name_contains=name_contains, sort=sort
        )
        async with _driver_connection(self._engine) as connection:
            rows = await connection.fetch(query.page_sql, *query.page_params)
            if rows:
                total: int = rows[0][_FIELD_COUNT]
            elif offset == 0:
                total = 0
            else:
                total = await connection.fetchval(query.count_sql, *query.count_params)
        return [_project(row) for row in rows], total

    async def find(self, project_id: UUID) -> VersionedProject | None:
        params: list[Any] = [project_id]
        where = " AND ".join([f"{_TABLE}.id = $1", *self._visible(params)])
        sql = f"SELECT {_SELECT_LIST}, {_TABLE}.version FROM {_TABLE} WHERE {where}"  # noqa: S608
        async with _driver_connection(self._engine) as connection:
            row = await connection.fetchrow(sql, *params)
        return None if row is None else _versioned(row)


class ProjectRepository(TenantScopedRepository[ProjectModel]):
    """Writes (and Advanced-Alchemy's generic methods) within the scope, soft delete on."""

    model_type = ProjectModel

    def soft_delete_values(self) -> dict[str, Any]:
        # A delete is a change too: any ETag issued before it no longer matches.
        return {**super().soft_delete_values(), "version": ProjectModel.version + 1}

    async def version_of(self, project_id: UUID) -> int | None:
        """The current version of a visible project (to tell 412 from 404 after a miss),
        read in the session's transaction, after the statement that missed."""
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
            .values(**values, version=ProjectModel.version + 1, updated_at=utc_now())
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
        try:
            await self.delete(project_id, where=where)
        except NotFoundError:
            return False
        return True
