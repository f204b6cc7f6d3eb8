"""The current user as the API describes them, from the verified token alone."""

from __future__ import annotations

from app.auth.principal import Principal
from app.users.schemas import ClientRoles, CurrentUser

__all__ = ["current_user"]


def current_user(caller: Principal) -> CurrentUser:
    return CurrentUser(
        sub=caller.sub,
        username=caller.username,
        email=caller.email,
        name=caller.name,
        realm_roles=sorted(caller.realm_roles),
        client_roles={
            client: ClientRoles(list(roles)) for client, roles in caller.client_roles.items()
        },
        tenant_id=caller.tenant_id,
    )
