"""The current user as the API describes them, from the verified token alone."""

from __future__ import annotations

from litestar.exceptions import ValidationException

from app.auth.principal import Principal
from app.jobs.registry import ERASE
from app.jobs.schemas import EraseParams, Job
from app.jobs.service import JobService
from app.users.schemas import ClientRoles, CurrentUser, EraseRequest

__all__ = ["current_user", "start_erasure"]


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


async def start_erasure(caller: Principal, request: EraseRequest, jobs: JobService) -> Job:
    """Queue the erasure of everything kept about the caller, once they confirmed it."""
    if request.confirm != caller.sub:
        raise ValidationException(
            "Confirm the erasure with your own sub",
            extra=[{"key": "confirm", "message": "must be your own sub", "source": "body"}],
        )
    return await jobs.start(caller, ERASE, EraseParams())
