"""Content items as the API returns them (README, "API reference").

Each kind is its own named Struct so the OpenAPI document (and the TypeScript generated
from it) has one named type per kind. Every item carries `id`, `min_age`, `max_age`
(whole years, inclusive) and `tags`. Fields are declared in the order the repository
selects them, so rows become Structs positionally.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "Affirmation",
    "Chore",
    "Difficulty",
    "Flashcard",
    "OutdoorActivity",
    "Subject",
]

Difficulty = Literal["easy", "medium", "hard"]

MinAge = Annotated[int, msgspec.Meta(ge=0, description="Youngest suitable age in years")]
MaxAge = Annotated[int, msgspec.Meta(ge=0, description="Oldest suitable age in years")]
Tags = Annotated[
    list[str], msgspec.Meta(description="Lower-case words; matched against the interests")
]


class Affirmation(msgspec.Struct):
    """A short positive sentence a child can say aloud."""

    id: str
    text: str
    min_age: MinAge
    max_age: MaxAge
    tags: Tags


class Subject(msgspec.Struct):
    """A flashcard topic."""

    id: str
    name: str
    min_age: MinAge
    max_age: MaxAge
    tags: Tags


class Flashcard(msgspec.Struct):
    """A question (`front`) and its answer (`back`)."""

    id: str
    subject_id: str
    difficulty: Difficulty
    front: str
    back: str
    min_age: MinAge
    max_age: MaxAge
    tags: Tags


class Chore(msgspec.Struct):
    """A job a child can help with at home."""

    id: str
    title: str
    description: str
    min_age: MinAge
    max_age: MaxAge
    tags: Tags


class OutdoorActivity(msgspec.Struct):
    """Something to do outside."""

    id: str
    title: str
    description: str
    min_age: MinAge
    max_age: MaxAge
    tags: Tags
