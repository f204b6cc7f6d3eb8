"""The repository and service every domain builds on: Advanced-Alchemy's, plus our rules.

`DomainRepository[Model]` is `SQLAlchemyAsyncRepository` with three additions, chosen by
what the model declares, nothing else:

- an owned model (`OwnedMixin`, `TenantOwnedMixin`) needs a `scope` (app/db/scope.py):
  the repository binds it to its session, so every ORM statement of that session keeps
  to the caller's rows (app/db/visibility.py), and `add`/`add_many` stamp new rows;
- a soft-deletable model (`SoftDeleteMixin`) hides deleted rows everywhere, its `delete`
  becomes one `UPDATE ... SET is_deleted, deleted_at`, and `purge_deleted(older_than)`
  removes old deleted rows for good. The bulk writes that would bypass it are refused
  (`TypeError`) rather than re-implemented: `delete_many`/`delete_where` on a
  soft-deletable model, `update_many` on a soft-deletable or scoped one;
- `run_precompiled(query, **params)` runs a hot `PrecompiledSelect` (app/db/precompiled.py)
  on the session's engine, under the same scope and soft delete, without the session.

`QueryRepository` is Advanced-Alchemy's query repository with the same `run_precompiled`
door, for domains that read across tables (the content catalog). `DomainService` is
Advanced-Alchemy's service over a `DomainRepository`, passing the scope through.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from advanced_alchemy.exceptions import ErrorMessages, wrap_sqlalchemy_exception
from advanced_alchemy.repository import (
    LoadSpec,
    SQLAlchemyAsyncQueryRepository,
    SQLAlchemyAsyncRepository,
)
from advanced_alchemy.repository.typing import ModelT, PrimaryKeyType
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from advanced_alchemy.utils.dataclass import Empty, EmptyType
from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    delete,
    inspect,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.clock import utc_now
from app.db.precompiled import PrecompiledRows, PrecompiledSelect
from app.db.scope import OwnedMixin, RowScope, ScopeError, bind_scope
from app.db.soft_delete import INCLUDE_DELETED, SoftDeleteMixin

__all__ = ["DomainRepository", "DomainService", "QueryRepository"]

StructT = TypeVar("StructT", bound=msgspec.Struct)


@functools.cache
def _base_select(model: type[Any]) -> Select[Any]:
    return select(model)


def _engine(session: Any) -> AsyncEngine:
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        raise TypeError("precompiled reads need a session bound to an AsyncEngine")
    return bind


class QueryRepository(SQLAlchemyAsyncQueryRepository):
    """Advanced-Alchemy's query repository, with scopes for the owned tables it reads."""

    def __init__(
        self, *, session: AsyncSession, scopes: Mapping[type[Any], RowScope], **kwargs: Any
    ) -> None:
        super().__init__(session=session, **kwargs)
        self.scopes = dict(scopes)
        for model, scope in self.scopes.items():
            bind_scope(session, model, scope)

    async def run_precompiled(
        self, query: PrecompiledSelect[StructT], **params: Any
    ) -> PrecompiledRows[StructT]:
        return await query.rows(_engine(self.session), self.scopes, **params)


class DomainRepository(SQLAlchemyAsyncRepository[ModelT]):
    """Advanced-Alchemy's repository with row scope and soft delete (see the module)."""

    def __init__(self, *, session: AsyncSession, scope: RowScope | None = None, **kwargs: Any):
        if kwargs.get("statement") is None:
            # Statements are immutable: one base SELECT per model serves every instance
            # (Advanced-Alchemy would build a new one per repository, per request).
            kwargs["statement"] = _base_select(self.model_type)
        super().__init__(session=session, **kwargs)
        owned = issubclass(self.model_type, OwnedMixin)
        if owned and scope is None:
            raise ScopeError(f"{self.model_type.__name__} is owned: give the repository a scope")
        self.scope = scope
        self.soft_delete = issubclass(self.model_type, SoftDeleteMixin)
        if owned and scope is not None:
            bind_scope(session, self.model_type, scope)

    # -- precompiled reads ---------------------------------------------------------------

    @property
    def scopes(self) -> dict[type[Any], RowScope]:
        return {} if self.scope is None else {self.model_type: self.scope}

    async def run_precompiled(
        self, query: PrecompiledSelect[StructT], **params: Any
    ) -> PrecompiledRows[StructT]:
        """Run a hot read on this repository's engine, within its scope and soft delete."""
        return await query.rows(_engine(self.session), self.scopes, **params)

    # -- inserts are stamped with the scope -------------------------------------------

    def _stamp(self, rows: Iterable[ModelT]) -> None:
        if self.scope is not None:
            for row in rows:
                self.scope.stamp(row)

    async def add(
        self,
        data: ModelT,
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        auto_refresh: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        bind_group: str | None = None,
    ) -> ModelT:
        self._stamp([data])
        return await super().add(
            data,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            auto_refresh=auto_refresh,
            error_messages=error_messages,
            bind_group=bind_group,
        )

    async def add_many(
        self,
        data: list[ModelT],
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        bind_group: str | None = None,
    ) -> Sequence[ModelT]:
        self._stamp(data)
        return await super().add_many(
            data,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            bind_group=bind_group,
        )

    async def upsert_many(self, *args: Any, **kwargs: Any) -> list[ModelT]:
        if self.scope is not None:
            # The native ON CONFLICT path matches rows by key alone, across owners.
            raise ScopeError("upsert_many is not available on scoped repositories")
        return await super().upsert_many(*args, **kwargs)

    async def update_many(self, *args: Any, **kwargs: Any) -> list[ModelT]:
        if self.scope is not None or self.soft_delete:
            # SQLAlchemy's bulk UPDATE by primary key takes no loader criteria: it would
            # write deleted and other owners' rows alike.
            raise _bypass_error(self.model_type, "update_many", "update() each row")
        return await super().update_many(*args, **kwargs)

    # -- soft delete --------------------------------------------------------------------

    def soft_delete_values(self) -> dict[str, Any]:
        """Column values a delete writes; subclasses may add their own (e.g. a version bump)."""
        return {"is_deleted": True, "deleted_at": utc_now()}

    def _match_ids(
        self,
        item_ids: Sequence[PrimaryKeyType],
        id_attribute: str | InstrumentedAttribute[Any] | None,
    ) -> ColumnElement[bool]:
        if id_attribute is not None:
            attribute = (
                getattr(self.model_type, id_attribute)
                if isinstance(id_attribute, str)
                else id_attribute
            )
            return attribute.in_(list(item_ids))
        keys: Any = inspect(self.model_type).primary_key  # type: ignore[union-attr]
        if len(keys) == 1:
            matched: ColumnElement[bool] = keys[0].in_(list(item_ids))
            return matched
        return or_(*(tuple_(*keys) == tuple_(*item_id) for item_id in item_ids))

    async def _soft_delete(
        self,
        statement: Update,
        *,
        auto_commit: bool | None,
        auto_expunge: bool | None,
        error_messages: ErrorMessages | EmptyType | None,
        execution_options: dict[str, Any] | None,
        uniquify: bool | None,
        bind_group: str | None,
    ) -> list[ModelT]:
        """One `UPDATE ... SET is_deleted, deleted_at WHERE <visible> AND ... RETURNING *`;
        the session's visibility rules add "not deleted" and the scope."""
        options = dict(execution_options or {})
        if bind_group is not None:
            options["bind_group"] = bind_group
        returning = (
            statement.values(self.soft_delete_values())
            .returning(self.model_type)
            # Objects already in the session get the new column values too.
            .execution_options(synchronize_session="fetch", populate_existing=True, **options)
        )
        messages = self.error_messages if error_messages in (Empty, None) else error_messages
        with wrap_sqlalchemy_exception(
            error_messages=messages,
            dialect_name=self.session.get_bind().dialect.name,
            wrap_exceptions=self.wrap_exceptions,
        ):
            result = await self.session.scalars(returning)
            instances = list(result.unique() if uniquify else result)
            if self.auto_commit if auto_commit is None else auto_commit:
                await self.session.commit()
            else:
                await self.session.flush()
        if self.auto_expunge if auto_expunge is None else auto_expunge:
            for instance in instances:
                self.session.expunge(instance)
        return instances

    async def delete(
        self,
        item_id: PrimaryKeyType,
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        id_attribute: str | InstrumentedAttribute[Any] | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        load: LoadSpec | None = None,
        execution_options: dict[str, Any] | None = None,
        uniquify: bool | None = None,
        bind_group: str | None = None,
        where: Iterable[ColumnElement[bool]] = (),
    ) -> ModelT:
        """Delete one visible row (soft for soft-deletable models); `NotFoundError` when none
        matches. `where` adds conditions that must hold too (e.g. an expected version)."""
        if not self.soft_delete and not where:
            return await super().delete(
                item_id,
                auto_commit=auto_commit,
                auto_expunge=auto_expunge,
                id_attribute=id_attribute,
                error_messages=error_messages,
                load=load,
                execution_options=execution_options,
                uniquify=uniquify,
                bind_group=bind_group,
            )
        if not self.soft_delete:
            raise ValueError("where= is for soft-deletable models")
        _refuse_load(load)
        statement = update(self.model_type).where(self._match_ids([item_id], id_attribute), *where)
        deleted = await self._soft_delete(
            statement,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            execution_options=execution_options,
            uniquify=uniquify,
            bind_group=bind_group,
        )
        return self.check_not_found(deleted[0] if deleted else None)

    async def delete_many(self, *args: Any, **kwargs: Any) -> Sequence[ModelT]:
        if self.soft_delete:
            raise _bypass_error(self.model_type, "delete_many", "delete() each row")
        return await super().delete_many(*args, **kwargs)

    async def delete_where(self, *args: Any, **kwargs: Any) -> Sequence[ModelT]:
        if self.soft_delete:
            raise _bypass_error(self.model_type, "delete_where", "delete() each row")
        return await super().delete_where(*args, **kwargs)

    async def purge_deleted(
        self, older_than: datetime.timedelta, *, now: datetime.datetime | None = None
    ) -> int:
        """Permanently remove rows soft-deleted more than `older_than` ago; returns how many.

        The scope still applies (a tenant's repository purges its own tenant's rows).
        """
        if not self.soft_delete:
            raise TypeError(f"{self.model_type.__name__} is not soft-deletable")
        if older_than < datetime.timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = (now or utc_now()) - older_than
        model: Any = self.model_type
        statement = (
            delete(model)
            .where(model.is_deleted, model.deleted_at < cutoff)
            .execution_options(synchronize_session=False, **{INCLUDE_DELETED: True})
        )
        with wrap_sqlalchemy_exception(
            error_messages=self.error_messages,
            dialect_name=self.session.get_bind().dialect.name,
            wrap_exceptions=self.wrap_exceptions,
        ):
            result = await self.session.execute(statement)
            if self.auto_commit:
                await self.session.commit()
            else:
                await self.session.flush()
        return int(getattr(result, "rowcount", 0) or 0)


def _bypass_error(model: type[Any], method: str, instead: str) -> TypeError:
    return TypeError(
        f"{model.__name__}.{method} is refused: the bulk statement would bypass soft delete"
        f" and row scope; {instead} instead"
    )


def _refuse_load(load: LoadSpec | None) -> None:
    # A soft delete is an UPDATE ... RETURNING: there are no relationships to load.
    if load is not None:
        raise ValueError("load= is not supported when deleting soft-deletable rows")


DomainRepositoryT = TypeVar("DomainRepositoryT", bound=DomainRepository[Any])


class DomainService(SQLAlchemyAsyncRepositoryService[ModelT, DomainRepositoryT]):
    """Advanced-Alchemy's service over a `DomainRepository`: every inherited method (get,
    list, list_and_count, count, update, delete...) keeps to the repository's scope and
    soft delete; build it with `scope=` (requests: the caller's; jobs: `EveryRow()`)."""

    repository_type: type[DomainRepositoryT]

    async def purge_deleted(self, older_than: datetime.timedelta) -> int:
        return await self.repository.purge_deleted(older_than)
