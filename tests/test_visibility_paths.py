"""Each visibility rule reaches every path that reads its table: endpoints, services, the
export job.

The walk over routes is read from the app's route table, not from a list: every route
whose handler does not opt out of authentication (`PUBLIC_OPT`) is exercised, with
another caller's ids wherever it takes an id, and a route the walk cannot exercise fails
`test_another_callers_ids_are_404_on_every_private_route` by name. What the walk needs
from a domain is what a domain has anyway:

- an item route `…/{x_id}` (GET) whose parent path takes `POST` and answers the new row
  with its `id` (or `x_id`): then `x_id` in any route's path, or an `xId` query parameter
  or body field, refers to that domain's rows, and the walk makes one for each caller
  through that POST;
- a valid body for that POST: tests/factories.py's `body_for` builds it from the handler's
  `data` type (a factory there only when the type does not say what is valid).

A DELETE on the item route that answers 204 is checked too: the row is then a 404 on
every route told about it and missing from every list. The tests after those add what
the generic walk cannot know: other-tenant projects, two parents with the same child id,
and the export job, which reads through the same services outside a request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import devstack
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.auth import PUBLIC_OPT
from app.jobs.registry import run_export
from app.jobs.schemas import ExportParams
from tests.factories import ChildBodyFactory, ProjectBodyFactory, as_json, body_for
from tests.support.family import new_parent

Headers = dict[str, str]

_PATH_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
_WS_CLOSE_NOT_FOUND = 4404  # a socket's 404, sent after accepting so browsers see it


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str  # an HTTP method, or "WS"
    path: str  # the route's template: /v1/children/{child_id:str}
    handler: BaseRouteHandler

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    def query_parameters(self) -> dict[str, str]:
        """URL name → the name the walk knows rows by (`childId` → `child_id`)."""
        names = {}
        for name, field in self.handler.parsed_fn_signature.parameters.items():
            alias = getattr(field.kwarg_definition, "query", None) or name
            if name not in self.path_parameters:
                names[alias] = _snake(alias)
        return names

    def body_type(self) -> Any:
        field = self.handler.parsed_fn_signature.parameters.get("data")
        return None if field is None else field.annotation


def private_endpoints(app: Litestar) -> list[Endpoint]:
    """Every route and method that needs a caller, from the app's own route table."""
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            handlers: list[tuple[str, BaseRouteHandler]] = [
                (method, handler)
                for handler in route.route_handlers
                for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"})
            ]
        else:  # a mounted ASGI app is listed, and fails the walk until it has a case
            kind = "WS" if isinstance(route, WebSocketRoute) else "ASGI"
            handlers = [(kind, route.route_handler)]
        found += [
            Endpoint(method, route.path, handler)
            for method, handler in handlers
            if not handler.opt.get(PUBLIC_OPT)
        ]
    return found


class Walk:
    """Two callers, `me` and `them`, and one row of each kind per caller, made on demand
    through the routes that create them."""

    def __init__(self, client: TestClient[Litestar], issuer: devstack.IssuerInfo) -> None:
        self.client = client
        self.endpoints = private_endpoints(client.app)
        self.tokens = {
            who: issuer.mint(username=f"walk-{who}-{uuid.uuid4().hex[:10]}")
            for who in ("me", "them")
        }
        # `child_id` → POST /v1/children (and any alias): the routes that make the rows an
        # id of that name points at, any of which will do; `items`: the GET of one row.
        self.makers: dict[str, list[Endpoint]] = {}
        self.items: dict[str, Endpoint] = {}
        for maker in self.endpoints:
            if maker.method != "POST":
                continue
            for item in self.endpoints:
                rest = item.path.removeprefix(maker.path + "/")
                if item.method == "GET" and rest != item.path and _PATH_PARAMETER.fullmatch(rest):
                    kind = _PATH_PARAMETER.findall(rest)[0]
                    self.makers.setdefault(kind, []).append(maker)
                    self.items.setdefault(kind, item)
        self.rows: dict[tuple[str, str], str] = {}
        self.used: set[str] = set()

    def headers(self, who: str) -> Headers:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def row(self, who: str, kind: str) -> str:
        """The id of `who`'s row of `kind`, made through its POST route the first time."""
        if (who, kind) not in self.rows:
            self.rows[(who, kind)] = self.make(self.makers[kind][0], who, kind)
        return self.rows[(who, kind)]

    def make(self, maker: Endpoint, who: str, kind: str) -> str:
        body = self.body(maker, who)
        response = self.client.post(self.url(maker, who), json=body, headers=self.headers(who))
        assert response.status_code in (200, 201, 202), (
            f"the walk cannot make a row for {{{kind}}}: {maker} answered "
            f"{response.status_code} {response.text[:300]} to {body}; give "
            f"{maker.body_type()} a factory in tests/factories.py"
        )
        self.used.add(str(maker))
        created = response.json()
        # The new row's id: under the path parameter's name (`job_id`) or as `id`.
        made = next((created[key] for key in (kind, "id") if key in created), None)
        assert made is not None, f"{maker} answered no `id` or `{kind}`: {created}"
        return str(made)

    def item_status(self, kind: str, row: str, who: str) -> int:
        path = _PATH_PARAMETER.sub(row, self.items[kind].path)
        return self.client.get(path, headers=self.headers(who)).status_code

    def body(self, endpoint: Endpoint, who: str) -> dict[str, Any] | None:
        body_type = endpoint.body_type()
        if body_type is None:
            return None
        body = body_for(body_type)
        for field in body:  # a field naming another domain's row gets the caller's own
            if _snake(field) in self.makers:
                body[field] = self.row(who, _snake(field))
        return body

    def references(self, endpoint: Endpoint) -> list[str]:
        """The kinds of row the endpoint is told about, in its path or query."""
        kinds = endpoint.path_parameters + list(endpoint.query_parameters().values())
        unknown = [p for p in endpoint.path_parameters if p not in self.makers]
        assert not unknown, (
            f"{endpoint}: no POST route makes rows for {unknown}, so the walk cannot fill "
            "them; give the route a case in tests/test_visibility_paths.py"
        )
        return [kind for kind in kinds if kind in self.makers]

    def url(self, endpoint: Endpoint, who: str, instead: dict[str, str] | None = None) -> str:
        """The endpoint's URL with `who`'s rows in it, except the ids given `instead`."""
        ids = instead or {}

        def row(kind: str) -> str:
            return ids[kind] if kind in ids else self.row(who, kind)

        path = _PATH_PARAMETER.sub(lambda m: row(m[1]), endpoint.path)
        query = [
            f"{name}={row(kind)}"
            for name, kind in endpoint.query_parameters().items()
            if kind in self.makers
        ]
        return path + ("?" + "&".join(query) if query else "")

    def their(self, kind: str) -> dict[str, str]:
        return {kind: self.row("them", kind)}

    def status(self, endpoint: Endpoint, who: str, instead: dict[str, str] | None = None) -> int:
        url = self.url(endpoint, who, instead)
        if endpoint.method == "WS":
            separator = "&" if "?" in url else "?"
            with self.client.websocket_connect(f"{url}{separator}token={self.tokens[who]}") as ws:
                try:
                    ws.receive_text()
                except WebSocketDisconnect as closed:
                    return 404 if closed.code == _WS_CLOSE_NOT_FOUND else closed.code
                return 200
        response = self.client.request(
            endpoint.method, url, json=self.body(endpoint, who), headers=self.headers(who)
        )
        return response.status_code


def test_another_callers_ids_are_404_on_every_private_route(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    walk = Walk(client, issuer)
    for kind in walk.makers:  # both callers have one row of every kind
        walk.row("them", kind)
        walk.row("me", kind)
    theirs = {walk.row("them", kind) for kind in walk.makers}
    wrong = []
    for endpoint in walk.endpoints:
        references = walk.references(endpoint)
        for kind in references:
            status = walk.status(endpoint, "me", walk.their(kind))
            if status != 404:
                wrong.append(f"{endpoint} with their {{{kind}}}: {status}, not 404")
        # Their ids are refused, mine are not: the 404 is about whose row it is.
        mine_read = references and endpoint.method in ("GET", "WS")
        if mine_read and (status := walk.status(endpoint, "me")) != 200:
            wrong.append(f"{endpoint} with my own ids: {status}, not 200")
        if references or endpoint.method == "GET":
            walk.used.add(str(endpoint))
        if not references and endpoint.method == "GET":
            text = client.get(walk.url(endpoint, "me"), headers=walk.headers("me")).text
            if leaked := [row for row in theirs if row in text]:
                wrong.append(f"{endpoint} shows me their rows {leaked}")
        if not references and endpoint.method == "WS":
            # A socket about no row (echo): what it answers me holds none of theirs.
            url = f"{walk.url(endpoint, 'me')}?token={walk.tokens['me']}"
            with client.websocket_connect(url) as socket:
                socket.send_text("hello")
                answer = socket.receive_text(timeout=10)
            if leaked := [row for row in theirs if row in answer]:
                wrong.append(f"{endpoint} shows me their rows {leaked}")
            walk.used.add(str(endpoint))
        for kind, makers in walk.makers.items():
            if endpoint in makers:  # what they make through it, I cannot see
                made = walk.make(endpoint, "them", kind)
                theirs.add(made)
                if walk.item_status(kind, made, "me") != 404:
                    wrong.append(f"{endpoint}: a row they made there is visible to me")
    # Their rows are all still there after my attempts to change or delete them.
    for kind in walk.makers:
        if walk.item_status(kind, walk.row("them", kind), "them") != 200:
            wrong.append(f"their {{{kind}}} is gone after my requests")
    assert not wrong, "\n".join(wrong)
    unexercised = sorted({str(e) for e in walk.endpoints} - walk.used)
    assert not unexercised, (
        f"routes the visibility walk cannot exercise: {unexercised}; they take no id and "
        "make no row. Give them a case in tests/test_visibility_paths.py"
    )


def test_a_deleted_row_is_gone_from_every_route(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    """Whatever a DELETE answering 204 removed (a soft delete included) is a 404 on every
    route told about it and missing from every list."""
    walk = Walk(client, issuer)
    wrong, checked = [], 0
    for kind, item in walk.items.items():
        removers = [e for e in walk.endpoints if e.method == "DELETE" and e.path == item.path]
        if not removers:
            continue
        gone = {kind: walk.make(walk.makers[kind][0], "me", kind)}
        if walk.status(removers[0], "me", gone) != 204:
            continue  # not a removal: a job's DELETE aborts it, and it stays readable
        checked += 1
        for endpoint in walk.endpoints:
            references = walk.references(endpoint)
            if endpoint.method in ("GET", "WS") and kind in references:
                if (status := walk.status(endpoint, "me", gone)) != 404:
                    wrong.append(f"{endpoint} with my deleted {{{kind}}}: {status}, not 404")
            elif endpoint.method == "GET" and not references:
                text = client.get(walk.url(endpoint, "me"), headers=walk.headers("me")).text
                if gone[kind] in text:
                    wrong.append(f"{endpoint} lists my deleted {{{kind}}}")
    assert checked >= 2  # children (deleted) and projects (soft-deleted) at least
    assert not wrong, "\n".join(wrong)


def routes_taking(client: TestClient[Litestar], kind: str) -> list[Endpoint]:
    """GET routes told about a row of `kind` in their query (`childId` for `child_id`)."""
    return [
        endpoint
        for endpoint in private_endpoints(client.app)
        if endpoint.method == "GET" and kind in endpoint.query_parameters().values()
    ]


class _Run:
    """What the export job's body is given by the worker (app/jobs/registry.py's JobRun),
    on a real engine: the job reads through the same services as the API."""

    def __init__(self, engine: AsyncEngine, owner_sub: str, tenant_id: str | None) -> None:
        self.owner_sub = owner_sub
        self.tenant_id = tenant_id
        self.engine = engine
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


def project_prefixes(client: TestClient[Litestar]) -> Iterator[str]:
    """/v1/projects and its legacy alias, from the route table."""
    for endpoint in private_endpoints(client.app):
        if endpoint.method == "POST" and endpoint.path.endswith("/projects"):
            yield endpoint.path


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

    prefixes = list(project_prefixes(client))
    assert len(prefixes) == 2
    for prefix in prefixes:
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
    child_routes = routes_taking(client, "child_id")
    assert child_routes  # the content routes
    for endpoint in child_routes:
        for child_id, expected in ((shared_id, 200), (only_theirs, 404)):
            response = client.get(endpoint.path, params={"childId": child_id}, headers=parent)
            assert response.status_code == expected, (endpoint, child_id)
    assert client.delete(f"/v1/children/{only_theirs}", headers=parent).status_code == 404
    assert client.get(f"/v1/children/{only_theirs}", headers=other).status_code == 200

    result = await export_for(sub_of(client, parent), None)
    assert [child.name for child in result.children] == ["Mine"]
