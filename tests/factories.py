"""Test data from polyfactory: valid request bodies and models, varied per call.

Tests state only the fields they are about (`ChildBodyFactory.build(name="Mia")`) and
get valid values for the rest, so a new rule on a field changes one factory, not every
test that posts a child or a project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import types
import uuid
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory
from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory

from app.children.schemas import ChildUpsert
from app.projects.models import Project
from app.projects.schemas import ProjectCreate

__all__ = [
    "ChildBodyFactory",
    "ProjectBodyFactory",
    "ProjectModelFactory",
    "as_json",
    "body_for",
]

_WORDS = ("dinosaurs", "space", "music", "animals", "drawing", "football", "trains")


def as_json(body: msgspec.Struct) -> dict[str, Any]:
    """A body as the client sends it (dates as ISO strings, unset optionals left out)."""
    built: dict[str, Any] = msgspec.to_builtins(body)
    return built


# Generated text may break a rule the type checks itself (no control characters, in
# `__post_init__`); a few draws find values it accepts.
_DRAWS = 50


def body_for(body_type: Any) -> dict[str, Any]:
    """A valid body of a handler's `data` type, for tests that walk every route: from this
    module's factory for that Struct when there is one, else one polyfactory makes from the
    type (its annotations, `msgspec.Meta` bounds and `__post_init__` rules). A union of
    Structs (tagged bodies) gives its first. A new domain adds a factory here only when
    its type does not say what is valid (a rule checked in the service)."""
    while get_origin(body_type) is Annotated:
        body_type = get_args(body_type)[0]
    if get_origin(body_type) in (Union, types.UnionType):
        body_type = next(t for t in get_args(body_type) if isinstance(t, type))
    declared = (f for f in MsgspecFactory.__subclasses__() if f.__model__ is body_type)
    factory = next(declared, None) or MsgspecFactory.create_factory(body_type)
    for _ in range(_DRAWS - 1):
        with contextlib.suppress(ValueError):
            return as_json(factory.build())
    return as_json(factory.build())


class ChildBodyFactory(MsgspecFactory[ChildUpsert]):
    """A valid `POST /v1/children` body for a new child with an id of its own."""

    __check_model__ = True

    id = Use(lambda: f"kid-{uuid.uuid4().hex[:16]}")
    name = Use(lambda: ChildBodyFactory.__faker__.first_name())
    birthday = Use(
        lambda: ChildBodyFactory.__faker__.date_between(
            start_date=dt.date.today() - dt.timedelta(days=365 * 16),
            end_date=dt.date.today() - dt.timedelta(days=365 * 3),
        )
    )
    interests = Use(
        lambda: ChildBodyFactory.__random__.sample(
            _WORDS, ChildBodyFactory.__random__.randint(0, 3)
        )
    )
    avatar = None


class ProjectBodyFactory(MsgspecFactory[ProjectCreate]):
    """A valid `POST /v1/projects` body."""

    __check_model__ = True

    name = Use(lambda: f"{ProjectBodyFactory.__faker__.catch_phrase()} {uuid.uuid4().hex[:6]}")
    description = Use(lambda: ProjectBodyFactory.__faker__.sentence())


class ProjectModelFactory(SQLAlchemyFactory[Project]):
    """A new, unsaved project row; the repository's scope stamps its tenant and owner."""

    __check_model__ = True
    __set_primary_key__ = False

    name = Use(lambda: f"project {uuid.uuid4().hex[:8]}")
    description = None
    tenant_id = None
    owner_sub = None
    is_deleted = False
    deleted_at = None
    version = 1
    created_at = Use(lambda: dt.datetime.now(dt.UTC))
    updated_at = Use(lambda: dt.datetime.now(dt.UTC))
