from __future__ import annotations

import datetime
import enum
from typing import Annotated, NamedTuple
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from app.db.crud import Page
from app.projects.models import DESCRIPTION_MAX, NAME_MAX
from app.text import TypedTextBody

__all__ = [
    "NO_NUL",
    "Project",
    "ProjectCreate",
    "ProjectPage",
    "ProjectPatch",
    "ProjectSort",
    "VersionedProject",
]

# PostgreSQL text cannot hold NUL characters: refuse them as bad input, not at the database.
NO_NUL = r"^[^\x00]*$"

Name = Annotated[
    str,
    msgspec.Meta(
        max_length=NAME_MAX,
        pattern=r"\S",  # not blank: a rule of the type, so every client can read it
        description=(
            f"1-{NAME_MAX} characters, not all blank; surrounding whitespace is removed; "
            "stored in Unicode NFC; no control, bidirectional or zero-width characters."
        ),
    ),
]
Description = Annotated[
    str,
    msgspec.Meta(
        max_length=DESCRIPTION_MAX,
        pattern=NO_NUL,
        description=(
            f"At most {DESCRIPTION_MAX} characters; stored in Unicode NFC; newline and tab "
            "allowed, other control, bidirectional and zero-width characters not."
        ),
    ),
]


class Project(msgspec.Struct, frozen=True):
    """A project visible to the caller. Field order matches the repository's column list."""

    id: UUID
    name: str
    description: str | None
    tenant_id: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class VersionedProject(NamedTuple):
    """A project and the version its ETag is made from."""

    project: Project
    version: int


class ProjectPage(Page[Project], frozen=True):
    items: list[Project]


class ProjectCreate(TypedTextBody, frozen=True):
    # The text rules of the API reference (README), for every way in (app/text.py).
    multiline = frozenset({"description"})

    name: Name
    description: Description | None = None


class ProjectPatch(TypedTextBody, frozen=True):
    """Only the fields present change; `description: null` clears the description."""

    multiline = frozenset({"description"})

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET


class ProjectSort(enum.StrEnum):
    """Listing order; a leading `-` means descending. Ties are broken by id."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    NAME = "name"
    NAME_DESC = "-name"
