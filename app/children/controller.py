"""HTTP endpoints for a parent's children (README, "API reference")."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT

from app.children.deps import ChildServiceDependency, child_dependencies, child_reads
from app.children.schemas import Child, ChildUpsert
from app.clock import utc_today
from app.config import SETTINGS_STATE_KEY, Settings

__all__ = ["ChildrenController"]

ChildIdPath = Annotated[str, PathParameter(description="The id of one of your children")]


class ChildrenController(Controller):
    path = "/v1/children"
    tags = ["children"]
    dependencies = child_dependencies

    @get("/", summary="Your children", dependencies=child_reads)
    async def list_children(self, child_service: ChildServiceDependency) -> list[Child]:
        """Every child of the signed-in parent, oldest entry first."""
        return await child_service.list_children()

    @post(
        "/",
        summary="Create a child, or replace one of yours",
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=Child, description="An existing child of yours was replaced"
            ),
            HTTP_409_CONFLICT: ResponseSpec(
                None,
                description="You already have `MAX_CHILDREN_PER_PARENT` children (50): "
                "replace one, or delete one first",
            ),
        },
    )
    async def upsert_child(
        self,
        data: JSONBody[ChildUpsert],
        child_service: ChildServiceDependency,
        request: Request[Any, Any, Any],
    ) -> Response[Child]:
        """Without `id`, or with an id none of your children has: create (201). With the
        id of one of your children: replace every field (200); omitted `interests` become
        `[]` and an omitted `avatar` becomes `null`. Ids are per parent: another parent's
        child with the same id is a different child, untouched. A parent has at most
        `MAX_CHILDREN_PER_PARENT` children (default 50): one more is a 409."""
        settings: Settings = request.app.state[SETTINGS_STATE_KEY]
        child, created = await child_service.upsert_child(
            data, utc_today(request.app.state), max_children=settings.max_children_per_parent
        )
        return Response(child, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get(
        "/{child_id:str}",
        summary="One of your children",
        raises=[NotFoundException],
        dependencies=child_reads,
    )
    async def get_child(
        self, child_id: ChildIdPath, child_service: ChildServiceDependency
    ) -> Child:
        """404 when you have no child with this id."""
        return await child_service.get_child(child_id)

    @delete("/{child_id:str}", summary="Delete one of your children", raises=[NotFoundException])
    async def delete_child(
        self, child_id: ChildIdPath, child_service: ChildServiceDependency
    ) -> None:
        """204 when deleted; 404 when you have no child with this id."""
        await child_service.delete_child(child_id)
