"""HTTP endpoints for the child-aware content (README, "API reference").

Query parameters are named in the handlers exactly as clients send them (`childId`,
`subjectId`, `isDaily`), so a 400 names the parameter the client actually used.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.clock import utc_today
from app.content.schemas import (
    Affirmation,
    Chore,
    Difficulty,
    Flashcard,
    OutdoorActivity,
    Subject,
)
from app.content.service import ContentService
from app.db.services import provide_service

__all__ = ["ContentController"]


def _content_service(session: AsyncSession, caller: Any) -> ContentService:
    principal: Principal = caller
    return ContentService(session, owner_sub=principal.sub)


# 400: missing `childId` or a bad filter value; 404: not one of your children.
RAISES = [ValidationException, NotFoundException]

Content = NamedDependency[ContentService]
AnyRequest = Request[Any, Any, Any]
# The Python name is the public one, so a 400 names the parameter the client sent.
ChildId = Annotated[
    str, QueryParameter(min_length=1, description="The child the content is for (one of yours)")
]


class ContentController(Controller):
    """Every endpoint takes `childId` (one of your children): only items suited to the
    child's age are returned, those whose tags match its interests first."""

    path = "/v1"
    tags = ["content"]
    # The only injected value besides the caller (a chain: caller -> service); every
    # endpoint here only makes precompiled reads.
    dependencies = {"content": provide_service(_content_service, read_only=True)}

    @get("/affirmations", summary="Affirmations for a child", raises=RAISES)
    async def list_affirmations(
        self, childId: ChildId, content: Content, request: AnyRequest
    ) -> list[Affirmation]:
        return await content.affirmations(childId, utc_today(request.app.state))

    @get("/subjects", summary="Flashcard subjects for a child", raises=RAISES)
    async def list_subjects(
        self, childId: ChildId, content: Content, request: AnyRequest
    ) -> list[Subject]:
        return await content.subjects(childId, utc_today(request.app.state))

    @get("/flashcards", summary="Flashcards for a child", raises=RAISES)
    async def list_flashcards(
        self,
        childId: ChildId,
        content: Content,
        request: AnyRequest,
        subjectId: Annotated[
            str | None, QueryParameter(description="Only this subject's cards; unknown id: 404")
        ] = None,
        difficulty: Annotated[
            Difficulty | None, QueryParameter(description="Only cards of this difficulty")
        ] = None,
    ) -> list[Flashcard]:
        """Cards are grouped by subject, then easy, medium, hard, after interest matches."""
        return await content.flashcards(
            childId, utc_today(request.app.state), subjectId, difficulty
        )

    @get("/chores/daily", summary="Today's chores for a child", raises=RAISES)
    async def list_daily_chores(
        self, childId: ChildId, content: Content, request: AnyRequest
    ) -> list[Chore]:
        """Five chores, up to three from the child's interests: the same all (UTC) day,
        a new set the next day."""
        return await content.daily_chores(childId, utc_today(request.app.state))

    @get("/outdoor/activities", summary="Outdoor activities for a child", raises=RAISES)
    async def list_outdoor_activities(
        self,
        childId: ChildId,
        content: Content,
        request: AnyRequest,
        isDaily: Annotated[
            bool,
            QueryParameter(description="true: today's three picks (the same all UTC day)"),
        ] = False,
    ) -> list[OutdoorActivity]:
        return await content.outdoor_activities(
            childId, utc_today(request.app.state), daily=isDaily
        )
