"""What every CRUD domain repeats, written once on Advanced-Alchemy's repository and service.

- `Page`: a page of rows with the number of all that match (`{items, total, limit, offset}`),
  asked for with the `PageLimit` and `PageOffset` query parameters;
- `CrudRepository`: `DomainRepository` (scope, soft delete) plus `list_page` (one statement,
  Advanced-Alchemy's `get_many_and_count` with its window count), `update_returning` (one
  `UPDATE ... RETURNING` inside the scope) and `add` that answers a missing parent row
  (a foreign key violation: another parent's child, a deleted one) as `NotFoundError`,
  which the API answers 404 like any row the caller cannot see;
- `CrudService`: the five operations of a REST resource, answering `schema` Structs:
  `page`, `read`, `create_one`, `change` (fields left `UNSET` stay as they are), `remove`;
- `struct_from_row`: a result row (e.g. of `... RETURNING`) as a Struct, fields by name;
- `purge_soft_deleted`: the one purge, for every soft-deletable model (the worker's cron
  passes every domain's models; app/domains.py finds them).

A domain is a model, a `CrudRepository` naming it and a `CrudService` naming the
repository and the response Struct; hot reads may add `PrecompiledSelect`s
(app/db/precompiled.py) on the same repository.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import msgspec
from advanced_alchemy.exceptions import (
    ErrorMessages,
    ForeignKeyError,
    NotFoundError,
    wrap_sqlalchemy_exception,
)
from advanced_alchemy.filters import LimitOffset, OrderBy, StatementFilter
from advanced_alchemy.repository.typing import ModelT
from advanced_alchemy.utils.dataclass import Empty, EmptyType
from litestar.params import QueryParameter
from sqlalchemy import ColumnElement, Row, inspect, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utc_now
from app.db.repository import DomainRepository, DomainService
from app.db.scope import EveryRow
from app.db.soft_delete import SoftDeleteMixin

__all__ = [
    "CrudRepository",
    "CrudService",
    "MissingParentError",
    "Page",
    "PageLimit",
    "PageOffset",
    "changed_fields",
    "purge_soft_deleted",
    "struct_from_row",
]

ItemT = TypeVar("ItemT")
StructT = TypeVar("StructT", bound=msgspec.Struct)
PageT = TypeVar("PageT", bound="Page[Any]")
CrudRepositoryT = TypeVar("CrudRepositoryT", bound="CrudRepository[Any]")


class Page(msgspec.Struct, Generic[ItemT], frozen=True):
    """A page of rows. A domain names its own (`class NotePage(Page[Note], frozen=True)`
    with `items: list[Note]` repeated) so the OpenAPI document has a named, typed schema."""

    items: list[ItemT]
    total: Annotated[int, msgspec.Meta(description="Matching rows across all pages.")]
    limit: int
    offset: int


PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size, 1-100.")]
PageOffset = Annotated[int, QueryParameter(ge=0, description="Rows to skip.")]


class MissingParentError(NotFoundError):
    """A row names a parent row the caller does not have (a foreign key violation)."""


def struct_from_row(row: Row[Any], struct_type: type[StructT]) -> StructT:
    """`row`'s columns as a `struct_type`, matched to its fields by name."""
    columns = row._mapping  # SQLAlchemy's public name-keyed view of a row
    return struct_type(**{name: columns[name] for name in struct_type.__struct_fields__})


def changed_fields(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets (those not left `msgspec.UNSET`)."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }


class CrudRepository(DomainRepository[ModelT]):
    """`DomainRepository` with the statements every CRUD domain needs (see the module)."""

    # The listing order; ties must be broken by a unique column so pages never overlap.
    order: ClassVar[tuple[OrderBy, ...]] = (OrderBy("created_at", "desc"), OrderBy("id", "desc"))

    async def list_page(
        self, *filters: StatementFilter | ColumnElement[bool], limit: int, offset: int
    ) -> tuple[list[ModelT], int]:
        """The rows of one page and the number of all that match, in one statement (a
        second one only for an empty page past the first, to still report the total)."""
        rows, total = await self.get_many_and_count(
            LimitOffset(limit=limit, offset=offset), *self.order, *filters
        )
        if not rows and offset:
            total = await self.count(*filters)
        return rows, total

    async def add(self, data: ModelT, **kwargs: Any) -> ModelT:
        try:
            return await super().add(data, **kwargs)
        except ForeignKeyError:
            raise MissingParentError(
                f"{type(data).__name__} names a row that does not exist"
            ) from None

    async def update_returning(
        self,
        item_id: Any,
        values: Mapping[str, Any],
        *,
        where: Iterable[ColumnElement[bool]] = (),
        error_messages: ErrorMessages | EmptyType | None = Empty,
    ) -> ModelT | None:
        """Set `values` on the visible row `item_id` (and `updated_at`, when the model has
        one) in one `UPDATE ... WHERE <scope, not deleted, where> RETURNING`; None when
        no row matched, and then nothing was written."""
        model: Any = self.model_type
        values = dict(values)
        if "updated_at" in inspect(model).columns and "updated_at" not in values:
            values["updated_at"] = utc_now()
        statement = (
            update(model)
            .where(getattr(model, self.id_attribute) == item_id, *where)
            .values(**values)
            .returning(model)
            # Objects already in the session get the new column values too.
            .execution_options(synchronize_session="fetch", populate_existing=True)
        )
        messages = self.error_messages if error_messages in (Empty, None) else error_messages
        with wrap_sqlalchemy_exception(
            error_messages=messages,
            dialect_name=self.session.get_bind().dialect.name,
            wrap_exceptions=self.wrap_exceptions,
        ):
            row: ModelT | None = (await self.session.scalars(statement)).one_or_none()
            await self.session.flush()
        return row


class CrudService(
    DomainService[ModelT, CrudRepositoryT], Generic[ModelT, CrudRepositoryT, StructT]
):
    """A REST resource's operations within the repository's scope, answering `schema`."""

    schema: type[StructT]

    def as_schema(self, row: ModelT) -> StructT:
        return self.to_schema(row, schema_type=self.schema)

    async def page(
        self,
        page_type: type[PageT],
        *filters: StatementFilter | ColumnElement[bool],
        limit: int,
        offset: int,
    ) -> PageT:
        """One `page_type` (the domain's `Page[schema]`) of the visible rows."""
        rows, total = await self.repository.list_page(*filters, limit=limit, offset=offset)
        items = [self.as_schema(row) for row in rows]
        return page_type(items=items, total=total, limit=limit, offset=offset)

    async def read(self, item_id: Any) -> StructT:
        """The visible row `item_id`; `NotFoundError` (404) when there is none."""
        return self.as_schema(await self.get(item_id))

    async def create_one(self, data: msgspec.Struct) -> StructT:
        """A new row from a create body, stamped with the scope's owner (Advanced-Alchemy's
        `create` turns the Struct into the model)."""
        return self.as_schema(await self.create(data))

    async def change(self, item_id: Any, patch: msgspec.Struct) -> StructT:
        """Set the fields `patch` sets, in one statement; `NotFoundError` when not visible."""
        values = changed_fields(patch)
        if not values:
            return await self.read(item_id)
        row = await self.repository.update_returning(item_id, values)
        if row is None:
            raise NotFoundError(f"{self.repository.model_type.__name__} not found")
        return self.as_schema(row)

    async def remove(self, item_id: Any) -> None:
        """Delete the visible row `item_id` (soft for soft-deletable models); 404 if none."""
        await self.delete(item_id)


async def purge_soft_deleted(
    session: AsyncSession, models: Iterable[type[Any]], older_than: datetime.timedelta
) -> dict[str, int]:
    """Permanently remove the rows of every soft-deletable model in `models` that were
    deleted more than `older_than` ago, for every owner; committed per table. Returns
    how many rows went, by table."""
    purged: dict[str, int] = {}
    model: Any
    for model in models:
        if not issubclass(model, SoftDeleteMixin):
            continue
        repository_type: type[DomainRepository[Any]] = type(
            f"{model.__name__}Purge", (DomainRepository,), {"model_type": model}
        )
        repository = repository_type(session=session, scope=EveryRow(), auto_commit=True)
        purged[str(model.__tablename__)] = await repository.purge_deleted(older_than)
    return purged
