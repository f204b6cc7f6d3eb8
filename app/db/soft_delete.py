"""Soft delete that any model opts into by inheriting `SoftDeleteMixin`.

The rule is one criterion, `not_deleted(model)`. `app.db.visibility` adds it to every
ORM statement of every session (SQLAlchemy's `do_orm_execute` event with
`with_loader_criteria`), and precompiled reads (`app.db.precompiled`) compile it into their
statements, so no read or write path can forget it. `DomainRepository` (app/db/repository.py)
turns `delete` into one `UPDATE ... SET is_deleted, deleted_at` for such models and adds
`purge_deleted`. A statement that must see deleted rows (the purge) says so with the
`include_deleted` execution option.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar, Protocol

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, ColumnElement, false, not_
from sqlalchemy.orm import Mapped, declarative_mixin, mapped_column

__all__ = [
    "INCLUDE_DELETED",
    "SoftDeletable",
    "SoftDeleteMixin",
    "not_deleted",
]

# Execution option: this statement sees soft-deleted rows too.
INCLUDE_DELETED = "include_deleted"


@declarative_mixin
class SoftDeleteMixin:
    """`is_deleted` (never null, false by default) and `deleted_at` (set on delete)."""

    is_deleted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false(), sort_order=3010
    )
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), nullable=True, default=None, sort_order=3011
    )


class SoftDeletable(Protocol):
    is_deleted: ClassVar[Mapped[bool]]
    deleted_at: ClassVar[Mapped[datetime.datetime | None]]


def not_deleted(model: Any) -> ColumnElement[bool]:
    """The soft-delete rule. `NOT is_deleted` (rather than `IS false`) so partial indexes
    declared `WHERE NOT is_deleted` match the queries' predicate."""
    criterion: ColumnElement[bool] = not_(model.is_deleted)
    return criterion
