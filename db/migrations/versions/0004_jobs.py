"""Job records (owner, kind, state) beside SAQ.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved for the jobs domain; filled in by its issue.
    pass


def downgrade() -> None:
    pass
