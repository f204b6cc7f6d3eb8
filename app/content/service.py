"""Rules for the child-aware content: daily set sizes and what is "not found".

Age filtering and interest ranking happen in SQL (app/content/repository.py); this
layer decides how much a daily endpoint shows and turns missing things into 404s.
"""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from advanced_alchemy.service import SQLAlchemyAsyncQueryService
from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.service import valid_child_id
from app.content.repository import ContentRepository, DailyPick, Missing
from app.content.schemas import (
    Affirmation,
    Chore,
    Difficulty,
    Flashcard,
    OutdoorActivity,
    Subject,
)

__all__ = ["DAILY_CHORES", "DAILY_OUTDOOR_ACTIVITIES", "ContentService"]

T = TypeVar("T")

# A day's worth of chores: enough to choose from without becoming a to-do list; up to
# three follow the child's interests so the rest of the catalog still rotates in.
DAILY_CHORES = DailyPick(size=5, from_interests=3)
# One outing a day is the usual plan; three gives a choice (say, for the weather).
DAILY_OUTDOOR_ACTIVITIES = DailyPick(size=3, from_interests=2)

# Wider than the catalog's own rule (short lowercase words), narrow enough that nothing
# PostgreSQL cannot store (such as NUL) ever reaches a query: the same rule as child ids.
_SUBJECT_ID = valid_child_id
# Looked up instead of an id that cannot name a subject: it names none either, and the
# statement still checks the child first, so a foreign child stays a "Child not found".
_NO_SUBJECT = ""
# Likewise for a child id the API would never accept: the statement finds no child (404).
_NO_CHILD = ""

_NOT_FOUND = {
    Missing.CHILD: "Child not found",
    Missing.SUBJECT: "Subject not found",
}


def _found(result: list[T] | Missing) -> list[T]:
    if isinstance(result, Missing):
        raise NotFoundException(_NOT_FOUND[result])
    return result


class ContentService(SQLAlchemyAsyncQueryService):
    """The catalog for one parent's children: Advanced-Alchemy's query service over a
    `ContentRepository` scoped to that parent. Every method takes the child's id; an id
    that is not one of the parent's children is a 404."""

    repository: ContentRepository

    def __init__(self, session: AsyncSession, *, owner_sub: str) -> None:
        self.repository = ContentRepository.for_parent(session, owner_sub)

    def _for(self, child_id: str) -> str:
        return child_id if valid_child_id(child_id) else _NO_CHILD

    async def affirmations(self, child_id: str, today: dt.date) -> list[Affirmation]:
        return _found(await self.repository.affirmations(self._for(child_id), today))

    async def subjects(self, child_id: str, today: dt.date) -> list[Subject]:
        return _found(await self.repository.subjects(self._for(child_id), today))

    async def flashcards(
        self,
        child_id: str,
        today: dt.date,
        subject_id: str | None,
        difficulty: Difficulty | None,
    ) -> list[Flashcard]:
        if subject_id is not None and not _SUBJECT_ID(subject_id):
            subject_id = _NO_SUBJECT
        return _found(
            await self.repository.flashcards(self._for(child_id), today, subject_id, difficulty)
        )

    async def daily_chores(self, child_id: str, today: dt.date) -> list[Chore]:
        return _found(await self.repository.daily_chores(self._for(child_id), today, DAILY_CHORES))

    async def outdoor_activities(
        self, child_id: str, today: dt.date, *, daily: bool
    ) -> list[OutdoorActivity]:
        known = self._for(child_id)
        if daily:
            return _found(
                await self.repository.daily_outdoor_activities(
                    known, today, DAILY_OUTDOOR_ACTIVITIES
                )
            )
        return _found(await self.repository.outdoor_activities(known, today))
