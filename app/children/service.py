"""Rules for children: validation after trimming, ownership, create-or-replace."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import uuid_utils
from litestar.exceptions import NotFoundException, ValidationException

from app.children.repository import ChildFields, ChildRepository
from app.children.schemas import (
    INTEREST_MAX_LENGTH,
    NAME_MAX_LENGTH,
    Child,
    ChildUpsert,
)

__all__ = ["ChildService", "validate_fields"]

_NOT_FOUND = "Child not found"
# Control characters have no place in a name or an interest (and PostgreSQL cannot store
# NUL at all, so letting one through would turn bad input into a server error).
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def _problem(key: str, message: str) -> dict[str, Any]:
    return {"key": key, "message": message, "source": "body"}


def validate_fields(data: ChildUpsert, today: dt.date) -> ChildFields:
    """Trim and check the fields the schema cannot check alone; 400 names every bad field.

    The schema has already checked types, the id format, the interest count and the
    avatar length. What is left depends on trimming or on today's date.
    """
    problems: list[dict[str, Any]] = []
    name = data.name.strip()
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        problems.append(_problem("name", f"must be 1-{NAME_MAX_LENGTH} characters after trimming"))
    elif _CONTROL_CHARACTER.search(name):
        problems.append(_problem("name", "must not contain control characters"))
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
        elif _CONTROL_CHARACTER.search(interest):
            problems.append(_problem(f"interests[{index}]", "must not contain control characters"))
    if data.avatar is not None and "\x00" in data.avatar:
        problems.append(_problem("avatar", "must not contain NUL characters"))
    if problems:
        raise ValidationException("Invalid child", extra=problems)
    return ChildFields(name=name, birthday=data.birthday, interests=interests, avatar=data.avatar)


class ChildService:
    def __init__(self, repository: ChildRepository) -> None:
        self._repository = repository

    async def list(self, owner_sub: str) -> list[Child]:
        return await self._repository.list_for_owner(owner_sub)

    async def get(self, child_id: str, owner_sub: str) -> Child:
        child = await self._repository.get_owned(child_id, owner_sub)
        if child is None:
            raise NotFoundException(_NOT_FOUND)
        return child

    async def upsert(self, data: ChildUpsert, owner_sub: str, today: dt.date) -> tuple[Child, bool]:
        """Create (True) or replace (False) a child of `owner_sub`; 404 if the id is taken.

        Validation runs before any SQL, so a 400 never writes anything.
        """
        fields = validate_fields(data, today)
        # Time-ordered ids keep new rows at the end of the primary-key index.
        child_id = data.id or str(uuid_utils.uuid7())
        saved = await self._repository.upsert_owned(child_id, owner_sub, fields)
        if saved is None:
            raise NotFoundException(_NOT_FOUND)
        return saved

    async def delete(self, child_id: str, owner_sub: str) -> None:
        if not await self._repository.delete_owned(child_id, owner_sub):
            raise NotFoundException(_NOT_FOUND)
