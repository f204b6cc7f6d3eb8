"""Projects over HTTP: real PostgreSQL, real RS256 tokens from the dev issuer.

Tests that count or order projects use a tenant of their own (a minted token with a fresh
tenant claim), so other tests' projects never change their totals.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import devstack
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from tests.factories import ProjectBodyFactory, as_json
from tests.support.statements import statements_sent

Headers = dict[str, str]


@pytest.fixture
def tenant(issuer: devstack.IssuerInfo) -> Callable[[str], Headers]:
    """Headers for a dev user moved into a tenant of this test's own."""
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    tokens: dict[str, str] = {}

    def headers(username: str = "alice") -> Headers:
        if username not in tokens:
            tokens[username] = issuer.mint(username=username, claims={"tenant_id": tenant_id})
        return {"Authorization": f"Bearer {tokens[username]}"}

    return headers


def create(client: TestClient[Litestar], headers: Headers, **fields: Any) -> dict[str, Any]:
    """Create a project; fields not given come from the factory (a description is only
    sent when asked for, so its absence can be tested)."""
    body = as_json(ProjectBodyFactory.build(**fields))
    if "description" not in fields:
        del body["description"]
    response = client.post("/v1/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def error_keys(response: Any) -> list[str]:
    return [item["key"] for item in response.json().get("extra", [])]


def names_field(response: Any, field: str) -> bool:
    """The 400 names `field`: in the sentence, as an offending key, or in a key's message
    (msgspec reports missing and unknown body fields only in the message)."""
    body = response.json()
    extra = body.get("extra", [])
    return (
        field in body["detail"]
        or field in error_keys(response)
        or any(f"`{field}`" in str(item.get("message", "")) for item in extra)
    )


async def stored(db: asyncpg.Connection, project_id: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM projects WHERE id = $1", uuid.UUID(project_id))
    assert row is not None
    return row


# -- create / get ---------------------------------------------------------------------


async def test_create_then_get(
    client: TestClient[Litestar], auth: Callable[[str], Headers], db: asyncpg.Connection
) -> None:
    before = datetime.datetime.now(datetime.UTC)
    response = client.post(
        "/v1/projects", json={"name": "  Garden plan  ", "description": "Beds"}, headers=auth("bob")
    )
    assert response.status_code == 201
    project = response.json()
    assert set(project) == {"id", "name", "description", "tenant_id", "created_at", "updated_at"}
    assert project["name"] == "Garden plan"
    assert project["description"] == "Beds"
    assert project["tenant_id"] == "acme"
    assert uuid.UUID(project["id"]).version == 7
    created_at = datetime.datetime.fromisoformat(project["created_at"])
    assert created_at.tzinfo is not None
    assert created_at >= before - datetime.timedelta(seconds=5)
    assert response.headers["etag"] == '"1"'

    fetched = client.get(f"/v1/projects/{project['id']}", headers=auth("bob"))
    assert fetched.status_code == 200
    assert fetched.json() == project
    assert fetched.headers["etag"] == '"1"'

    row = await stored(db, project["id"])
    assert row["owner_sub"] == client.get("/v1/me", headers=auth("bob")).json()["sub"]
    assert row["is_deleted"] is False
    assert row["deleted_at"] is None
    assert row["version"] == 1


def test_description_is_optional(
    client: TestClient[Litestar], auth: Callable[[str], Headers]
) -> None:
    assert create(client, auth("alice"), name="No description")["description"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 7}, "name"),
        ({"name": None}, "name"),
        ({"name": "ok", "description": "d" * 2001}, "description"),
        ({"name": "ok", "description": 5}, "description"),
        ({"name": "ok", "tenant_id": "globex"}, "tenant_id"),
        ({"name": "nul\x00byte"}, "name"),
        ({"name": "ok", "description": "nul\x00byte"}, "description"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    client: TestClient[Litestar],
    tenant: Callable[[str], Headers],
    db: asyncpg.Connection,
    body: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/v1/projects", json=body, headers=tenant("alice"))
    assert response.status_code == 400, response.text
    assert response.json()["status_code"] == 400
    assert names_field(response, field), response.text
    listing = client.get("/v1/projects", headers=tenant("alice")).json()
    assert listing["total"] == 0


def test_unknown_and_malformed_ids_are_404(
    client: TestClient[Litestar], auth: Callable[[str], Headers]
) -> None:
    headers = auth("alice")
    assert client.get(f"/v1/projects/{uuid.uuid4()}", headers=headers).status_code == 404
    assert client.patch(f"/v1/projects/{uuid.uuid4()}", json={}, headers=headers).status_code == 404
    assert client.delete(f"/v1/projects/{uuid.uuid4()}", headers=headers).status_code == 404
    response = client.get("/v1/projects/not-a-uuid", headers=headers)
    assert response.status_code == 404
    assert set(response.json()) >= {"status_code", "detail"}


def test_projects_need_a_token(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/projects")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# -- partial update -------------------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(
    client: TestClient[Litestar], auth: Callable[[str], Headers], db: asyncpg.Connection
) -> None:
    headers = auth("alice")
    project = create(client, headers, name="Roof", description="Tiles")
    url = f"/v1/projects/{project['id']}"

    renamed = client.patch(url, json={"name": " Roof v2 "}, headers=headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Roof v2"
    assert renamed.json()["description"] == "Tiles"
    assert renamed.json()["created_at"] == project["created_at"]
    assert renamed.json()["updated_at"] > project["updated_at"]
    assert renamed.headers["etag"] == '"2"'

    described = client.patch(url, json={"description": "Slate"}, headers=headers)
    assert described.json()["name"] == "Roof v2"
    assert described.json()["description"] == "Slate"

    cleared = client.patch(url, json={"description": None}, headers=headers)
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None
    assert cleared.json()["name"] == "Roof v2"
    assert cleared.headers["etag"] == '"4"'

    unchanged = client.patch(url, json={}, headers=headers)
    assert unchanged.status_code == 200
    assert unchanged.json() == cleared.json()
    assert unchanged.headers["etag"] == '"4"'

    assert client.get(url, headers=headers).json() == cleared.json()
    row = await stored(db, project["id"])
    assert (row["name"], row["description"], row["version"]) == ("Roof v2", None, 4)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 2001}, "description"),
        ({"description": ["list"]}, "description"),
        ({"name": "fine", "owner_sub": "me"}, "owner_sub"),
        ({"name": "fine", "description": "d" * 2001}, "description"),
        ({"name": "\x00"}, "name"),
    ],
)
async def test_patch_rejects_bad_input_and_writes_nothing(
    client: TestClient[Litestar],
    auth: Callable[[str], Headers],
    db: asyncpg.Connection,
    body: dict[str, Any],
    field: str,
) -> None:
    headers = auth("alice")
    project = create(client, headers, name="Stable", description="Keep")
    response = client.patch(f"/v1/projects/{project['id']}", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert names_field(response, field), response.text
    row = await stored(db, project["id"])
    assert (row["name"], row["description"], row["version"]) == ("Stable", "Keep", 1)


# -- ETag / If-Match ------------------------------------------------------------------


async def test_stale_if_match_is_412_and_changes_nothing(
    client: TestClient[Litestar], auth: Callable[[str], Headers], db: asyncpg.Connection
) -> None:
    alice, bob = auth("alice"), auth("bob")
    project = create(client, alice, name="Shared")
    url = f"/v1/projects/{project['id']}"
    etag = client.get(url, headers=alice).headers["etag"]

    # Bob changes it first; Alice's copy is now stale.
    bobs = client.patch(url, json={"name": "Bob's"}, headers={**bob, "If-Match": etag})
    assert bobs.status_code == 200
    new_etag = bobs.headers["etag"]
    assert new_etag != etag

    lost = client.patch(url, json={"name": "Alice's"}, headers={**alice, "If-Match": etag})
    assert lost.status_code == 412
    assert lost.json()["status_code"] == 412
    gone = client.delete(url, headers={**alice, "If-Match": etag})
    assert gone.status_code == 412
    row = await stored(db, project["id"])
    assert (row["name"], row["version"], row["is_deleted"]) == ("Bob's", 2, False)

    # The current tag, a list containing it, and `*` all match.
    current = client.patch(url, json={"description": "a"}, headers={**alice, "If-Match": new_etag})
    assert current.status_code == 200
    listed = client.patch(
        url,
        json={"description": "b"},
        headers={**alice, "If-Match": f'"99", {current.headers["etag"]}'},
    )
    assert listed.status_code == 200
    # If-Match compares strongly (RFC 9110): the weak form of the current tag does not match.
    weak = f"W/{listed.headers['etag']}"
    assert client.patch(url, json={}, headers={**alice, "If-Match": weak}).status_code == 412
    anything = client.patch(url, json={"description": "c"}, headers={**alice, "If-Match": "*"})
    assert anything.status_code == 200
    # An empty change still checks the precondition.
    assert client.patch(url, json={}, headers={**alice, "If-Match": etag}).status_code == 412
    assert (
        client.patch(
            url, json={}, headers={**alice, "If-Match": anything.headers["etag"]}
        ).status_code
        == 200
    )

    deleted = client.delete(url, headers={**alice, "If-Match": anything.headers["etag"]})
    assert deleted.status_code == 204
    # Once deleted, a precondition cannot make it reappear: 404, not 412.
    assert (
        client.patch(url, json={"name": "x"}, headers={**alice, "If-Match": "*"}).status_code == 404
    )


def test_malformed_if_match_is_400(
    client: TestClient[Litestar], auth: Callable[[str], Headers]
) -> None:
    headers = auth("alice")
    project = create(client, headers, name="Tagged")
    response = client.patch(
        f"/v1/projects/{project['id']}", json={"name": "y"}, headers={**headers, "If-Match": "3"}
    )
    assert response.status_code == 400
    assert "If-Match" in response.json()["detail"]


def test_if_match_on_a_missing_project_is_404(
    client: TestClient[Litestar], auth: Callable[[str], Headers]
) -> None:
    response = client.patch(
        f"/v1/projects/{uuid.uuid4()}",
        json={"name": "y"},
        headers={**auth("alice"), "If-Match": '"1"'},
    )
    assert response.status_code == 404


async def test_concurrent_edits_with_the_same_etag_let_exactly_one_through(
    async_client: AsyncTestClient[Litestar], auth: Callable[[str], Headers], db: asyncpg.Connection
) -> None:
    headers = auth("alice")
    created = await async_client.post("/v1/projects", json={"name": "Race"}, headers=headers)
    url = f"/v1/projects/{created.json()['id']}"
    etag = created.headers["etag"]
    responses = await asyncio.gather(
        *(
            async_client.patch(
                url, json={"name": f"writer {n}"}, headers={**headers, "If-Match": etag}
            )
            for n in range(6)
        )
    )
    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 412, 412, 412, 412, 412]
    winner = next(response for response in responses if response.status_code == 200)
    row = await stored(db, created.json()["id"])
    assert (row["name"], row["version"]) == (winner.json()["name"], 2)


# -- soft delete ------------------------------------------------------------------------


async def test_delete_is_soft_and_final_for_every_route(
    client: TestClient[Litestar], tenant: Callable[[str], Headers], db: asyncpg.Connection
) -> None:
    headers = tenant("alice")
    keep = create(client, headers, name="Keep")
    doomed = create(client, headers, name="Doomed")
    url = f"/v1/projects/{doomed['id']}"

    response = client.delete(url, headers=headers)
    assert response.status_code == 204
    assert response.content == b""

    row = await stored(db, doomed["id"])
    assert row["is_deleted"] is True
    assert row["deleted_at"] is not None
    assert abs(row["deleted_at"] - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(
        minutes=1
    )
    assert row["name"] == "Doomed"

    assert client.get(url, headers=headers).status_code == 404
    assert client.patch(url, json={"name": "Back"}, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404
    listing = client.get("/v1/projects", headers=headers).json()
    assert [item["id"] for item in listing["items"]] == [keep["id"]]
    assert listing["total"] == 1
    assert client.get("/v1/projects?q=Doomed", headers=headers).json()["total"] == 0
    # The failed attempts above wrote nothing.
    assert (await stored(db, doomed["id"]))["name"] == "Doomed"


# -- listing ----------------------------------------------------------------------------


def test_listing_pages_newest_first_with_totals(
    client: TestClient[Litestar], tenant: Callable[[str], Headers]
) -> None:
    headers = tenant("alice")
    ids = [create(client, headers, name=f"P{n:02d}")["id"] for n in range(25)]
    newest_first = list(reversed(ids))

    first = client.get("/v1/projects", headers=headers).json()
    assert (first["total"], first["limit"], first["offset"]) == (25, 20, 0)
    assert [item["id"] for item in first["items"]] == newest_first[:20]

    second = client.get("/v1/projects?limit=20&offset=20", headers=headers).json()
    assert (second["total"], second["offset"]) == (25, 20)
    assert [item["id"] for item in second["items"]] == newest_first[20:]

    for offset in (25, 1000):
        past_the_end = client.get(f"/v1/projects?offset={offset}", headers=headers).json()
        assert past_the_end == {"items": [], "total": 25, "limit": 20, "offset": offset}

    small = client.get("/v1/projects?limit=1&offset=3", headers=headers).json()
    assert [item["id"] for item in small["items"]] == [newest_first[3]]
    every = client.get("/v1/projects?limit=100", headers=headers).json()
    assert len(every["items"]) == 25


def test_listing_sort_options(
    client: TestClient[Litestar], tenant: Callable[[str], Headers]
) -> None:
    headers = tenant("bob")
    names = ["beta", "Alpha", "gamma", "delta"]
    ids = [create(client, headers, name=name)["id"] for name in names]

    def listed(sort: str) -> list[str]:
        response = client.get(f"/v1/projects?sort={sort}", headers=headers)
        assert response.status_code == 200
        return [item["name"] for item in response.json()["items"]]

    assert listed("-created_at") == list(reversed(names))
    assert listed("created_at") == names
    # "Alpha" sorts first under both the C and the usual ICU/glibc collations.
    assert listed("name") == ["Alpha", "beta", "delta", "gamma"]
    assert listed("-name") == ["gamma", "delta", "beta", "Alpha"]
    assert len(ids) == 4


def test_listing_search_is_case_insensitive_and_literal(
    client: TestClient[Litestar], tenant: Callable[[str], Headers]
) -> None:
    headers = tenant("alice")
    for name in ("100% done", "100 percent", "snake_case", "snakeXcase", "Big PLAN", r"back\slash"):
        create(client, headers, name=name)

    def matches(q: str) -> set[str]:
        response = client.get("/v1/projects", params={"q": q}, headers=headers)
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == len(body["items"])
        return {item["name"] for item in body["items"]}

    assert matches("plan") == {"Big PLAN"}
    assert matches("BIG p") == {"Big PLAN"}
    assert matches("%") == {"100% done"}
    assert matches("100%") == {"100% done"}
    assert matches("_") == {"snake_case"}
    assert matches("e_c") == {"snake_case"}
    assert matches("\\") == {r"back\slash"}
    assert matches("nothing like it") == set()
    assert len(matches("")) == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("sort=newest", "sort"),
        ("q=" + "q" * 201, "q"),
        ("q=a%00b", "q"),
    ],
)
def test_listing_rejects_out_of_range_parameters(
    client: TestClient[Litestar], auth: Callable[[str], Headers], query: str, field: str
) -> None:
    response = client.get(f"/v1/projects?{query}", headers=auth("alice"))
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert field in error_keys(response)


# -- tenants ------------------------------------------------------------------------------


def test_visibility_across_tenants_and_tenantless_callers(
    client: TestClient[Litestar], auth: Callable[[str], Headers], issuer: devstack.IssuerInfo
) -> None:
    marker = uuid.uuid4().hex[:8]
    alice, bob, carol, dave = (auth(user) for user in ("alice", "bob", "carol", "dave"))
    # Another caller without a tenant: a different subject, no tenant claim.
    erin = {
        "Authorization": f"Bearer {issuer.mint(username='dave', claims={'sub': f'erin-{marker}'})}"
    }

    acme = create(client, alice, name=f"acme {marker}")
    globex = create(client, carol, name=f"globex {marker}")
    own = create(client, dave, name=f"dave {marker}")
    assert (acme["tenant_id"], globex["tenant_id"], own["tenant_id"]) == ("acme", "globex", None)

    def visible(headers: Headers) -> set[str]:
        items = client.get("/v1/projects", params={"q": marker}, headers=headers).json()["items"]
        return {item["id"] for item in items}

    assert visible(alice) == visible(bob) == {acme["id"]}
    assert visible(carol) == {globex["id"]}
    assert visible(dave) == {own["id"]}
    assert visible(erin) == set()

    # Outsiders get exactly what a missing project gets: 404, on every route.
    for outsider, project in (
        (carol, acme),
        (dave, acme),
        (alice, globex),
        (alice, own),
        (erin, own),
    ):
        url = f"/v1/projects/{project['id']}"
        assert client.get(url, headers=outsider).status_code == 404
        assert client.patch(url, json={"name": "taken"}, headers=outsider).status_code == 404
        assert client.delete(url, headers=outsider).status_code == 404
        assert (
            client.get(url, headers=outsider).json()
            == client.get(f"/v1/projects/{uuid.uuid4()}", headers=outsider).json()
        )

    # Any member of the tenant may edit and delete what another member created.
    url = f"/v1/projects/{acme['id']}"
    edited = client.patch(url, json={"name": f"bob was here {marker}"}, headers=bob)
    assert edited.status_code == 200
    assert client.get(url, headers=alice).json()["name"] == f"bob was here {marker}"
    assert client.delete(url, headers=bob).status_code == 204
    assert client.get(url, headers=alice).status_code == 404

    # Nothing the outsiders tried changed anything.
    assert client.get(f"/v1/projects/{globex['id']}", headers=carol).json() == globex
    assert client.get(f"/v1/projects/{own['id']}", headers=dave).json() == own


def test_tenant_claim_name_comes_from_settings(issuer: devstack.IssuerInfo) -> None:
    import os

    from app.config import load_settings
    from app.main import create_app

    app = create_app(load_settings({**os.environ, "TENANT_CLAIM": "organisation"}))
    org = f"org-{uuid.uuid4().hex[:8]}"
    token = issuer.mint(username="dave", claims={"organisation": org})
    other = issuer.mint(username="carol", claims={"organisation": org})
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token}"}
        project = create(client, headers, name="Org project")
        assert project["tenant_id"] == org
        listing = client.get("/v1/projects", headers={"Authorization": f"Bearer {other}"}).json()
        assert [item["id"] for item in listing["items"]] == [project["id"]]


# -- legacy aliases and the document ---------------------------------------------------


def test_legacy_routes_answer_like_v1(
    client: TestClient[Litestar], tenant: Callable[[str], Headers]
) -> None:
    headers = tenant("carol")
    created = client.post("/projects", json={"name": "Old client"}, headers=headers)
    assert created.status_code == 201
    project = created.json()
    assert client.get(f"/projects/{project['id']}", headers=headers).json() == project
    assert (
        client.get("/projects", headers=headers).json()
        == client.get("/v1/projects", headers=headers).json()
    )
    patched = client.patch(
        f"/projects/{project['id']}",
        json={"name": "Renamed"},
        headers={**headers, "If-Match": '"1"'},
    )
    assert patched.status_code == 200
    assert patched.headers["etag"] == '"2"'
    assert client.get(f"/v1/projects/{project['id']}", headers=headers).json() == patched.json()
    assert client.get("/projects?limit=0", headers=headers).status_code == 400
    assert client.delete(f"/projects/{project['id']}", headers=headers).status_code == 204
    assert client.delete(f"/projects/{project['id']}", headers=headers).status_code == 404


def test_openapi_documents_projects_and_deprecates_legacy_aliases(
    client: TestClient[Litestar],
) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/v1/projects": {"get": "listProjects", "post": "createProject"},
        "/v1/projects/{project_id}": {
            "get": "getProject",
            "patch": "updateProject",
            "delete": "deleteProject",
        },
    }
    for path, operations in expected.items():
        legacy = path.removeprefix("/v1")
        for method, operation_id in operations.items():
            current = paths[path][method]
            assert current["operationId"] == operation_id
            assert not current.get("deprecated", False)
            old = paths[legacy][method]
            assert old["operationId"] == f"{operation_id}Legacy"
            assert old["deprecated"] is True

    listing = paths["/v1/projects"]["get"]
    parameters = {parameter["name"]: parameter for parameter in listing["parameters"]}
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["offset"]["schema"]["minimum"] == 0
    assert "q" in parameters
    sort = parameters["sort"]["schema"]["allOf"][0]["$ref"].rsplit("/", 1)[1]
    assert set(document["components"]["schemas"][sort]["enum"]) == {
        "-created_at",
        "created_at",
        "name",
        "-name",
    }

    patch = paths["/v1/projects/{project_id}"]["patch"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    assert patch["responses"]["200"]["headers"]["ETag"]["schema"]["type"] == "string"
    assert {"404", "412"} <= set(patch["responses"])
    assert "ETag" in paths["/v1/projects/{project_id}"]["get"]["responses"]["200"]["headers"]
    assert "204" in paths["/v1/projects/{project_id}"]["delete"]["responses"]

    schemas = document["components"]["schemas"]
    project = schemas["Project"]
    assert set(project["properties"]) == {
        "id",
        "name",
        "description",
        "tenant_id",
        "created_at",
        "updated_at",
    }
    page = schemas["ProjectPage"]
    assert set(page["required"]) == {"items", "total", "limit", "offset"}


# -- schema and query plans -------------------------------------------------------------


async def test_migration_matches_the_model(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.models import load_model_metadata

    metadata = load_model_metadata()
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    about_projects = [diff for diff in differences if "projects" in repr(diff)]
    assert about_projects == []


async def _plan(db: asyncpg.Connection, sql: str, params: list[Any]) -> str:
    plan: str = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
    return plan


async def test_listing_queries_use_the_partial_indexes(
    db: asyncpg.Connection, database_url: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.db.tenancy import TenantScope
    from app.projects.models import Project as ProjectModel
    from app.projects.repository import listing_query
    from app.projects.schemas import ProjectSort

    tenant_id, loner = f"t-{uuid.uuid4().hex[:12]}", f"solo-{uuid.uuid4().hex[:8]}"
    transaction = db.transaction()
    await transaction.start()
    engine = create_async_engine(database_url)  # only to build readers; never connects here
    try:
        seed = """
            INSERT INTO projects (id, tenant_id, owner_sub, name, created_at, updated_at,
                                  is_deleted, deleted_at)
            SELECT gen_random_uuid(), $1, $2, 'Project ' || g,
                   now() - g * interval '1 minute', now(), g % 10 = 0,
                   CASE WHEN g % 10 = 0 THEN now() END
            FROM generate_series(1, $3) AS g
        """
        await db.execute(seed, tenant_id, "member", 1100)  # 1,000 live, 110 deleted
        await db.execute(seed, None, loner, 300)
        # Other tenants' rows, so the tenant is a small share of the table as in real use.
        await db.execute(seed, f"{tenant_id}-other", "member", 20_000)
        await db.execute("ANALYZE projects")

        for scope, index in (
            (TenantScope(tenant_id=tenant_id, owner_sub="member"), "ix_projects_tenant_listing"),
            (TenantScope(tenant_id=None, owner_sub=loner), "ix_projects_owner_listing"),
        ):
            page_sql, page_params = listing_query(ProjectSort.NEWEST, searching=False).prepare(
                engine.dialect, {ProjectModel: scope}, limit=20, offset=0
            )
            plan = await _plan(db, page_sql, page_params)
            assert index in plan
            assert "Seq Scan" not in plan
            rows = await db.fetch(page_sql, *page_params)
            assert len(rows) == 20
            assert rows[0][-1] == (990 if scope.tenant_id else 270)

        purge = "DELETE FROM projects WHERE is_deleted AND deleted_at < now() - interval '30 days'"
        assert "ix_projects_purge" in await _plan(db, purge, [])
    finally:
        await transaction.rollback()
        await engine.dispose()


def test_listing_and_getting_are_one_statement_each(
    client: TestClient[Litestar], tenant: Callable[[str], Headers]
) -> None:
    headers = tenant("alice")
    project = create(client, headers)
    for path in ("/v1/projects?limit=20", f"/v1/projects/{project['id']}", "/v1/projects?q=x"):
        with statements_sent(client) as statements:
            assert client.get(path, headers=headers).status_code == 200
        assert len(statements) == 1, (path, statements)
        assert "tenant_id" in statements[0]
        assert "is_deleted" in statements[0]
