"""Content catalog tables and the built-in catalog data.

Revision ID: 0002
Revises: 0001

The data comes from db/catalog/*.json through `db.catalog_loader.load_catalog`, which
upserts by id and deletes retired ids; a later revision that changes the files calls it
again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from db.catalog_loader import load_catalog

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _catalog_columns(table: str) -> list[sa.SchemaItem]:
    """The columns and checks every catalog item has: slug id, age range, tags."""
    return [
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("min_age", sa.Integer(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.CheckConstraint("min_age >= 0 AND min_age <= max_age", name=f"ck_{table}_age_range"),
        sa.CheckConstraint("cardinality(tags) >= 1", name=f"ck_{table}_has_tags"),
    ]


def upgrade() -> None:
    op.create_table(
        "subjects",
        *_catalog_columns("subjects"),
        sa.Column("name", sa.Text(), nullable=False),
    )
    op.create_table(
        "affirmations",
        *_catalog_columns("affirmations"),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_table(
        "flashcards",
        *_catalog_columns("flashcards"),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("difficulty", sa.String(16), nullable=False),
        sa.Column("front", sa.Text(), nullable=False),
        sa.Column("back", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name="fk_flashcards_subject_id_subjects"
        ),
        sa.CheckConstraint(
            "difficulty IN ('easy', 'medium', 'hard')", name="ck_flashcards_difficulty"
        ),
    )
    op.create_index(
        "ix_flashcards_subject_id_difficulty", "flashcards", ["subject_id", "difficulty"]
    )
    for table in ("chores", "outdoor_activities"):
        op.create_table(
            table,
            *_catalog_columns(table),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
        )
    load_catalog(op.get_bind())


def downgrade() -> None:
    for table in ("outdoor_activities", "chores", "flashcards", "affirmations", "subjects"):
        op.drop_table(table)
