"""Projects with soft delete and tenants.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("owner_sub", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.CheckConstraint("char_length(btrim(name)) > 0", name=op.f("ck_projects_name_not_blank")),
        sa.CheckConstraint(
            "is_deleted = (deleted_at IS NOT NULL)", name=op.f("ck_projects_deleted_at_iff_deleted")
        ),
    )
    # Listing a tenant's projects, newest first (also serves the total count).
    op.create_index(
        "ix_projects_tenant_listing",
        "projects",
        ["tenant_id", sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text("NOT is_deleted"),
    )
    # Listing a tenant-less caller's own projects, newest first.
    op.create_index(
        "ix_projects_owner_listing",
        "projects",
        ["owner_sub", sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text("tenant_id IS NULL AND NOT is_deleted"),
    )
    # The purge: deleted rows by age, and nothing else.
    op.create_index(
        "ix_projects_purge",
        "projects",
        ["deleted_at"],
        postgresql_where=sa.text("is_deleted"),
    )


def downgrade() -> None:
    op.drop_table("projects")
