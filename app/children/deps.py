"""The ownership dependency shared by every endpoint that takes a child.

`child` resolves to a `ChildAccess`: the requested child id plus the caller's `sub`.
The ownership check itself is part of the one statement that uses it (the predicate is
written once, in `app.children.repository`): `owned_child` reads the child with it in one
query, `DELETE` deletes with it, and the content endpoints join it into their own query,
so checking ownership never costs an extra database round trip. No row means "not yours
or not there": 404 either way.

Dependencies here form a chain (caller -> child -> owned_child) and services are built
from the app, so Litestar resolves them one after another instead of spawning a task
group per level (see `app.db.driver.app_engine`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import PathParameter, QueryParameter

from app.auth import Caller
from app.children.repository import ChildRepository
from app.children.schemas import CHILD_ID_PATTERN, Child
from app.children.service import ChildService
from app.db.driver import app_engine

__all__ = [
    "ChildAccess",
    "child_from_path",
    "child_from_query",
    "child_service",
    "provide_owned_child",
]

_CHILD_ID = re.compile(CHILD_ID_PATTERN)


class ChildAccess(msgspec.Struct, frozen=True):
    """Which child is asked for, and by whom; ownership is checked where it is read."""

    child_id: str
    owner_sub: str


def _access(child_id: str, caller_sub: str) -> ChildAccess:
    # An id the API would never accept names no child: answer like any unknown child.
    if not _CHILD_ID.match(child_id):
        raise NotFoundException("Child not found")
    return ChildAccess(child_id=child_id, owner_sub=caller_sub)


def child_from_path(
    child_id: Annotated[str, PathParameter(description="The id of one of your children")],
    caller: Caller,
) -> ChildAccess:
    """`child` for routes with a `{child_id}` path segment."""
    return _access(child_id, caller.sub)


def child_from_query(
    caller: Caller,
    # The Python name is the public one, so a 400 names the parameter the client sent.
    childId: Annotated[
        str, QueryParameter(description="The child the content is for (one of yours)")
    ],
) -> ChildAccess:
    """`child` for routes with a required `?childId=` query parameter."""
    if not childId:
        raise ValidationException(
            "Missing required query parameter 'childId'",
            extra=[{"key": "childId", "message": "must not be empty", "source": "query"}],
        )
    return _access(childId, caller.sub)


def child_service(app: Litestar) -> ChildService:
    """A ChildService on the app's engine (two tiny objects; built per request)."""
    return ChildService(ChildRepository(app_engine(app)))


async def provide_owned_child(
    child: NamedDependency[ChildAccess], request: Request[Any, Any, Any]
) -> Child:
    """`owned_child`: the caller's child itself, read in one query, or 404."""
    return await child_service(request.app).get(child.child_id, child.owner_sub)
