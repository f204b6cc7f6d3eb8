"""Role guards: a missing role is a 403, never a 401."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from app.auth.principal import Principal

__all__ = ["requires_client_role", "requires_realm_role"]


def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise PermissionDeniedException(detail="No authenticated caller")
    return user


def requires_realm_role(role: str) -> Guard:
    """Allow callers whose token lists `role` under `realm_access.roles`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not _principal(connection).has_realm_role(role):
            raise PermissionDeniedException(detail=f"Requires the realm role {role!r}")

    return guard


def requires_client_role(client: str, role: str) -> Guard:
    """Allow callers whose token lists `role` under `resource_access.<client>.roles`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not _principal(connection).has_client_role(client, role):
            raise PermissionDeniedException(detail=f"Requires the {client!r} client role {role!r}")

    return guard
