"""The catalog tables (created and filled by migration 0002 from db/catalog/*.json).

The mappings document the schema for Alembic; requests read these tables with plain SQL
(app/content/repository.py). Tables are small (hundreds of rows), so the only index
beyond the primary keys is the one flashcards need for their subject.
"""

from __future__ import annotations

from advanced_alchemy.base import DefaultBase
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

__all__ = [
    "AffirmationModel",
    "ChoreModel",
    "FlashcardModel",
    "OutdoorActivityModel",
    "SubjectModel",
]

AGE_RANGE_CHECK = "min_age >= 0 AND min_age <= max_age"
TAGS_CHECK = "cardinality(tags) >= 1"


def _common_checks() -> tuple[CheckConstraint, CheckConstraint]:
    return (
        CheckConstraint(AGE_RANGE_CHECK, name="age_range"),
        CheckConstraint(TAGS_CHECK, name="has_tags"),
    )


class _CatalogItem:
    """Columns every catalog item has: a stable slug id, an age range and tags."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    min_age: Mapped[int] = mapped_column(Integer, nullable=False)
    max_age: Mapped[int] = mapped_column(Integer, nullable=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)


class SubjectModel(_CatalogItem, DefaultBase):
    __tablename__ = "subjects"
    __table_args__ = _common_checks()

    name: Mapped[str] = mapped_column(Text, nullable=False)


class AffirmationModel(_CatalogItem, DefaultBase):
    __tablename__ = "affirmations"
    __table_args__ = _common_checks()

    text: Mapped[str] = mapped_column(Text, nullable=False)


class FlashcardModel(_CatalogItem, DefaultBase):
    __tablename__ = "flashcards"
    __table_args__ = (
        *_common_checks(),
        CheckConstraint("difficulty IN ('easy', 'medium', 'hard')", name="difficulty"),
        Index("ix_flashcards_subject_id_difficulty", "subject_id", "difficulty"),
    )

    subject_id: Mapped[str] = mapped_column(String(64), ForeignKey("subjects.id"), nullable=False)
    difficulty: Mapped[str] = mapped_column(String(16), nullable=False)
    front: Mapped[str] = mapped_column(Text, nullable=False)
    back: Mapped[str] = mapped_column(Text, nullable=False)


class ChoreModel(_CatalogItem, DefaultBase):
    __tablename__ = "chores"
    __table_args__ = _common_checks()

    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)


class OutdoorActivityModel(_CatalogItem, DefaultBase):
    __tablename__ = "outdoor_activities"
    __table_args__ = _common_checks()

    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
