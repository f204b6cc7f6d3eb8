"""HTTP endpoints for the child-aware content (API.md, "Content").

Query parameters are named in the handlers exactly as clients send them (`childId`,
`subjectId`, `isDaily`), so a 400 names the parameter the client actually used.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine

from app.children.deps import ChildAccess, child_from_query
from app.clock import provide_today
from app.content.repository import ContentRepository
from app.content.schemas import (
    Affirmation,
    Chore,
    Difficulty,
    Flashcard,
    OutdoorActivity,
    Subject,
)
from app.content.service import ContentService

__all__ = ["ContentController"]


def provide_content_service(db_engine: NamedDependency[AsyncEngine]) -> ContentService:
    return ContentService(ContentRepository(db_engine))


# 400: missing `childId` or a bad filter value; 404: not one of your children.
RAISES = [ValidationException, NotFoundException]

Child = NamedDependency[ChildAccess]
Content = NamedDependency[ContentService]
Today = NamedDependency[dt.date]


class ContentController(Controller):
    """Every endpoint takes `childId` (one of your children): only items suited to the
    child's age are returned, those whose tags match its interests first."""

    path = "/v1"
    tags = ["content"]
    dependencies = {
        "child": Provide(child_from_query, sync_to_thread=False),
        "content": Provide(provide_content_service, sync_to_thread=False),
        "today": Provide(provide_today, sync_to_thread=False),
    }

    @get("/affirmations", summary="Affirmations for a child", raises=RAISES)
    async def list_affirmations(
        self, child: Child, content: Content, today: Today
    ) -> list[Affirmation]:
        return await content.affirmations(child, today)

    @get("/subjects", summary="Flashcard subjects for a child", raises=RAISES)
    async def list_subjects(self, child: Child, content: Content, today: Today) -> list[Subject]:
        return await content.subjects(child, today)

    @get("/flashcards", summary="Flashcards for a child", raises=RAISES)
    async def list_flashcards(
        self,
        child: Child,
        content: Content,
        today: Today,
        subjectId: Annotated[
            str | None, QueryParameter(description="Only this subject's cards; unknown id: 404")
        ] = None,
        difficulty: Annotated[
            Difficulty | None, QueryParameter(description="Only cards of this difficulty")
        ] = None,
    ) -> list[Flashcard]:
        """Cards are grouped by subject, then easy, medium, hard, after interest matches."""
        return await content.flashcards(child, today, subjectId, difficulty)

    @get("/chores/daily", summary="Today's chores for a child", raises=RAISES)
    async def list_daily_chores(self, child: Child, content: Content, today: Today) -> list[Chore]:
        """Five chores, up to three from the child's interests: the same all (UTC) day,
        a new set the next day."""
        return await content.daily_chores(child, today)

    @get("/outdoor/activities", summary="Outdoor activities for a child", raises=RAISES)
    async def list_outdoor_activities(
        self,
        child: Child,
        content: Content,
        today: Today,
        isDaily: Annotated[
            bool,
            QueryParameter(description="true: today's three picks (the same all UTC day)"),
        ] = False,
    ) -> list[OutdoorActivity]:
        return await content.outdoor_activities(child, today, daily=isDaily)
