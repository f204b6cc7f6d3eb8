"""Soft delete that any model can opt into: a mixin for the columns plus a repository and a
service built on Advanced-Alchemy's, so every read and write path hides deleted rows.

Opting in: the model inherits `SoftDeleteMixin`, its repository inherits
`SoftDeleteRepository`, its service `SoftDeleteService`. Nothing else changes for callers:
`get`, `get_one(_or_none)`, `get_many(_and_count)` (and the older `list*`), `count`,
`exists`, `update`, `update_many` and `delete*` of the repository, and the service methods
that delegate to them, see only live rows, and `delete*` becomes one UPDATE that sets
`is_deleted` and `deleted_at`.

How: Advanced-Alchemy passes every SELECT, UPDATE and DELETE it builds through the
repository's `_get_base_stmt` (also a caller's own `statement=`), so overriding that one
method adds the visibility conditions everywhere. Custom statements written in a subclass
start from `visible()` / `visibility_criteria()` for the same effect; SQL text sent
straight to the driver (hot read paths) uses `not_deleted_sql()`.

`purge_deleted(older_than)` removes rows that have been soft-deleted for longer than the
given age, for good.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from advanced_alchemy.base import ModelProtocol
from advanced_alchemy.exceptions import ErrorMessages, wrap_sqlalchemy_exception
from advanced_alchemy.filters import StatementFilter
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.repository._util import LoadSpec
from advanced_alchemy.repository.typing import PrimaryKeyType
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from advanced_alchemy.types import DateTimeUTC
from advanced_alchemy.utils.dataclass import Empty, EmptyType
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Delete,
    Select,
    Update,
    delete,
    false,
    not_,
    or_,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, declarative_mixin, mapped_column
from sqlalchemy.orm.interfaces import ORMOption

__all__ = [
    "SoftDeletable",
    "SoftDeleteMixin",
    "SoftDeleteRepository",
    "SoftDeleteService",
    "not_deleted_sql",
    "utc_now",
]


def utc_now() -> datetime.datetime:
    # The app's clock, like Advanced-Alchemy's audit columns, so the timestamps of one row
    # all come from the same source.
    return datetime.datetime.now(datetime.UTC)


def not_deleted_sql(table: str) -> str:
    """The "not deleted" condition as SQL text, for statements sent straight to the driver.

    `NOT is_deleted` (rather than `IS false`) so partial indexes declared
    `WHERE NOT is_deleted` match the queries' predicate.
    """
    return f"NOT {table}.is_deleted"


@declarative_mixin
class SoftDeleteMixin:
    """`is_deleted` (never null, false by default) and `deleted_at` (set on delete)."""

    is_deleted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false(), sort_order=3010
    )
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), nullable=True, default=None, sort_order=3011
    )


class SoftDeletable(ModelProtocol, Protocol):
    """What the repository needs from a model: a mapped table with the mixin's columns.

    `ClassVar[Mapped[...]]` so that any mapped class with those columns matches and the
    class attributes type as SQL expressions.
    """

    is_deleted: ClassVar[Mapped[bool]]
    deleted_at: ClassVar[Mapped[datetime.datetime | None]]


SoftDeleteModelT = TypeVar("SoftDeleteModelT", bound=SoftDeletable)
_StatementT = TypeVar("_StatementT", Select[Any], Update, Delete)


class SoftDeleteRepository(SQLAlchemyAsyncRepository[SoftDeleteModelT]):
    """A repository whose every statement skips soft-deleted rows (unless `include_deleted`).

    Subclasses narrow what the repository may touch at all by overriding `scope_criteria`
    (tenancy, ownership): those conditions apply to every statement, including the purge.
    """

    def __init__(self, *, include_deleted: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.include_deleted = include_deleted
        # Advanced-Alchemy's entity cache is keyed by primary key only; a cached row could be
        # served past the visibility conditions below, so these repositories never use it.
        self._cache_manager = None

    # -- visibility ---------------------------------------------------------------------

    def scope_criteria(self) -> list[ColumnElement[bool]]:
        """Rows this repository may touch at all, deleted or not. None by default."""
        return []

    def visibility_criteria(self) -> list[ColumnElement[bool]]:
        """Conditions added to every statement: the scope, and "not deleted"."""
        criteria = self.scope_criteria()
        if not self.include_deleted:
            # `NOT is_deleted`, like `not_deleted_sql`, to match the partial indexes.
            criteria.append(not_(self.model_type.is_deleted))
        return criteria

    def visible(self, statement: _StatementT) -> _StatementT:
        """`statement` restricted to the rows this repository may see."""
        criteria = self.visibility_criteria()
        return statement.where(*criteria) if criteria else statement

    def _get_base_stmt(  # type: ignore[override]
        self,
        *,
        statement: _StatementT,
        loader_options: list[ORMOption] | None,
        execution_options: dict[str, Any] | None,
    ) -> _StatementT:
        base = SQLAlchemyAsyncRepository._get_base_stmt(
            statement=statement,
            loader_options=loader_options,  # type: ignore[arg-type]
            execution_options=execution_options,
        )
        return self.visible(base)

    async def update_many(
        self,
        data: list[SoftDeleteModelT],
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        load: LoadSpec | None = None,
        execution_options: dict[str, Any] | None = None,
        uniquify: bool | None = None,
        bind_group: str | None = None,
    ) -> list[SoftDeleteModelT]:
        """Advanced-Alchemy's bulk update by primary key, skipping rows that are not visible.

        SQLAlchemy cannot sync objects already in the session with a bulk UPDATE that has
        extra WHERE criteria; the rows RETURNING brings back refresh them instead. Rows
        that are deleted or out of scope are left alone and not returned.
        """
        return await super().update_many(
            data,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            load=load,
            execution_options={
                **(execution_options or {}),
                "synchronize_session": None,
                "populate_existing": True,
            },
            uniquify=uniquify,
            bind_group=bind_group,
        )

    # -- soft delete --------------------------------------------------------------------

    def soft_delete_values(self) -> dict[str, Any]:
        """Column values a delete writes; subclasses may add their own (e.g. a version bump)."""
        return {"is_deleted": True, "deleted_at": utc_now()}

    async def _soft_delete(
        self,
        *conditions: ColumnElement[bool],
        filters: Sequence[StatementFilter | ColumnElement[bool]] = (),
        kwargs: dict[str, Any] | None = None,
        auto_commit: bool | None,
        auto_expunge: bool | None,
        error_messages: ErrorMessages | EmptyType | None,
        execution_options: dict[str, Any] | None,
    ) -> list[SoftDeleteModelT]:
        """One `UPDATE ... SET is_deleted, deleted_at WHERE <visible> AND ... RETURNING *`."""
        messages = self._get_error_messages(
            error_messages=error_messages, default_messages=self.error_messages
        )
        with wrap_sqlalchemy_exception(
            error_messages=messages,
            dialect_name=self._dialect.name,
            wrap_exceptions=self.wrap_exceptions,
        ):
            statement = self._get_base_stmt(
                statement=update(self.model_type),
                loader_options=None,
                execution_options=self._get_execution_options(execution_options),
            )
            if conditions:
                statement = statement.where(*conditions)
            if kwargs:
                statement = self._filter_select_by_kwargs(statement, kwargs)
            if filters:
                statement = self._apply_filters(
                    *filters, statement=statement, apply_pagination=False
                )
            returning = (
                statement.values(self.soft_delete_values())
                .returning(self.model_type)
                # Objects already in the session get the new column values too.
                .execution_options(synchronize_session="fetch", populate_existing=True)
            )
            instances = list(await self.session.scalars(returning))
            await self._flush_or_commit(auto_commit=auto_commit)
            for instance in instances:
                self._expunge(instance, auto_expunge=auto_expunge)
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
    ) -> SoftDeleteModelT:
        """Soft-delete one visible row; `NotFoundError` when none matches.

        `where` adds conditions that must hold too, e.g. an expected version; when they do
        not, nothing is written and the outcome is the same `NotFoundError`.
        """
        if id_attribute is None:
            match = self._build_pk_filter(item_id)
        else:
            attribute = (
                getattr(self.model_type, id_attribute)
                if isinstance(id_attribute, str)
                else id_attribute
            )
            match = attribute == item_id
        deleted = await self._soft_delete(
            match,
            *where,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            execution_options=execution_options,
        )
        return self.check_not_found(deleted[0] if deleted else None)

    async def delete_many(
        self,
        item_ids: list[PrimaryKeyType],
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        id_attribute: str | InstrumentedAttribute[Any] | None = None,
        chunk_size: int | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        load: LoadSpec | None = None,
        execution_options: dict[str, Any] | None = None,
        uniquify: bool | None = None,
        bind_group: str | None = None,
    ) -> Sequence[SoftDeleteModelT]:
        """Soft-delete the visible rows among `item_ids`; returns those it deleted."""
        if not item_ids:
            return []
        if id_attribute is None and self.has_composite_pk:
            match = or_(*(self._build_pk_filter(item_id) for item_id in item_ids))
        else:
            attribute = (
                getattr(self.model_type, id_attribute or self.id_attribute)
                if not isinstance(id_attribute, InstrumentedAttribute)
                else id_attribute
            )
            match = attribute.in_(item_ids)
        return await self._soft_delete(
            match,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            execution_options=execution_options,
        )

    async def delete_where(
        self,
        *filters: StatementFilter | ColumnElement[bool],
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        sanity_check: bool = True,
        load: LoadSpec | None = None,
        execution_options: dict[str, Any] | None = None,
        uniquify: bool | None = None,
        bind_group: str | None = None,
        **kwargs: Any,
    ) -> Sequence[SoftDeleteModelT]:
        """Soft-delete every visible row matching `filters` and `kwargs`."""
        return await self._soft_delete(
            filters=filters,
            kwargs=kwargs,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            execution_options=execution_options,
        )

    # -- purge --------------------------------------------------------------------------

    async def purge_deleted(
        self, older_than: datetime.timedelta, *, now: datetime.datetime | None = None
    ) -> int:
        """Permanently remove rows soft-deleted more than `older_than` ago; returns how many.

        Only the scope applies here (not "not deleted", naturally): a tenant-scoped
        repository purges its own tenant's rows.
        """
        if older_than < datetime.timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = (now or utc_now()) - older_than
        model = self.model_type
        statement = delete(model).where(
            *self.scope_criteria(),
            model.is_deleted,
            model.deleted_at < cutoff,
        )
        with wrap_sqlalchemy_exception(
            error_messages=self.error_messages,
            dialect_name=self._dialect.name,
            wrap_exceptions=self.wrap_exceptions,
        ):
            result = await self.session.execute(
                statement.execution_options(synchronize_session=False)
            )
            await self._flush_or_commit(auto_commit=None)
        return int(getattr(result, "rowcount", 0) or 0)


SoftDeleteRepositoryT = TypeVar("SoftDeleteRepositoryT", bound=SoftDeleteRepository[Any])


class SoftDeleteService(SQLAlchemyAsyncRepositoryService[SoftDeleteModelT, SoftDeleteRepositoryT]):
    """Advanced-Alchemy's service over a `SoftDeleteRepository`: every inherited method
    (get, list, list_and_count, count, update, delete...) already honours soft delete
    through the repository; this adds the purge."""

    repository_type: type[SoftDeleteRepositoryT]

    async def purge_deleted(self, older_than: datetime.timedelta) -> int:
        return await self.repository.purge_deleted(older_than)
