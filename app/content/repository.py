"""SQL for the child-aware content: one statement per request, ownership check included.

Every statement starts from the `child` CTE (the caller's child, or no row) and LEFT
JOINs the content to it, so the single round trip tells three cases apart:

- no row at all: the child does not exist or is not the caller's (404);
- one row of NULLs: the child exists but no item suits it (an empty list);
- otherwise: the items, already filtered by age and ranked.

Ranking, in SQL: items whose tags overlap the child's interests (lower-cased) first,
then a stable order (by id, or the daily shuffle). Statements are assembled from the
constants in this module only (hence `noqa: S608`); values always travel as `$n`
parameters: $1 child id, $2 caller's sub, $3 today's UTC date, then per statement.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.children.deps import ChildAccess
from app.children.repository import OWNED_CHILD_CTE
from app.content.schemas import (
    Affirmation,
    Chore,
    Difficulty,
    Flashcard,
    OutdoorActivity,
    Subject,
)
from app.db.driver import driver_connection

__all__ = ["ContentRepository", "DailyPick", "Missing"]

T = TypeVar("T")


class Missing(enum.Enum):
    """What a content statement could not find."""

    CHILD = "child"
    SUBJECT = "subject"


_MATCHED = "t.tags && child.interest_keys"


def _select(columns: tuple[str, ...], source: str) -> str:
    return ", ".join(f"{source}.{column}" for column in columns)


def _ranked_list(table: str, columns: tuple[str, ...]) -> str:
    """Every item suited to the child's age: interest matches first, then by id."""
    return f"""
WITH {OWNED_CHILD_CTE}
SELECT {_select(columns, "item")}
FROM child LEFT JOIN LATERAL (
    SELECT {_select(columns, "t")}, {_MATCHED} AS matched
    FROM {table} AS t
    WHERE child.age BETWEEN t.min_age AND t.max_age
) AS item ON true
ORDER BY item.matched DESC, item.id
"""  # noqa: S608


def _daily_pick(table: str, columns: tuple[str, ...]) -> str:
    """Today's items for the child: $4 items, up to $5 of them matching its interests.

    The order comes from md5(child id, date, item id): fixed for a child all day, a new
    shuffle the next day, different between children, and nothing is stored. Matching
    items fill at most $5 places, chosen by the same shuffle, so a child with only a few
    matches still sees the rest of the catalog rotate; the others are drawn from
    everything left.
    """
    return f"""
WITH {OWNED_CHILD_CTE},
candidates AS (
    SELECT {_select(columns, "t")}, {_MATCHED} AS matched,
           md5(child.id || '/' || $3::date::text || '/' || t.id) AS shuffle
    FROM child JOIN {table} AS t ON child.age BETWEEN t.min_age AND t.max_age
),
ranked AS (
    SELECT candidates.*,
           row_number() OVER (PARTITION BY matched ORDER BY shuffle) AS place_in_group
    FROM candidates
),
picked AS (
    SELECT * FROM ranked
    ORDER BY (matched AND place_in_group <= $5) DESC, shuffle
    LIMIT $4
)
SELECT {_select(columns, "picked")}
FROM child LEFT JOIN picked ON true
ORDER BY picked.matched DESC, picked.shuffle
"""  # noqa: S608


_COMMON = ("min_age", "max_age", "tags")
_AFFIRMATION_COLUMNS = ("id", "text", *_COMMON)
_SUBJECT_COLUMNS = ("id", "name", *_COMMON)
_FLASHCARD_COLUMNS = ("id", "subject_id", "difficulty", "front", "back", *_COMMON)
_ACTIVITY_COLUMNS = ("id", "title", "description", *_COMMON)

_AFFIRMATIONS = _ranked_list("affirmations", _AFFIRMATION_COLUMNS)
_SUBJECTS = _ranked_list("subjects", _SUBJECT_COLUMNS)
_OUTDOOR_ACTIVITIES = _ranked_list("outdoor_activities", _ACTIVITY_COLUMNS)
_DAILY_CHORES = _daily_pick("chores", _ACTIVITY_COLUMNS)
_DAILY_OUTDOOR_ACTIVITIES = _daily_pick("outdoor_activities", _ACTIVITY_COLUMNS)

# $4 subject id or NULL, $5 difficulty or NULL. `subject_known` (last column) is false
# only when a subject id was given that names no subject at all: 404, not an empty list.
_FLASHCARDS = f"""
WITH {OWNED_CHILD_CTE},
known AS (
    SELECT $4::text IS NULL OR EXISTS (SELECT 1 FROM subjects WHERE id = $4::text)
           AS subject_known
)
SELECT {_select(_FLASHCARD_COLUMNS, "item")}, known.subject_known
FROM child CROSS JOIN known LEFT JOIN LATERAL (
    SELECT {_select(_FLASHCARD_COLUMNS, "t")}, {_MATCHED} AS matched,
           array_position(ARRAY['easy', 'medium', 'hard'], t.difficulty::text)
           AS difficulty_rank
    FROM flashcards AS t
    WHERE known.subject_known
      AND child.age BETWEEN t.min_age AND t.max_age
      AND ($4::text IS NULL OR t.subject_id = $4::text)
      AND ($5::text IS NULL OR t.difficulty = $5::text)
) AS item ON true
ORDER BY item.matched DESC, item.subject_id, item.difficulty_rank, item.id
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class DailyPick:
    """How many items a daily endpoint returns, and how many may come from interests."""

    size: int
    from_interests: int


class ContentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _fetch(self, sql: str, child: ChildAccess, today: dt.date, *args: Any) -> Any:
        async with driver_connection(self._engine) as connection:
            return await connection.fetch(sql, child.child_id, child.owner_sub, today, *args)

    async def _items(
        self,
        build: Callable[..., T],
        sql: str,
        child: ChildAccess,
        today: dt.date,
        *args: Any,
    ) -> list[T] | Missing:
        rows = await self._fetch(sql, child, today, *args)
        if not rows:
            return Missing.CHILD
        # A lone row of NULLs: the child exists, nothing suits it.
        return [build(*row) for row in rows if row[0] is not None]

    async def affirmations(self, child: ChildAccess, today: dt.date) -> list[Affirmation] | Missing:
        return await self._items(Affirmation, _AFFIRMATIONS, child, today)

    async def subjects(self, child: ChildAccess, today: dt.date) -> list[Subject] | Missing:
        return await self._items(Subject, _SUBJECTS, child, today)

    async def outdoor_activities(
        self, child: ChildAccess, today: dt.date
    ) -> list[OutdoorActivity] | Missing:
        return await self._items(OutdoorActivity, _OUTDOOR_ACTIVITIES, child, today)

    async def daily_outdoor_activities(
        self, child: ChildAccess, today: dt.date, pick: DailyPick
    ) -> list[OutdoorActivity] | Missing:
        return await self._items(
            OutdoorActivity,
            _DAILY_OUTDOOR_ACTIVITIES,
            child,
            today,
            pick.size,
            pick.from_interests,
        )

    async def daily_chores(
        self, child: ChildAccess, today: dt.date, pick: DailyPick
    ) -> list[Chore] | Missing:
        return await self._items(Chore, _DAILY_CHORES, child, today, pick.size, pick.from_interests)

    async def flashcards(
        self,
        child: ChildAccess,
        today: dt.date,
        subject_id: str | None,
        difficulty: Difficulty | None,
    ) -> list[Flashcard] | Missing:
        rows = await self._fetch(_FLASHCARDS, child, today, subject_id, difficulty)
        if not rows:
            return Missing.CHILD
        if not rows[0][-1]:
            return Missing.SUBJECT
        return [Flashcard(*row[:-1]) for row in rows if row[0] is not None]
