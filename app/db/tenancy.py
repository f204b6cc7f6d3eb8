"""Tenant scoping, decided once: which rows a caller may see, edit and delete.

- A caller whose token carries a tenant (the `TENANT_CLAIM` claim) works with every row of
  that tenant, whoever created it.
- A caller without a tenant works only with the rows it created itself that belong to no
  tenant.

A model opts in with `TenantOwnedMixin` (columns `tenant_id`, `owner_sub`) and a repository
derived from `TenantScopedRepository`, which cannot be built without a `TenantScope` and
adds the scope's conditions to every statement it runs (on top of soft delete) and stamps
the scope on every row it inserts. Handlers never see an unscoped repository: the domain's
dependency builds it from the verified caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from advanced_alchemy.exceptions import ErrorMessages, RepositoryError
from advanced_alchemy.utils.dataclass import Empty, EmptyType
from sqlalchemy import ColumnElement, Text, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, declarative_mixin, mapped_column

from app.auth.principal import Principal
from app.db.soft_delete import SoftDeletable, SoftDeleteRepository

__all__ = [
    "TenantOwned",
    "TenantOwnedMixin",
    "TenantOwnershipError",
    "TenantScope",
    "TenantScopedRepository",
]


class TenantOwnershipError(RepositoryError):
    """Code tried to move a row to another tenant or owner, or to insert without a caller."""


@declarative_mixin
class TenantOwnedMixin:
    """`tenant_id` (null: the row belongs to its creator alone) and `owner_sub` (creator)."""

    # Text: tenant ids and subjects come from the identity provider; their length is its call.
    tenant_id: Mapped[str | None] = mapped_column(Text, nullable=True, sort_order=10)
    owner_sub: Mapped[str] = mapped_column(Text, nullable=False, sort_order=11)


@event.listens_for(TenantOwnedMixin, "before_update", propagate=True)
def _keep_ownership(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    """Ownership is fixed at insert: an ORM update that changes it is a bug, never applied."""
    state = inspect(target)
    for key in ("tenant_id", "owner_sub"):
        if state.attrs[key].history.has_changes():
            raise TenantOwnershipError(f"{type(target).__name__}.{key} cannot be changed")


class TenantOwned(SoftDeletable, Protocol):
    tenant_id: ClassVar[Mapped[str | None]]
    owner_sub: ClassVar[Mapped[str]]


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The rows a caller may work with. Build it with `for_caller` (requests) or
    `every_tenant` (maintenance jobs such as the purge; never from a request)."""

    tenant_id: str | None
    owner_sub: str | None
    unrestricted: bool = False

    def __post_init__(self) -> None:
        if not self.unrestricted and not self.owner_sub:
            raise ValueError("a caller's scope needs the caller's subject")

    @classmethod
    def for_caller(cls, caller: Principal) -> TenantScope:
        return cls(tenant_id=caller.tenant_id, owner_sub=caller.sub)

    @classmethod
    def every_tenant(cls) -> TenantScope:
        return cls(tenant_id=None, owner_sub=None, unrestricted=True)

    def criteria(self, model: type[TenantOwned]) -> list[ColumnElement[bool]]:
        if self.unrestricted:
            return []
        if self.tenant_id is not None:
            return [model.tenant_id == self.tenant_id]
        return [model.tenant_id.is_(None), model.owner_sub == self.owner_sub]

    def sql(self, table: str, params: list[Any]) -> list[str]:
        """`criteria` as SQL text on `table`; values go to `params` as `$n` placeholders."""
        if self.unrestricted:
            return []
        if self.tenant_id is not None:
            params.append(self.tenant_id)
            return [f"{table}.tenant_id = ${len(params)}"]
        params.append(self.owner_sub)
        return [f"{table}.tenant_id IS NULL", f"{table}.owner_sub = ${len(params)}"]

    def stamp(self, row: TenantOwned) -> None:
        """Give a new row to this scope's tenant (or to the caller alone) and creator."""
        if self.unrestricted or self.owner_sub is None:
            raise TenantOwnershipError("rows are created for a caller, not for every tenant")
        # setattr: the protocol declares the columns at class level, as the mapping does.
        setattr(row, "tenant_id", self.tenant_id)  # noqa: B010
        setattr(row, "owner_sub", self.owner_sub)  # noqa: B010


TenantModelT = TypeVar("TenantModelT", bound=TenantOwned)


class TenantScopedRepository(SoftDeleteRepository[TenantModelT]):
    """A soft-delete repository that only ever touches the rows of its `scope`."""

    def __init__(self, *, scope: TenantScope, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scope = scope

    def scope_criteria(self) -> list[ColumnElement[bool]]:
        return self.scope.criteria(self.model_type)

    async def add(
        self,
        data: TenantModelT,
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        auto_refresh: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        bind_group: str | None = None,
    ) -> TenantModelT:
        self.scope.stamp(data)
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
        data: list[TenantModelT],
        *,
        auto_commit: bool | None = None,
        auto_expunge: bool | None = None,
        error_messages: ErrorMessages | EmptyType | None = Empty,
        bind_group: str | None = None,
    ) -> Sequence[TenantModelT]:
        for row in data:
            self.scope.stamp(row)
        return await super().add_many(
            data,
            auto_commit=auto_commit,
            auto_expunge=auto_expunge,
            error_messages=error_messages,
            bind_group=bind_group,
        )

    async def upsert_many(self, *args: Any, **kwargs: Any) -> list[TenantModelT]:
        # The native ON CONFLICT path would update a matching row of any tenant.
        raise TenantOwnershipError("upsert_many is not available on tenant-scoped repositories")
