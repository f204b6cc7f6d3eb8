"""Child ids per parent: the key of `children` becomes (owner_sub, id).

Existing rows keep their ids and owners (ids were globally unique, so they are unique
per parent too). Downgrading fails if two parents have since used the same id.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_children", "children", type_="primary")
    op.create_primary_key("pk_children", "children", ["owner_sub", "id"])


def downgrade() -> None:
    op.drop_constraint("pk_children", "children", type_="primary")
    op.create_primary_key("pk_children", "children", ["id"])
