"""Request and response bodies of the children endpoints (README, "API reference")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from app.text import AVATAR_URL_MAX_LENGTH, avatar, person_text, person_texts

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
# A built-in picture name or an https:// URL (app/text.py checks which).
AVATAR_MAX_LENGTH = AVATAR_URL_MAX_LENGTH

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
    name: Annotated[
        str,
        msgspec.Meta(
            description=(
                "1-100 characters after trimming; stored in Unicode NFC; no control, "
                "bidirectional or zero-width characters"
            )
        ),
    ]
    birthday: Annotated[dt.date, msgspec.Meta(description="YYYY-MM-DD, not in the future")]
    interests: Annotated[
        list[str],
        msgspec.Meta(
            max_length=MAX_INTERESTS,
            description=(
                "Up to 20 interests of 1-40 characters each (trimmed, NFC, same characters "
                "refused as in name); omitted means []"
            ),
            examples=[["dinosaurs", "space"]],
        ),
    ] = []
    avatar: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=AVATAR_MAX_LENGTH,
                description=(
                    "A built-in picture name (1-64 of a-z 0-9 _ -, e.g. `fox`) or an "
                    "https:// URL of at most 2,048 characters"
                ),
                examples=["fox"],
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        # The text rules of the README's API reference, for every way in (app/text.py).
        self.name = person_text(self.name, "name")
        self.interests = person_texts(self.interests, "interests")
        self.avatar = avatar(self.avatar)


class Child(msgspec.Struct):
    """A child of the signed-in parent. Positional (not kw_only): precompiled reads build
    it from each row's columns in field order, which is cheaper than by keyword."""

    id: str
    name: str
    birthday: dt.date
    interests: list[str]
    avatar: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
