"""HTTP endpoints for a parent's children (README, "API reference")."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.auth import Caller
from app.children.deps import ChildAccess, child_from_path, child_service, provide_owned_child
from app.children.schemas import Child, ChildUpsert
from app.clock import utc_today

__all__ = ["ChildrenController"]


class ChildrenController(Controller):
    path = "/v1/children"
    tags = ["children"]
    dependencies = {
        "child": Provide(child_from_path, sync_to_thread=False),
        "owned_child": Provide(provide_owned_child),
    }

    @get("/", summary="Your children")
    async def list_children(self, caller: Caller, request: Request[Any, Any, Any]) -> list[Child]:
        """Every child of the signed-in parent, oldest entry first."""
        return await child_service(request.app).list(caller.sub)

    @post(
        "/",
        raises=[NotFoundException],
        summary="Create a child, or replace one of yours",
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=Child, description="An existing child of yours was replaced"
            )
        },
    )
    async def upsert_child(
        self, data: JSONBody[ChildUpsert], caller: Caller, request: Request[Any, Any, Any]
    ) -> Response[Child]:
        """Without `id`, or with an unused one: create (201). With the id of one of your
        children: replace every field (200); omitted `interests` become `[]` and an
        omitted `avatar` becomes `null`. With someone else's child's id: 404, nothing
        changed."""
        app = request.app
        child, created = await child_service(app).upsert(data, caller.sub, utc_today(app.state))
        return Response(child, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/{child_id:str}", summary="One of your children", raises=[NotFoundException])
    async def get_child(self, owned_child: NamedDependency[Child]) -> Child:
        """404 when the child does not exist or is not yours."""
        return owned_child

    @delete("/{child_id:str}", summary="Delete one of your children", raises=[NotFoundException])
    async def delete_child(
        self, child: NamedDependency[ChildAccess], request: Request[Any, Any, Any]
    ) -> None:
        """204 when deleted; 404 when the child does not exist or is not yours."""
        await child_service(request.app).delete(child.child_id, child.owner_sub)
