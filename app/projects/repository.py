"""Statements for projects, all on `ProjectRepository` (Advanced-Alchemy, tenant-scoped,
soft delete).

The repository is built with the caller's `TenantScope`; app/db adds the scope and "not
deleted" to every statement it runs, the precompiled reads included:

- list and get are hot reads: SQLAlchemy selects compiled once (app/db/precompiled.py), one
  round trip, no session, rows straight into msgspec Structs;
- writes run in the session, each a single statement; a conditional change is one
  `UPDATE ... WHERE version IN (...) RETURNING`.

Listing filters are Advanced-Alchemy `StatementFilter`s: its `OrderBy` for the sort and
our `NameContains` for `q`, whose value travels as a named parameter so that the
compiled statement serves every search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.filters import OrderBy, StatementFilter, escape_like_value
from sqlalchemy import Integer, Select, Text, bindparam, func, select

from app.db.crud import CrudRepository
from app.db.precompiled import PrecompiledSelect
from app.projects.models import Project as ProjectModel
from app.projects.schemas import Project, ProjectSort, VersionedProject

__all__ = ["NameContains", "ProjectRepository", "listing_query"]

# The response's fields (matched to `schemas.Project` by name).
_COLUMNS = (
    ProjectModel.id,
    ProjectModel.name,
    ProjectModel.description,
    ProjectModel.tenant_id,
    ProjectModel.created_at,
    ProjectModel.updated_at,
)

# Ties (same timestamp or name) are broken by id, so pages never overlap or skip rows.
# The newest-first order matches the listing indexes column for column.
_ORDER: dict[ProjectSort, tuple[OrderBy, ...]] = {
    ProjectSort.NEWEST: (OrderBy("created_at", "desc"), OrderBy("id", "desc")),
    ProjectSort.OLDEST: (OrderBy("created_at", "asc"), OrderBy("id", "asc")),
    ProjectSort.NAME: (OrderBy("name", "asc"), OrderBy("id", "asc")),
    ProjectSort.NAME_DESC: (OrderBy("name", "desc"), OrderBy("id", "desc")),
}

_NAME_PATTERN = "name_pattern"


@dataclass(frozen=True)
class NameContains(StatementFilter):
    """Names containing `text`, case-insensitive, with `%` and `_` taken literally.

    Like Advanced-Alchemy's `SearchFilter(escape_wildcards=True, ignore_case=True)`, but
    the pattern is a named parameter (`name_pattern`), so a compiled statement can be
    reused for any text. `None` builds the condition with the parameter unset.
    """

    text: str | None = None

    @staticmethod
    def pattern(text: str) -> str:
        return f"%{escape_like_value(text)}%"

    def append_to_statement(self, statement: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        value = None if self.text is None else self.pattern(self.text)
        pattern = bindparam(_NAME_PATTERN, value, type_=Text)
        return statement.where(model.name.ilike(pattern, escape="/"))


def _listing(sort: ProjectSort, searching: bool) -> Select[Any]:
    """A page of visible projects with the number of all that match on every row.

    The total is an uncorrelated scalar subquery, computed once (an index-only scan of
    the listing index), while only the page's rows are read from the table.
    """
    filters: list[StatementFilter] = [NameContains()] if searching else []
    count = select(func.count()).select_from(ProjectModel)
    page = select(*_COLUMNS)
    for item in filters:
        count = item.append_to_statement(count, ProjectModel)
        page = item.append_to_statement(page, ProjectModel)
    for order in _ORDER[sort]:
        page = order.append_to_statement(page, ProjectModel)
    return (
        page.add_columns(count.scalar_subquery().label("total"))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


class _Total(msgspec.Struct):
    total: int


def _count(searching: bool) -> Select[Any]:
    statement = select(func.count().label("total")).select_from(ProjectModel)
    if searching:
        statement = NameContains().append_to_statement(statement, ProjectModel)
    return statement


_LISTINGS: dict[tuple[ProjectSort, bool], PrecompiledSelect[Project]] = {
    (sort, searching): PrecompiledSelect(partial(_listing, sort, searching), Project)
    for sort in ProjectSort
    for searching in (False, True)
}
_COUNT: dict[bool, PrecompiledSelect[_Total]] = {
    searching: PrecompiledSelect(partial(_count, searching), _Total) for searching in (False, True)
}
_GET = PrecompiledSelect(
    lambda: select(*_COLUMNS, ProjectModel.version).where(
        ProjectModel.id == bindparam("project_id")
    ),
    Project,
)


def listing_query(sort: ProjectSort, *, searching: bool) -> PrecompiledSelect[Project]:
    """The compiled-once listing statement for a sort order, with or without `q`."""
    return _LISTINGS[sort, searching]


class ProjectRepository(CrudRepository[ProjectModel]):
    """Reads and writes of the scope's projects, soft delete on."""

    model_type = ProjectModel

    # -- hot reads ---------------------------------------------------------------------

    async def page(
        self, *, limit: int, offset: int, name_contains: str | None, sort: ProjectSort
    ) -> tuple[list[Project], int]:
        """One page of visible projects and the number of all that match, in one query
        (a second one only for an empty page past the first, to still report the total)."""
        searching = bool(name_contains)
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if searching:
            params[_NAME_PATTERN] = NameContains.pattern(name_contains or "")
        rows = await self.run_precompiled(_LISTINGS[sort, searching], **params)
        if rows:
            total: int = rows.value(rows.records[0], "total")
        elif offset == 0:
            total = 0
        else:
            del params["limit"], params["offset"]
            total = (await self.run_precompiled(_COUNT[searching], **params)).structs()[0].total
        return rows.structs(), total

    async def find(self, project_id: UUID) -> VersionedProject | None:
        rows = await self.run_precompiled(_GET, project_id=project_id)
        if not rows:
            return None
        record = rows.records[0]
        return VersionedProject(rows.structs()[0], rows.value(record, "version"))

    # -- writes ------------------------------------------------------------------------

    def soft_delete_values(self) -> dict[str, Any]:
        # A delete is a change too: any ETag issued before it no longer matches.
        return {**super().soft_delete_values(), "version": ProjectModel.version + 1}

    async def version_of(self, project_id: UUID) -> int | None:
        """The current version of a visible project (to tell 412 from 404 after a miss),
        read in the session's transaction, after the statement that missed."""
        statement = select(ProjectModel.version).where(ProjectModel.id == project_id)
        version: int | None = await self.session.scalar(statement)
        return version

    async def insert(self, *, name: str, description: str | None) -> ProjectModel:
        # `add` stamps the caller's tenant and subject; every value is known client-side,
        # so the INSERT needs no refresh afterwards.
        return await self.add(ProjectModel(name=name, description=description), auto_refresh=False)

    async def change(
        self,
        project_id: UUID,
        values: Mapping[str, Any],
        *,
        expected_versions: Iterable[int] | None,
    ) -> ProjectModel | None:
        """Apply `values` and bump the version in one statement, only if the project is
        visible and (when `expected_versions` is given) still at one of those versions.
        None when nothing matched: then nothing was written."""
        where = (
            [] if expected_versions is None else [ProjectModel.version.in_(list(expected_versions))]
        )
        return await self.update_returning(
            project_id, {**values, "version": ProjectModel.version + 1}, where=where
        )

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
