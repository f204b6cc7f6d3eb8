"""The `children` table (migrations 0001 and 0005; this mapping documents it for Alembic).

Child ids are per parent: the primary key is (owner_sub, id), so two parents may both
have a `mia-2018` and neither can tell whether the other exists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.base import DefaultBase
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, declarative_mixin, declared_attr, mapped_column

from app.db.scope import OwnedMixin

__all__ = ["ChildLinkedMixin", "ChildModel"]

# Kept in step with the API's id rule (app/children/schemas.py) so the table can never
# hold an id the API would refuse.
ID_CHECK = r"id ~ '^[A-Za-z0-9_-]{1,64}$'"


class ChildModel(OwnedMixin, DefaultBase):
    __tablename__ = "children"
    __table_args__ = (
        CheckConstraint(ID_CHECK, name="id_format"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
        CheckConstraint("cardinality(interests) <= 20", name="interest_count"),
        # Listing a parent's children reads this index in order.
        Index("ix_children_owner_sub_created_at", "owner_sub", "created_at", "id"),
    )

    # The parent: the `sub` claim of the token that created the child (OwnedMixin's
    # column, made the first part of the key).
    owner_sub: Mapped[str] = mapped_column(Text, primary_key=True, sort_order=-2)
    # A client-chosen or generated id, unique per parent: clients may create a child
    # offline and sync later.
    id: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-1)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    birthday: Mapped[dt.date] = mapped_column(Date, nullable=False)
    interests: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    avatar: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


@declarative_mixin
class ChildLinkedMixin(OwnedMixin):
    """Rows that hang off one of their owner's children: `child_id`, and the foreign key
    (owner_sub, child_id) → children (owner_sub, id). A row can only name a child of its
    own owner (another parent's child, or none, is a foreign key violation, which
    `CrudRepository.add` answers 404), and it goes when the child is deleted."""

    child_id: Mapped[str] = mapped_column(String(64), nullable=False, sort_order=12)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (
            ForeignKeyConstraint(
                ["owner_sub", "child_id"],
                [ChildModel.owner_sub, ChildModel.id],
                name=f"fk_{table}_child",
                ondelete="CASCADE",
            ),
            # The foreign key's lookups (a child's delete) and a child's rows in a listing.
            Index(f"ix_{table}_owner_sub_child_id", "owner_sub", "child_id"),
        )
