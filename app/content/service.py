"""Rules for the child-aware content: daily set sizes and what is "not found".

Age filtering and interest ranking happen in SQL (app/content/repository.py); this
layer decides how much a daily endpoint shows and turns missing things into 404s.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TypeVar

from litestar.exceptions import NotFoundException

from app.children.deps import ChildAccess
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
# PostgreSQL cannot store (such as NUL) ever reaches a query.
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Looked up instead of an id that cannot name a subject: it names none either, and the
# statement still checks the child first, so a foreign child stays a "Child not found".
_NO_SUBJECT = ""

_NOT_FOUND = {
    Missing.CHILD: "Child not found",
    Missing.SUBJECT: "Subject not found",
}


def _found(result: list[T] | Missing) -> list[T]:
    if isinstance(result, Missing):
        raise NotFoundException(_NOT_FOUND[result])
    return result


class ContentService:
    def __init__(self, repository: ContentRepository) -> None:
        self._repository = repository

    async def affirmations(self, child: ChildAccess, today: dt.date) -> list[Affirmation]:
        return _found(await self._repository.affirmations(child, today))

    async def subjects(self, child: ChildAccess, today: dt.date) -> list[Subject]:
        return _found(await self._repository.subjects(child, today))

    async def flashcards(
        self,
        child: ChildAccess,
        today: dt.date,
        subject_id: str | None,
        difficulty: Difficulty | None,
    ) -> list[Flashcard]:
        if subject_id is not None and not _SUBJECT_ID.match(subject_id):
            subject_id = _NO_SUBJECT
        return _found(await self._repository.flashcards(child, today, subject_id, difficulty))

    async def daily_chores(self, child: ChildAccess, today: dt.date) -> list[Chore]:
        return _found(await self._repository.daily_chores(child, today, DAILY_CHORES))

    async def outdoor_activities(
        self, child: ChildAccess, today: dt.date, *, daily: bool
    ) -> list[OutdoorActivity]:
        if daily:
            return _found(
                await self._repository.daily_outdoor_activities(
                    child, today, DAILY_OUTDOOR_ACTIVITIES
                )
            )
        return _found(await self._repository.outdoor_activities(child, today))
