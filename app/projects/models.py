from __future__ import annotations

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import CheckConstraint, Index, Integer, String, and_, not_
from sqlalchemy.orm import Mapped, mapped_column

from app.db.soft_delete import SoftDeleteMixin
from app.db.tenancy import TenantOwnedMixin

__all__ = ["DESCRIPTION_MAX", "NAME_MAX", "Project"]

NAME_MAX = 200
DESCRIPTION_MAX = 2000


class Project(UUIDv7AuditBase, TenantOwnedMixin, SoftDeleteMixin):
    """A project; ids are UUIDv7 so they sort by creation time."""

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("char_length(btrim(name)) > 0", name="name_not_blank"),
        # The two soft-delete columns always agree.
        CheckConstraint("is_deleted = (deleted_at IS NOT NULL)", name="deleted_at_iff_deleted"),
        # Only a tenant's project outlives its creator's erasure (owner_sub set to null).
        CheckConstraint("tenant_id IS NOT NULL OR owner_sub IS NOT NULL", name="owner_or_tenant"),
    )

    name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX), nullable=True)
    # Bumped on every change; the ETag is made from it, and the ORM's own updates check it
    # (`version_id_col`) so no path can overwrite a change it has not seen.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}


# Each index serves one query shape (see repository.py); the partial predicates repeat the
# queries' own conditions so PostgreSQL can prove they apply. They are written on the
# table's columns: Alembic renders a Core expression into a migration, not an ORM attribute.
_columns = Project.__table__.c
Index(
    "ix_projects_tenant_listing",
    _columns.tenant_id,
    _columns.created_at.desc(),
    _columns.id.desc(),
    postgresql_where=not_(_columns.is_deleted),
)
Index(
    "ix_projects_owner_listing",
    _columns.owner_sub,
    _columns.created_at.desc(),
    _columns.id.desc(),
    postgresql_where=and_(_columns.tenant_id.is_(None), not_(_columns.is_deleted)),
)
Index("ix_projects_purge", _columns.deleted_at, postgresql_where=_columns.is_deleted)
