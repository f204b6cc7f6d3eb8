"""Tenant scope, decided once: which rows a caller may see, edit and delete.

- A caller with a tenant (the `TENANT_CLAIM` claim) works with every row of that tenant,
  whoever created it.
- A caller without a tenant works only with the rows it created itself that belong to
  no tenant.

A model opts in with `TenantOwnedMixin` (`tenant_id` plus `OwnedMixin`'s `owner_sub`); a
`DomainRepository` built with a `TenantScope` then keeps every statement to it
(app/db/scope.py says how). The scope is built from plain values, so this layer knows
nothing of tokens: the domain's dependency passes the caller's tenant and subject.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Text, and_
from sqlalchemy.orm import Mapped, declarative_mixin, mapped_column

from app.db.scope import Owned, OwnedMixin, RowScope, ScopeError, scope_parameter

__all__ = ["TenantOwned", "TenantOwnedMixin", "TenantScope"]


@declarative_mixin
class TenantOwnedMixin(OwnedMixin):
    """`tenant_id` (null: the row belongs to its creator alone) and `owner_sub` (creator)."""

    tenant_id: Mapped[str | None] = mapped_column(Text, nullable=True, sort_order=10)


class TenantOwned(Owned):
    tenant_id: ClassVar[Mapped[str | None]]


@dataclass(frozen=True, slots=True)
class TenantScope(RowScope):
    """A caller's rows: its tenant's, or (without a tenant) its own tenant-less ones."""

    tenant_id: str | None
    owner_sub: str

    def __post_init__(self) -> None:
        if not self.owner_sub:
            raise ValueError("a caller's scope needs the caller's subject")

    @property
    def shape(self) -> Hashable:
        return "tenant" if self.tenant_id is not None else "personal"

    def criterion(self, model: type[Any]) -> ColumnElement[bool]:
        if self.tenant_id is not None:
            tenant: ColumnElement[bool] = model.tenant_id == scope_parameter(
                model, "tenant_id", self.tenant_id
            )
            return tenant
        return and_(
            model.tenant_id.is_(None),
            model.owner_sub == scope_parameter(model, "owner_sub", self.owner_sub),
        )

    def parameters(self, model: type[Any]) -> dict[str, Any]:
        table = model.__tablename__
        if self.tenant_id is not None:
            return {f"{table}__scope_tenant_id": self.tenant_id}
        return {f"{table}__scope_owner_sub": self.owner_sub}

    def stamp(self, row: Any) -> None:
        if row.owner_sub is not None and row.owner_sub != self.owner_sub:
            raise ScopeError("a new row belongs to the caller that creates it")
        row.tenant_id = self.tenant_id
        row.owner_sub = self.owner_sub
