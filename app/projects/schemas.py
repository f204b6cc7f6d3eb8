from __future__ import annotations

import datetime
import enum
from typing import Annotated, NamedTuple
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from app.projects.models import DESCRIPTION_MAX, NAME_MAX

__all__ = [
    "Project",
    "ProjectCreate",
    "ProjectPage",
    "ProjectPatch",
    "ProjectSort",
    "VersionedProject",
]

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=NAME_MAX,
        description=f"1-{NAME_MAX} characters; surrounding whitespace is removed.",
    ),
]
Description = Annotated[
    str,
    msgspec.Meta(max_length=DESCRIPTION_MAX, description=f"At most {DESCRIPTION_MAX} characters."),
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


class ProjectPage(msgspec.Struct, frozen=True):
    items: list[Project]
    total: Annotated[int, msgspec.Meta(description="Matching projects across all pages.")]
    limit: int
    offset: int


class ProjectCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    description: Description | None = None


class ProjectPatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Only the fields present change; `description: null` clears the description."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET


class ProjectSort(enum.StrEnum):
    """Listing order; a leading `-` means descending. Ties are broken by id."""

    NEWEST = "-created_at"
    OLDEST = "created_at"
    NAME = "name"
    NAME_DESC = "-name"
