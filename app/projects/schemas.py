from __future__ import annotations

import datetime
import enum
from typing import Annotated, NamedTuple
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import force_setattr

from app.db.crud import Page
from app.projects.models import DESCRIPTION_MAX, NAME_MAX
from app.text import person_text

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
        min_length=1,
        max_length=NAME_MAX,
        pattern=NO_NUL,
        description=(
            f"1-{NAME_MAX} characters; surrounding whitespace is removed; stored in Unicode "
            "NFC; no control, bidirectional or zero-width characters."
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


def _description(value: str | None) -> str | None:
    return None if value is None else person_text(value, "description", multiline=True)


class ProjectCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None

    def __post_init__(self) -> None:
        # The text rules of the API reference (README), for every way in (app/text.py).
        force_setattr(self, "name", person_text(self.name, "name"))
        force_setattr(self, "description", _description(self.description))


class ProjectPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Only the fields present change; `description: null` clears the description."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            force_setattr(self, "name", person_text(self.name, "name"))
        if self.description is not UNSET:
            force_setattr(self, "description", _description(self.description))


class ProjectSort(enum.StrEnum):
    """Listing order; a leading `-` means descending. Ties are broken by id."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    NAME = "name"
    NAME_DESC = "-name"
