"""HTTP endpoints for the child-aware content (README, "API reference").

Query parameters are named in the handlers exactly as clients send them (`childId`,
`subjectId`, `isDaily`), so a 400 names the parameter the client actually used.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter

from app.children.deps import ChildAccess, child_from_query
from app.clock import utc_today
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
from app.db.driver import app_engine

__all__ = ["ContentController"]


def content_service(app: Litestar) -> ContentService:
    """A ContentService on the app's engine, built per request (see app/db/driver.py)."""
    return ContentService(ContentRepository(app_engine(app)))


# 400: missing `childId` or a bad filter value; 404: not one of your children.
RAISES = [ValidationException, NotFoundException]

Child = NamedDependency[ChildAccess]
AnyRequest = Request[Any, Any, Any]


class ContentController(Controller):
    """Every endpoint takes `childId` (one of your children): only items suited to the
    child's age are returned, those whose tags match its interests first."""

    path = "/v1"
    tags = ["content"]
    # The only injected value besides the caller; the service and today's date come
    # from the app, which keeps dependency resolution a simple chain.
    dependencies = {"child": Provide(child_from_query, sync_to_thread=False)}

    @get("/affirmations", summary="Affirmations for a child", raises=RAISES)
    async def list_affirmations(self, child: Child, request: AnyRequest) -> list[Affirmation]:
        return await content_service(request.app).affirmations(child, utc_today(request.app.state))

    @get("/subjects", summary="Flashcard subjects for a child", raises=RAISES)
    async def list_subjects(self, child: Child, request: AnyRequest) -> list[Subject]:
        return await content_service(request.app).subjects(child, utc_today(request.app.state))

    @get("/flashcards", summary="Flashcards for a child", raises=RAISES)
    async def list_flashcards(
        self,
        child: Child,
        request: AnyRequest,
        subjectId: Annotated[
            str | None, QueryParameter(description="Only this subject's cards; unknown id: 404")
        ] = None,
        difficulty: Annotated[
            Difficulty | None, QueryParameter(description="Only cards of this difficulty")
        ] = None,
    ) -> list[Flashcard]:
        """Cards are grouped by subject, then easy, medium, hard, after interest matches."""
        return await content_service(request.app).flashcards(
            child, utc_today(request.app.state), subjectId, difficulty
        )

    @get("/chores/daily", summary="Today's chores for a child", raises=RAISES)
    async def list_daily_chores(self, child: Child, request: AnyRequest) -> list[Chore]:
        """Five chores, up to three from the child's interests: the same all (UTC) day,
        a new set the next day."""
        return await content_service(request.app).daily_chores(child, utc_today(request.app.state))

    @get("/outdoor/activities", summary="Outdoor activities for a child", raises=RAISES)
    async def list_outdoor_activities(
        self,
        child: Child,
        request: AnyRequest,
        isDaily: Annotated[
            bool,
            QueryParameter(description="true: today's three picks (the same all UTC day)"),
        ] = False,
    ) -> list[OutdoorActivity]:
        return await content_service(request.app).outdoor_activities(
            child, utc_today(request.app.state), daily=isDaily
        )
