"""Each rule reaches every path that reads its table: endpoints, services, the export job.

For projects: a soft-deleted project and another tenant's project. For children:
another parent's child (with the same id as none of yours, or as one of yours). Each
must be invisible to every route that reads the table and to the export job, which
reads through the same services outside a request. A route added later under these
paths fails `test_every_data_route_is_covered` until it is listed here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import devstack
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.jobs.registry import run_export
from app.jobs.schemas import ExportParams
from tests.factories import ChildBodyFactory, ProjectBodyFactory, as_json
from tests.support.family import new_parent

Headers = dict[str, str]

PROJECT_ROUTES = {
    "/v1/projects",
    "/v1/projects/{project_id:uuid}",
    "/projects",
    "/projects/{project_id:uuid}",
}
CHILD_ROUTES = {"/v1/children", "/v1/children/{child_id:str}"}
CONTENT_ROUTES = {
    "/v1/affirmations",
    "/v1/subjects",
    "/v1/flashcards",
    "/v1/chores/daily",
    "/v1/outdoor/activities",
}


def test_every_data_route_is_covered(client: TestClient[Litestar]) -> None:
    data_paths = {
        route.path
        for route in client.app.routes
        if route.path.startswith(("/v1/projects", "/projects", "/v1/children"))
        or route.path in CONTENT_ROUTES
        or route.path.startswith(("/v1/affirm", "/v1/subj", "/v1/flash", "/v1/chore", "/v1/out"))
    }
    assert data_paths == PROJECT_ROUTES | CHILD_ROUTES | CONTENT_ROUTES


class _Run:
    """What the export job's body is given by the worker (app/jobs/registry.py's JobRun),
    on a real engine: the job reads through the same services as the API."""

    def __init__(self, engine: AsyncEngine, owner_sub: str, tenant_id: str | None) -> None:
        self.owner_sub = owner_sub
        self.tenant_id = tenant_id
        self.engine = engine
        self.max_result_bytes = 1_048_576
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def report(self, step: int, message: str) -> None:
        return None

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session


async def export_for(sub: str, tenant_id: str | None) -> Any:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    try:
        return await run_export(_Run(engine, sub, tenant_id), ExportParams())
    finally:
        await engine.dispose()


def sub_of(client: TestClient[Litestar], headers: Headers) -> str:
    sub: str = client.get("/v1/me", headers=headers).json()["sub"]
    return sub


async def test_deleted_and_foreign_projects_are_invisible_everywhere(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    mine = {"Authorization": f"Bearer {issuer.mint(claims={'tenant_id': tenant_id})}"}
    theirs = {"Authorization": f"Bearer {issuer.mint(claims={'tenant_id': tenant_id + 'x'})}"}

    def create(headers: Headers, name: str) -> dict[str, Any]:
        body = as_json(ProjectBodyFactory.build(name=name))
        response = client.post("/v1/projects", json=body, headers=headers)
        assert response.status_code == 201
        created: dict[str, Any] = response.json()
        return created

    kept = create(mine, "kept hidden-check")
    deleted = create(mine, "deleted hidden-check")
    foreign = create(theirs, "foreign hidden-check")
    assert client.delete(f"/v1/projects/{deleted['id']}", headers=mine).status_code == 204

    for prefix in ("/v1/projects", "/projects"):
        for hidden in (deleted, foreign):
            item = f"{prefix}/{hidden['id']}"
            assert client.get(item, headers=mine).status_code == 404
            assert client.patch(item, json={"name": "x"}, headers=mine).status_code == 404
            assert client.delete(item, headers=mine).status_code == 404
        for query in ({}, {"q": "hidden-check"}, {"sort": "name"}, {"limit": 1, "offset": 1}):
            page = client.get(prefix, params=query, headers=mine).json()
            assert page["total"] == 1, (prefix, query)
            assert [p["id"] for p in page["items"]] in ([kept["id"]], [])
        assert client.get(f"{prefix}/{foreign['id']}", headers=theirs).status_code == 200

    result = await export_for(sub_of(client, mine), tenant_id)
    assert [project.name for project in result.projects] == ["kept hidden-check"]


async def test_another_parents_child_is_invisible_everywhere(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    parent, other = new_parent(issuer), new_parent(issuer)
    shared_id = f"kid-{uuid.uuid4().hex[:12]}"
    only_theirs = f"kid-{uuid.uuid4().hex[:12]}"
    today = dt.date.today()
    birthday = dt.date(today.year - 7, 1, 1)
    for headers, child_id, name in (
        (parent, shared_id, "Mine"),
        (other, shared_id, "Theirs"),
        (other, only_theirs, "Theirs only"),
    ):
        body = as_json(ChildBodyFactory.build(id=child_id, name=name, birthday=birthday))
        assert client.post("/v1/children", json=body, headers=headers).status_code == 201

    assert {c["name"] for c in client.get("/v1/children", headers=parent).json()} == {"Mine"}
    assert client.get(f"/v1/children/{shared_id}", headers=parent).json()["name"] == "Mine"
    assert client.get(f"/v1/children/{only_theirs}", headers=parent).status_code == 404
    for path in CONTENT_ROUTES:
        assert client.get(path, params={"childId": shared_id}, headers=parent).status_code == 200
        response = client.get(path, params={"childId": only_theirs}, headers=parent)
        assert response.status_code == 404, path
    assert client.delete(f"/v1/children/{only_theirs}", headers=parent).status_code == 404
    assert client.get(f"/v1/children/{only_theirs}", headers=other).status_code == 200

    result = await export_for(sub_of(client, parent), None)
    assert [child.name for child in result.children] == ["Mine"]
