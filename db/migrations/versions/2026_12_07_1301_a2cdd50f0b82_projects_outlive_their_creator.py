"""A tenant's projects outlive their creator: `projects.owner_sub` may become null.

An erasure ("Your data") removes the caller's `sub` from the projects they created in a
tenant; the projects stay with the tenant. A project without a tenant still needs its
creator (it is erased with them), which a check constraint keeps true.

Revision ID: a2cdd50f0b82
Revises: 0005
Created: 2026-12-07 13:01:20.274150+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a2cdd50f0b82"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("projects", "owner_sub", existing_type=sa.TEXT(), nullable=True)
    op.create_check_constraint(
        op.f("ck_projects_owner_or_tenant"),
        "projects",
        "tenant_id IS NOT NULL OR owner_sub IS NOT NULL",
    )


def downgrade() -> None:
    # Fails while a tenant's project has lost its creator: there is no one to give it back to.
    op.drop_constraint(op.f("ck_projects_owner_or_tenant"), "projects", type_="check")
    op.alter_column("projects", "owner_sub", existing_type=sa.TEXT(), nullable=False)
