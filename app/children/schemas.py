"""Request and response bodies of the children endpoints (README, "API reference")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

__all__ = [
    "AVATAR_MAX_LENGTH",
    "CHILD_ID_PATTERN",
    "INTEREST_MAX_LENGTH",
    "MAX_INTERESTS",
    "NAME_MAX_LENGTH",
    "Child",
    "ChildId",
    "ChildUpsert",
]

CHILD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
NAME_MAX_LENGTH = 100
MAX_INTERESTS = 20
INTEREST_MAX_LENGTH = 40
# Room for an image URL or an avatar key; the API does not interpret it.
AVATAR_MAX_LENGTH = 2048

ChildId = Annotated[
    str,
    msgspec.Meta(
        pattern=CHILD_ID_PATTERN,
        description="1-64 characters of A-Z a-z 0-9 _ -",
        examples=["mia-2019"],
    ),
]


class ChildUpsert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Create a child, or replace every field of one of yours (same `id`)."""

    # Without an id the server generates one; with an unused id the child is created
    # with it, so an offline client can pick ids itself.
    id: ChildId | None = None
    # Trimmed first, then 1-100 characters: checked by the service, after trimming.
    name: Annotated[str, msgspec.Meta(description="1-100 characters after trimming")]
    birthday: Annotated[dt.date, msgspec.Meta(description="YYYY-MM-DD, not in the future")]
    interests: Annotated[
        list[str],
        msgspec.Meta(
            max_length=MAX_INTERESTS,
            description="Up to 20 interests of 1-40 characters each (trimmed); omitted means []",
            examples=[["dinosaurs", "space"]],
        ),
    ] = []
    avatar: Annotated[str, msgspec.Meta(max_length=AVATAR_MAX_LENGTH)] | None = None


class Child(msgspec.Struct, kw_only=True):
    """A child of the signed-in parent."""

    id: str
    name: str
    birthday: dt.date
    interests: list[str]
    avatar: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
