from __future__ import annotations

from litestar import Controller, get

from app.auth.principal import authenticated_caller
from app.users.schemas import ClientRoles, CurrentUser

__all__ = ["CurrentUserController"]


class CurrentUserController(Controller):
    tags = ["users"]

    @get(["/v1/me", "/me"], summary="The signed-in caller")
    async def get_me(self) -> CurrentUser:
        caller = authenticated_caller()  # no parameters: see authenticated_caller
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
