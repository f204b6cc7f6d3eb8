from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_204_NO_CONTENT,
    HTTP_404_NOT_FOUND,
    HTTP_412_PRECONDITION_FAILED,
)

from app.db.crud import PageLimit, PageOffset
from app.projects.deps import ProjectServiceDependency, project_dependencies, project_reads
from app.projects.models import NAME_MAX
from app.projects.schemas import (
    NO_NUL,
    Project,
    ProjectCreate,
    ProjectPage,
    ProjectPatch,
    ProjectSort,
    VersionedProject,
)
from app.projects.service import IfMatch, etag
from app.text import search_text

__all__ = ["ProjectController"]

_ITEM = ["/v1/projects/{project_id:uuid}", "/projects/{project_id:uuid}"]
_COLLECTION = ["/v1/projects", "/projects"]

_ETAG_HEADER = ResponseHeader(
    name="ETag",
    value='"1"',
    description="The project's version; send it back in If-Match to change it safely.",
    documentation_only=True,
)
_NOT_FOUND = ResponseSpec(
    None, description="No such project among those the caller can see (or it was deleted)."
)
_PRECONDITION_FAILED = ResponseSpec(
    None, description="If-Match no longer matches the project's ETag; nothing was changed."
)
IfMatchHeader = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description=(
            "ETag from an earlier GET/PATCH. When it no longer matches, the request fails "
            "with 412 and changes nothing; without it the change applies unconditionally."
        ),
        examples=[Example(value='"3"')],
    ),
]


def _with_etag(found: VersionedProject, status_code: int = 200) -> Response[Project]:
    return Response(found.project, status_code=status_code, headers={"ETag": etag(found.version)})


class ProjectController(Controller):
    """Projects of the caller's tenant (or, without a tenant, the caller's own)."""

    tags = ["projects"]
    dependencies = project_dependencies

    @get(_COLLECTION, summary="List projects", dependencies=project_reads)
    async def list_projects(
        self,
        project_service: ProjectServiceDependency,
        limit: PageLimit = 20,
        offset: PageOffset = 0,
        q: Annotated[
            str | None,
            QueryParameter(
                max_length=NAME_MAX,
                pattern=NO_NUL,
                description=(
                    "Keep names containing this text (case-insensitive; % and _ are literal)."
                ),
            ),
        ] = None,
        sort: Annotated[
            ProjectSort,
            QueryParameter(
                description="`-created_at` (newest first, default), `created_at`, `name`, `-name`."
            ),
        ] = ProjectSort.NEWEST,
    ) -> ProjectPage:
        """Projects the caller can see, newest first unless `sort` says otherwise."""
        # Names are stored in NFC (app/text.py): search in the same form.
        return await project_service.list_projects(
            limit=limit, offset=offset, q=search_text(q), sort=sort
        )

    @post(_COLLECTION, summary="Create a project", response_headers=[_ETAG_HEADER])
    async def create_project(
        self, project_service: ProjectServiceDependency, data: JSONBody[ProjectCreate]
    ) -> Response[Project]:
        """Created in the caller's tenant, or owned by the caller alone without one."""
        created = await project_service.create_project(data)
        return _with_etag(created, HTTP_201_CREATED)

    @get(
        _ITEM,
        summary="Get a project",
        dependencies=project_reads,
        response_headers=[_ETAG_HEADER],
        responses={HTTP_404_NOT_FOUND: _NOT_FOUND},
    )
    async def get_project(
        self, project_service: ProjectServiceDependency, project_id: FromPath[UUID]
    ) -> Response[Project]:
        return _with_etag(await project_service.get_project(project_id))

    @patch(
        _ITEM,
        summary="Change some fields of a project",
        response_headers=[_ETAG_HEADER],
        responses={
            HTTP_404_NOT_FOUND: _NOT_FOUND,
            HTTP_412_PRECONDITION_FAILED: _PRECONDITION_FAILED,
        },
    )
    async def update_project(
        self,
        project_service: ProjectServiceDependency,
        project_id: FromPath[UUID],
        data: JSONBody[ProjectPatch],
        if_match: IfMatchHeader = None,
    ) -> Response[Project]:
        """Fields left out stay as they are; `description: null` clears it."""
        changed = await project_service.update_project(project_id, data, IfMatch.parse(if_match))
        return _with_etag(changed)

    @delete(
        _ITEM,
        summary="Delete a project",
        status_code=HTTP_204_NO_CONTENT,
        responses={
            HTTP_404_NOT_FOUND: _NOT_FOUND,
            HTTP_412_PRECONDITION_FAILED: _PRECONDITION_FAILED,
        },
    )
    async def delete_project(
        self,
        project_service: ProjectServiceDependency,
        project_id: FromPath[UUID],
        if_match: IfMatchHeader = None,
    ) -> None:
        """Soft delete: the project disappears at once and is purged for good later."""
        await project_service.delete_project(project_id, IfMatch.parse(if_match))
