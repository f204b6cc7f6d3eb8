from __future__ import annotations

import msgspec

__all__ = ["ClientRoles", "CurrentUser", "EraseRequest"]


class ClientRoles(msgspec.Struct, frozen=True):
    roles: list[str]


class CurrentUser(msgspec.Struct, frozen=True):
    """The caller as the token describes them."""

    sub: str
    username: str | None
    email: str | None
    name: str | None
    realm_roles: list[str]
    client_roles: dict[str, ClientRoles]
    tenant_id: str | None


class EraseRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/me/erase`: `confirm` repeats the caller's own `sub`, so that no stray
    or replayed request for someone else erases anything."""

    confirm: str = ""
