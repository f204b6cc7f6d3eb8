"""Every ORM statement keeps to the visible rows: soft delete and row scopes, applied once.

`visibility_options` turns the rules (app/db/soft_delete.py, app/db/scope.py) into
SQLAlchemy `with_loader_criteria` options. Two paths use it and nothing else:

- the `do_orm_execute` listener below, registered on `Session` itself, adds the options
  to every SELECT, UPDATE and DELETE any session runs: Advanced-Alchemy's generic
  repository methods, our own statements, whatever a future repository builds. A
  statement on an owned table in a session that was given no scope for it is refused;
- precompiled reads (app/db/precompiled.py) compile the same options into their
  statements once.

The criteria reach every place the entity appears (joins, subqueries, CTEs), not only
the top level. Loads of attributes of objects already in the session (refresh, lazy
loads) are left alone: those rows were vetted when they were loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.orm.interfaces import ORMOption

from app.db.scope import OwnedMixin, RowScope, ScopeError, session_scopes
from app.db.soft_delete import INCLUDE_DELETED, SoftDeleteMixin, not_deleted

__all__ = ["visibility_options"]


def visibility_options(
    scopes: Mapping[type[Any], RowScope], *, include_deleted: bool = False
) -> list[ORMOption]:
    """The loader criteria that restrict a statement to the rows it may see."""
    options: list[ORMOption] = []
    if not include_deleted:
        # A lambda over the mixin: applied to every soft-deletable model in the statement.
        options.append(
            with_loader_criteria(
                SoftDeleteMixin, lambda cls: not_deleted(cls), include_aliases=True
            )
        )
    for model, scope in scopes.items():
        criterion = scope.criterion(model)
        if criterion is not None:
            options.append(with_loader_criteria(model, criterion, include_aliases=True))
    return options


@event.listens_for(Session, "do_orm_execute")
def _keep_to_visible_rows(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scopes = session_scopes(state.session)
    for mapper in state.all_mappers:
        if issubclass(mapper.class_, OwnedMixin) and mapper.class_ not in scopes:
            raise ScopeError(
                f"{mapper.class_.__name__} is owned: use it through a repository given a scope"
            )
    include_deleted = bool(state.execution_options.get(INCLUDE_DELETED, False))
    options = visibility_options(scopes, include_deleted=include_deleted)
    if options:
        state.statement = state.statement.options(*options)
