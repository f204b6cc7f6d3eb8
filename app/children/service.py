"""Rules for children: validation after trimming, ownership, create-or-replace."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import uuid_utils
from litestar.exceptions import NotFoundException, ValidationException
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.models import ChildModel
from app.children.repository import ChildFields, ChildRepository
from app.children.schemas import (
    CHILD_ID_PATTERN,
    INTEREST_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Child,
    ChildUpsert,
)
from app.db.repository import DomainService
from app.db.scope import OwnerScope

__all__ = ["ChildService", "require_child", "valid_child_id", "validate_fields"]

_NOT_FOUND = "Child not found"
_CHILD_ID = re.compile(CHILD_ID_PATTERN)


def _problem(key: str, message: str) -> dict[str, Any]:
    return {"key": key, "message": message, "source": "body"}


def validate_fields(data: ChildUpsert, today: dt.date) -> ChildFields:
    """Trim and check the fields the schema cannot check alone; 400 names every bad field.

    The schema has already checked types, the id format, the interest count, the avatar
    and the text rules (app/text.py: no control characters...). What is left depends on
    trimming or on today's date.
    """
    problems: list[dict[str, Any]] = []
    name = data.name.strip()
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        problems.append(_problem("name", f"must be 1-{NAME_MAX_LENGTH} characters after trimming"))
    if data.birthday > today:
        problems.append(_problem("birthday", "must not be in the future"))
    interests = [interest.strip() for interest in data.interests]
    for index, interest in enumerate(interests):
        if not 1 <= len(interest) <= INTEREST_MAX_LENGTH:
            problems.append(
                _problem(
                    f"interests[{index}]",
                    f"must be 1-{INTEREST_MAX_LENGTH} characters after trimming",
                )
            )
    if problems:
        raise ValidationException("Invalid child", extra=problems)
    return ChildFields(name=name, birthday=data.birthday, interests=interests, avatar=data.avatar)


def valid_child_id(child_id: str) -> bool:
    """Whether `child_id` could name a child at all (the API's id rule)."""
    return _CHILD_ID.match(child_id) is not None


class ChildService(DomainService[ChildModel, ChildRepository]):
    """A parent's children: Advanced-Alchemy's service, scoped to that parent.

    Build it with `ChildService.for_parent(session, sub)`, in a request (through
    `provide_service`) as in a job.
    """

    repository_type = ChildRepository

    @classmethod
    def for_parent(cls, session: AsyncSession, owner_sub: str) -> ChildService:
        return cls(session=session, scope=OwnerScope(owner_sub))

    async def list_children(self) -> list[Child]:
        return await self.repository.list_for_owner()

    async def get_child(self, child_id: str) -> Child:
        # An id the API would never accept names no child: answer like any unknown child.
        child = await self.repository.get_owned(child_id) if valid_child_id(child_id) else None
        if child is None:
            raise NotFoundException(_NOT_FOUND)
        return child

    async def upsert_child(self, data: ChildUpsert, today: dt.date) -> tuple[Child, bool]:
        """Create (True) or replace (False) one of the parent's children.

        Validation runs before any SQL, so a 400 never writes anything.
        """
        fields = validate_fields(data, today)
        # Time-ordered ids keep new rows at the end of the primary-key index.
        child_id = data.id or str(uuid_utils.uuid7())
        return await self.repository.upsert_owned(child_id, fields)

    async def delete_child(self, child_id: str) -> None:
        if not valid_child_id(child_id) or not await self.repository.delete_owned(child_id):
            raise NotFoundException(_NOT_FOUND)


async def require_child(service: DomainService[Any, Any], child_id: str) -> None:
    """404 unless `child_id` names one of the children of the parent `service` works for:
    for domains whose rows are `ChildLinkedMixin`, when a filter or a path names a child
    (another parent's child is a 404, like one that does not exist)."""
    repository = service.repository
    await ChildService(session=repository.session, scope=repository.scope).get_child(child_id)
