"""Children of a signed-in parent.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "children",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner_sub", sa.Text(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=False),
        sa.Column(
            "interests",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("avatar", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_children"),
        sa.CheckConstraint(r"id ~ '^[A-Za-z0-9_-]{1,64}$'", name="ck_children_id_format"),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="ck_children_name_length"),
        sa.CheckConstraint("cardinality(interests) <= 20", name="ck_children_interest_count"),
    )
    op.create_index(
        "ix_children_owner_sub_created_at", "children", ["owner_sub", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_children_owner_sub_created_at", table_name="children")
    op.drop_table("children")
