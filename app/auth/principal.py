"""The authenticated caller, as handlers see it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import msgspec
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

__all__ = [
    "Caller",
    "Principal",
    "authenticated_caller",
    "current_caller",
    "principal_from_claims",
    "require_principal",
]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, taken from a verified access token."""

    sub: str
    username: str | None
    email: str | None
    name: str | None
    realm_roles: frozenset[str]
    client_roles: dict[str, tuple[str, ...]]
    tenant_id: str | None
    expires_at: float

    def has_realm_role(self, role: str) -> bool:
        return role in self.realm_roles

    def has_client_role(self, client: str, role: str) -> bool:
        return role in self.client_roles.get(client, ())


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _roles(container: Any) -> tuple[str, ...]:
    roles = container.get("roles") if isinstance(container, dict) else None
    if not isinstance(roles, list):
        return ()
    return tuple(role for role in roles if isinstance(role, str))


def principal_from_claims(claims: dict[str, Any], tenant_claim: str) -> Principal:
    """Read the claims the API uses; anything oddly typed is treated as absent."""
    resource_access = claims.get("resource_access")
    client_roles = (
        {client: _roles(access) for client, access in resource_access.items()}
        if isinstance(resource_access, dict)
        else {}
    )
    tenant = claims.get(tenant_claim)
    # Keycloak user attributes can be multi-valued; a single-element list is common.
    if isinstance(tenant, list) and len(tenant) == 1:
        tenant = tenant[0]
    return Principal(
        sub=claims["sub"],
        username=_str_or_none(claims.get("preferred_username")),
        email=_str_or_none(claims.get("email")),
        name=_str_or_none(claims.get("name")),
        realm_roles=frozenset(_roles(claims.get("realm_access"))),
        client_roles=client_roles,
        tenant_id=_str_or_none(tenant),
        expires_at=float(claims["exp"]),
    )


# Handlers declare `caller: Caller` to receive the verified principal.
Caller = NamedDependency[Principal]

# The same principal for the request this task serves (None on public routes). The
# gateway sets it after authenticating; each request runs in its own task, whose
# context starts from the default, so a value never outlives its request.
current_caller: ContextVar[Principal | None] = ContextVar("current_caller", default=None)


def authenticated_caller() -> Principal:
    """The caller, for a handler that takes no parameters at all.

    Litestar skips its whole parameter and dependency machinery for such a handler,
    which is most of the cost of a small authenticated GET (scripts/bench: /v1/me). Any
    handler with other parameters should declare `caller: Caller` instead.
    """
    return require_principal(current_caller.get())


def require_principal(value: object) -> Principal:
    """`value` when it is a verified caller; otherwise a 401 (a public route asking)."""
    if not isinstance(value, Principal):
        raise NotAuthorizedException("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return value
