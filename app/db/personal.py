"""What the service keeps about one caller, table by table: for export and erasure.

"Your data" (README): a parent may take everything kept about them and erase it. Each
domain answers for its own tables through the registry (app/domains.py,
`Domain.personal_data()`); the walk over every domain is app/personal_data.py. A domain
with owned tables needs no code of its own for this: `OwnedRows` covers any model with
`OwnedMixin` (a parent's rows, child-linked or not: all of them go) or
`TenantOwnedMixin` (rows without a tenant go; a tenant's rows stay with the tenant and
lose the caller's `sub`). A domain that keeps more (jobs: Redis copies) declares its own
`PersonalData` instead.

Every statement here sees soft-deleted rows too (`INCLUDE_DELETED`): an export shows
them and an erasure removes them, hard.

`owner_data_lock` is one caller's lock over their data: an erasure holds it for its whole
transaction and child creation takes it before inserting, so a child created while an
erasure runs is either erased with the rest or created after it, never half.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import Select, delete, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repository import DomainRepository
from app.db.scope import EveryRow, OwnedMixin
from app.db.soft_delete import INCLUDE_DELETED
from app.db.tenancy import TenantOwnedMixin

__all__ = [
    "Erasure",
    "OwnedRows",
    "PersonalData",
    "PersonalRowsRepository",
    "Rows",
    "owner_data_lock",
]

# Seeds the hash of a caller's data-lock key, keeping these keys apart from other
# advisory locks (the jobs' admission lock has its own seed).
_DATA_LOCK_SEED = 0x796F7572  # "your"

Rows = list[dict[str, Any]]


def owner_data_lock(owner_sub: str) -> Select[Any]:
    """`SELECT pg_advisory_xact_lock(<key of owner_sub>)`: held until the transaction ends."""
    return select(func.pg_advisory_xact_lock(func.hashtextextended(owner_sub, _DATA_LOCK_SEED)))


@dataclasses.dataclass(frozen=True, slots=True)
class Erasure:
    """What one domain removed: counts by kind, and work for after the commit (outside
    the database, e.g. Redis copies), given the worker's Redis client."""

    counts: dict[str, int]
    after_commit: Callable[[Redis], Awaitable[None]] | None = None


class PersonalData(Protocol):
    """A domain's part of "Your data"."""

    async def export(self, session: AsyncSession, owner_sub: str) -> dict[str, Rows]:
        """Everything the domain keeps about `owner_sub`, rows by table name."""

    async def erase(self, session: AsyncSession, owner_sub: str) -> Erasure:
        """Remove it (in `session`'s transaction; the caller commits)."""


class PersonalRowsRepository(DomainRepository[Any]):
    """One owned model's rows of one caller, soft-deleted ones included, for every owner
    (`EveryRow`): the statements name the caller themselves."""

    def __init__(self, *, session: AsyncSession, **kwargs: Any) -> None:
        super().__init__(session=session, scope=EveryRow(), **kwargs)

    @classmethod
    def of(cls, model: type[Any], session: AsyncSession) -> PersonalRowsRepository:
        repository_type = type(f"{model.__name__}PersonalRows", (cls,), {"model_type": model})
        repository: PersonalRowsRepository = repository_type(session=session)
        return repository

    def _columns(self) -> Sequence[Any]:
        return [attribute.key for attribute in inspect(self.model_type).column_attrs]

    async def rows_of(self, owner_sub: str) -> Rows:
        """The caller's rows as column values by name (`owner_sub` left out: it is them)."""
        model: Any = self.model_type
        keys = [key for key in self._columns() if key != "owner_sub"]
        statement = (
            select(*(getattr(model, key) for key in keys))
            .where(model.owner_sub == owner_sub)
            .order_by(*inspect(model).primary_key)
            .execution_options(**{INCLUDE_DELETED: True})
        )
        return [dict(zip(keys, row, strict=True)) for row in await self.session.execute(statement)]

    async def delete_rows_of(self, owner_sub: str, *, without_tenant: bool = False) -> int:
        """Remove the caller's rows for good (`without_tenant`: only those of no tenant)."""
        model: Any = self.model_type
        statement = delete(model).where(model.owner_sub == owner_sub)
        if without_tenant:
            statement = statement.where(model.tenant_id.is_(None))
        result = await self.session.execute(
            statement.execution_options(synchronize_session=False, **{INCLUDE_DELETED: True})
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def release_tenant_rows_of(self, owner_sub: str) -> int:
        """The caller's rows in a tenant stay with the tenant, no longer naming them."""
        model: Any = self.model_type
        statement = (
            update(model)
            .where(model.owner_sub == owner_sub, model.tenant_id.is_not(None))
            .values(owner_sub=None)
            .execution_options(synchronize_session=False, **{INCLUDE_DELETED: True})
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class OwnedRows:
    """`PersonalData` for a domain's owned models, from their mixins alone."""

    models: Sequence[type[Any]]

    def __post_init__(self) -> None:
        for model in self.models:
            if not issubclass(model, OwnedMixin):
                raise TypeError(f"{model.__name__} has no owner: it holds no one's data")

    async def export(self, session: AsyncSession, owner_sub: str) -> dict[str, Rows]:
        return {
            str(model.__tablename__): await PersonalRowsRepository.of(model, session).rows_of(
                owner_sub
            )
            for model in self.models
        }

    async def erase(self, session: AsyncSession, owner_sub: str) -> Erasure:
        counts: dict[str, int] = {}
        for model in self.models:
            table = str(model.__tablename__)
            repository = PersonalRowsRepository.of(model, session)
            if issubclass(model, TenantOwnedMixin):
                counts[table] = await repository.delete_rows_of(owner_sub, without_tenant=True)
                counts[f"{table}_left_with_tenant"] = await repository.release_tenant_rows_of(
                    owner_sub
                )
            else:
                counts[table] = await repository.delete_rows_of(owner_sub)
        return Erasure(counts)
