"""Children endpoints on real PostgreSQL with real tokens: upsert rules, ownership,
validation (nothing written on a 400), concurrency, listing and deletion."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import Any

import asyncpg
import devstack
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from tests.support.family import Headers, frozen_today, new_parent
from tests.support.processes import running_api

ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# Every field of a Child in the README's API reference.
CHILD_FIELDS = {"id", "name", "birthday", "interests", "avatar", "created_at", "updated_at"}


def unique_id(prefix: str = "kid") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "Mia", "birthday": "2019-05-04"}
    base.update(fields)
    return base


async def stored(db: asyncpg.Connection, child_id: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM children WHERE id = $1", child_id)


async def stored_for(db: asyncpg.Connection, owner_sub: str, child_id: str) -> Any:
    return await db.fetchrow(
        "SELECT * FROM children WHERE owner_sub = $1 AND id = $2", owner_sub, child_id
    )


async def count_for(db: asyncpg.Connection, owner_sub: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM children WHERE owner_sub = $1", owner_sub)
    return count


def sub_of(client: TestClient[Litestar], headers: Headers) -> str:
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 200
    sub: str = response.json()["sub"]
    return sub


@pytest.fixture
def parent(issuer: devstack.IssuerInfo, client: TestClient[Litestar]) -> Headers:
    return new_parent(issuer)


@pytest.fixture
def other_parent(issuer: devstack.IssuerInfo, client: TestClient[Litestar]) -> Headers:
    return new_parent(issuer)


# --- upsert matrix ---------------------------------------------------------------------


async def test_post_without_id_creates_with_a_generated_id(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    response = client.post("/v1/children", json=body(interests=["Space"]), headers=parent)
    assert response.status_code == 201, response.text
    child = response.json()
    assert set(child) == CHILD_FIELDS
    assert ID_RULE.match(child["id"])
    assert child["name"] == "Mia"
    assert child["birthday"] == "2019-05-04"
    assert child["interests"] == ["Space"]
    assert child["avatar"] is None
    assert child["created_at"] == child["updated_at"]
    assert child["created_at"].endswith("Z")
    row = await stored(db, child["id"])
    assert row is not None
    assert row["owner_sub"] == sub_of(client, parent)


async def test_post_with_an_unused_id_creates_with_that_id(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    child_id = unique_id()
    response = client.post("/v1/children", json=body(id=child_id, avatar="fox"), headers=parent)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == child_id
    assert response.json()["avatar"] == "fox"
    row = await stored(db, child_id)
    assert row is not None
    assert row["avatar"] == "fox"


async def test_post_with_own_id_replaces_every_field(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    child_id = unique_id()
    first = client.post(
        "/v1/children",
        json=body(id=child_id, interests=["trains", "music"], avatar="owl"),
        headers=parent,
    )
    assert first.status_code == 201
    # Omitted interests and avatar are reset, not kept.
    second = client.post(
        "/v1/children",
        json={"id": child_id, "name": "Mia Rose", "birthday": "2018-01-02"},
        headers=parent,
    )
    assert second.status_code == 200, second.text
    replaced = second.json()
    assert replaced["name"] == "Mia Rose"
    assert replaced["birthday"] == "2018-01-02"
    assert replaced["interests"] == []
    assert replaced["avatar"] is None
    assert replaced["created_at"] == first.json()["created_at"]
    assert replaced["updated_at"] > first.json()["updated_at"]
    row = await stored(db, child_id)
    assert row is not None
    assert (row["name"], row["interests"], row["avatar"]) == ("Mia Rose", [], None)
    assert await count_for(db, sub_of(client, parent)) == 1


async def test_post_with_someone_elses_id_creates_your_own_and_leaves_theirs(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers, db: asyncpg.Connection
) -> None:
    """Ids are per parent (API.md, "Children"): the same id is another child."""
    child_id = unique_id()
    theirs = client.post("/v1/children", json=body(id=child_id), headers=parent)
    assert theirs.status_code == 201
    before = await stored_for(db, sub_of(client, parent), child_id)
    response = client.post(
        "/v1/children", json=body(id=child_id, name="Mine too"), headers=other_parent
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == child_id
    assert response.json()["name"] == "Mine too"
    # Theirs is untouched and still theirs; each parent sees its own child under the id.
    assert await stored_for(db, sub_of(client, parent), child_id) == before
    assert client.get(f"/v1/children/{child_id}", headers=parent).json() == theirs.json()
    assert client.get(f"/v1/children/{child_id}", headers=other_parent).json()["name"] == (
        "Mine too"
    )
    # A second POST by the other parent replaces its own child only.
    again = client.post(
        "/v1/children", json=body(id=child_id, name="Renamed"), headers=other_parent
    )
    assert again.status_code == 200
    assert await stored_for(db, sub_of(client, parent), child_id) == before
    # Deleting yours leaves theirs.
    assert client.delete(f"/v1/children/{child_id}", headers=other_parent).status_code == 204
    assert client.get(f"/v1/children/{child_id}", headers=parent).status_code == 200


async def test_nothing_tells_whether_another_parent_uses_an_id(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers
) -> None:
    """Every answer about an id someone else uses equals the answer about a fresh id."""
    used, fresh = unique_id(), unique_id()
    assert client.post("/v1/children", json=body(id=used), headers=parent).status_code == 201

    def answers(child_id: str) -> list[tuple[int, Any]]:
        results = []
        for method, path in [
            ("GET", f"/v1/children/{child_id}"),
            ("DELETE", f"/v1/children/{child_id}"),
            ("GET", f"/v1/affirmations?childId={child_id}"),
        ]:
            response = client.request(method, path, headers=other_parent)
            results.append((response.status_code, response.json()))
        created = client.post("/v1/children", json=body(id=child_id), headers=other_parent)
        results.append((created.status_code, created.json()["id"] == child_id))
        return results

    assert answers(used) == answers(fresh)


async def test_null_id_counts_as_no_id(client: TestClient[Litestar], parent: Headers) -> None:
    response = client.post("/v1/children", json=body(id=None), headers=parent)
    assert response.status_code == 201
    assert ID_RULE.match(response.json()["id"])


async def test_name_and_interests_are_trimmed(
    client: TestClient[Litestar], parent: Headers
) -> None:
    padded_name = "  " + "n" * 100 + "  "
    response = client.post(
        "/v1/children",
        json=body(name=padded_name, interests=["  Dinosaurs ", "space"]),
        headers=parent,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "n" * 100
    assert response.json()["interests"] == ["Dinosaurs", "space"]


async def test_twenty_interests_of_forty_characters_are_accepted(
    client: TestClient[Litestar], parent: Headers
) -> None:
    interests = [f"{index:02d}" + "x" * 38 for index in range(20)]
    response = client.post("/v1/children", json=body(interests=interests), headers=parent)
    assert response.status_code == 201, response.text
    assert response.json()["interests"] == interests


# --- concurrency -----------------------------------------------------------------------


async def test_parallel_posts_with_the_same_new_id_create_exactly_one_child(
    async_client: AsyncTestClient[Litestar],
    issuer: devstack.IssuerInfo,
    db: asyncpg.Connection,
) -> None:
    headers = new_parent(issuer)
    child_id = unique_id("race")
    responses = await asyncio.gather(
        *(
            async_client.post(
                "/v1/children", json=body(id=child_id, name=f"Name {n}"), headers=headers
            )
            for n in range(10)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 201}, [response.text for response in responses]
    assert statuses.count(201) == 1
    assert await db.fetchval("SELECT count(*) FROM children WHERE id = $1", child_id) == 1


async def test_parallel_posts_from_two_parents_give_each_its_own_child(
    async_client: AsyncTestClient[Litestar],
    issuer: devstack.IssuerInfo,
    db: asyncpg.Connection,
) -> None:
    first, second = new_parent(issuer), new_parent(issuer)
    child_id = unique_id("race")
    responses = await asyncio.gather(
        *(
            async_client.post(
                "/v1/children", json=body(id=child_id), headers=first if n % 2 else second
            )
            for n in range(10)
        )
    )
    by_parent: dict[str, list[int]] = {"first": [], "second": []}
    for n, response in enumerate(responses):
        by_parent["first" if n % 2 else "second"].append(response.status_code)
    # Ids are per parent: each parent created its own child once, then replaced it.
    for codes in by_parent.values():
        assert sorted(codes) == [200, 200, 200, 200, 201], by_parent
    assert await db.fetchval("SELECT count(*) FROM children WHERE id = $1", child_id) == 2


# --- the cap on children per parent (issue 19, finding 5) ------------------------------

MAX_CHILDREN = 50  # MAX_CHILDREN_PER_PARENT's default


async def give_children(db: asyncpg.Connection, owner_sub: str, count: int) -> list[str]:
    """`count` children for a parent, written directly (faster than one POST each)."""
    ids = [unique_id("many") for _ in range(count)]
    await db.executemany(
        "INSERT INTO children (owner_sub, id, name, birthday) VALUES ($1, $2, 'Kid', $3)",
        [(owner_sub, child_id, dt.date(2019, 5, 4)) for child_id in ids],
    )
    return ids


async def test_one_child_past_the_cap_is_409_naming_it_and_replacing_stays_allowed(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers, db: asyncpg.Connection
) -> None:
    owner_sub = sub_of(client, parent)
    ids = await give_children(db, owner_sub, MAX_CHILDREN - 1)
    assert client.post("/v1/children", json=body(), headers=parent).status_code == 201
    refused = client.post("/v1/children", json=body(id=unique_id()), headers=parent)
    assert refused.status_code == 409
    assert refused.json() == {
        "status_code": 409,
        "detail": f"Too many children: a parent may have at most {MAX_CHILDREN}",
    }
    assert client.post("/v1/children", json=body(), headers=parent).status_code == 409
    assert await count_for(db, owner_sub) == MAX_CHILDREN
    # At the cap, every child of the parent can still be replaced.
    replaced = client.post("/v1/children", json=body(id=ids[0], name="Renamed"), headers=parent)
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "Renamed"
    # The list stays the plain array, bounded by the cap.
    listed = client.get("/v1/children", headers=parent).json()
    assert isinstance(listed, list)
    assert len(listed) == MAX_CHILDREN
    # Another parent is not counted against it, and after a delete there is room again.
    assert client.post("/v1/children", json=body(), headers=other_parent).status_code == 201
    assert client.delete(f"/v1/children/{ids[1]}", headers=parent).status_code == 204
    assert client.post("/v1/children", json=body(), headers=parent).status_code == 201


async def test_parallel_creates_at_the_cap_make_exactly_one_child(
    issuer: devstack.IssuerInfo, db: asyncpg.Connection
) -> None:
    """Through a real API process (uvicorn), so the requests truly overlap."""
    headers = new_parent(issuer)
    with running_api() as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as api:
            owner_sub = (await api.get("/v1/me")).json()["sub"]
            await give_children(db, owner_sub, MAX_CHILDREN - 1)
            responses = await asyncio.gather(
                *(api.post("/v1/children", json=body(name=f"Twin {n}")) for n in range(20))
            )
    assert sorted(response.status_code for response in responses) == [201] + [409] * 19
    assert await count_for(db, owner_sub) == MAX_CHILDREN


# --- validation ------------------------------------------------------------------------

INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("blank name", body(name="   "), "name"),
    ("long name", body(name="n" * 101), "name"),
    ("name not text", body(name=42), "name"),
    ("no name", {"birthday": "2019-05-04"}, "name"),
    ("no birthday", {"name": "Mia"}, "birthday"),
    ("impossible date", body(birthday="2019-02-30"), "birthday"),
    ("not a date", body(birthday="yesterday"), "birthday"),
    ("too many interests", body(interests=[f"i{n}" for n in range(21)]), "interests"),
    ("long interest", body(interests=["x" * 41]), "interests[0]"),
    ("blank interest", body(interests=["art", "  "]), "interests[1]"),
    ("interests not a list", body(interests="art"), "interests"),
    ("id with spaces", body(id="has space"), "id"),
    ("id too long", body(id="a" * 65), "id"),
    ("empty id", body(id=""), "id"),
    ("unknown field", body(nickname="Mimi"), "nickname"),
    ("NUL in name", body(name="Mi\u0000a"), "name"),
    ("newline in name", body(name="Mi\nA"), "name"),
    ("tab in interest", body(interests=["art", "lego\tbricks"]), "interests[1]"),
    ("NUL in avatar", body(avatar="fox\u0000.png"), "avatar"),
    ("avatar too long", body(avatar="a" * 2049), "avatar"),
]


@pytest.mark.parametrize(
    ("payload", "field"),
    [(payload, field) for _, payload, field in INVALID_BODIES],
    ids=[case for case, _, _ in INVALID_BODIES],
)
async def test_invalid_bodies_are_400_naming_the_field_and_write_nothing(
    client: TestClient[Litestar],
    parent: Headers,
    db: asyncpg.Connection,
    payload: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/v1/children", json=payload, headers=parent)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["status_code"] == 400
    assert field in error["detail"]
    assert field in [item["key"] for item in error["extra"]]
    assert await count_for(db, sub_of(client, parent)) == 0


async def test_birthday_in_the_future_is_400_and_today_is_fine(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    today = dt.date(2031, 3, 10)
    with frozen_today(client, today):
        tomorrow = client.post("/v1/children", json=body(birthday="2031-03-11"), headers=parent)
        assert tomorrow.status_code == 400
        assert tomorrow.json()["extra"] == [
            {"key": "birthday", "message": "must not be in the future", "source": "body"}
        ]
        assert await count_for(db, sub_of(client, parent)) == 0
        born_today = client.post("/v1/children", json=body(birthday="2031-03-10"), headers=parent)
        assert born_today.status_code == 201


async def test_every_bad_field_is_named_at_once(
    client: TestClient[Litestar], parent: Headers
) -> None:
    response = client.post(
        "/v1/children",
        json=body(name=" ", birthday="2999-01-01", interests=["ok", ""]),
        headers=parent,
    )
    assert response.status_code == 400
    assert [item["key"] for item in response.json()["extra"]] == [
        "name",
        "birthday",
        "interests[1]",
    ]


async def test_a_rejected_replace_leaves_the_child_as_it_was(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    child_id = unique_id()
    client.post("/v1/children", json=body(id=child_id, interests=["art"]), headers=parent)
    before = await stored(db, child_id)
    response = client.post(
        "/v1/children", json=body(id=child_id, name="", interests=[]), headers=parent
    )
    assert response.status_code == 400
    assert await stored(db, child_id) == before


def test_a_lone_surrogate_is_400(client: TestClient[Litestar], parent: Headers) -> None:
    response = client.post(
        "/v1/children",
        content=b'{"name": "\\ud800", "birthday": "2019-05-04"}',
        headers={**parent, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text


def test_malformed_json_is_400(client: TestClient[Litestar], parent: Headers) -> None:
    response = client.post(
        "/v1/children",
        content=b'{"name": ',
        headers={**parent, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["status_code"] == 400


# --- reading, listing, deleting --------------------------------------------------------


def test_get_own_child_and_404_for_foreign_unknown_or_malformed(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers
) -> None:
    created = client.post("/v1/children", json=body(), headers=parent).json()
    own = client.get(f"/v1/children/{created['id']}", headers=parent)
    assert own.status_code == 200
    assert own.json() == created
    for path, headers in [
        (f"/v1/children/{created['id']}", other_parent),
        (f"/v1/children/{unique_id()}", parent),
        ("/v1/children/not%20an%20id", parent),
        (f"/v1/children/{'a' * 65}", parent),
    ]:
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json() == {"status_code": 404, "detail": "Child not found"}


def test_lists_are_isolated_between_parents(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers
) -> None:
    mine = [
        client.post("/v1/children", json=body(name=name), headers=parent).json()
        for name in ("Ada", "Ben")
    ]
    theirs = client.post("/v1/children", json=body(name="Cy"), headers=other_parent).json()
    my_list = client.get("/v1/children", headers=parent)
    assert my_list.status_code == 200
    # Oldest first, and only the caller's own children.
    assert my_list.json() == mine
    assert client.get("/v1/children", headers=other_parent).json() == [theirs]


def test_a_new_parent_has_no_children(client: TestClient[Litestar], parent: Headers) -> None:
    response = client.get("/v1/children", headers=parent)
    assert response.status_code == 200
    assert response.json() == []


async def test_delete_own_child_then_it_is_gone(
    client: TestClient[Litestar], parent: Headers, db: asyncpg.Connection
) -> None:
    child_id = client.post("/v1/children", json=body(), headers=parent).json()["id"]
    response = client.delete(f"/v1/children/{child_id}", headers=parent)
    assert response.status_code == 204
    assert response.content == b""
    assert await stored(db, child_id) is None
    assert client.get(f"/v1/children/{child_id}", headers=parent).status_code == 404
    assert client.delete(f"/v1/children/{child_id}", headers=parent).status_code == 404
    # The id is free again: posting it creates a new child.
    again = client.post("/v1/children", json=body(id=child_id), headers=parent)
    assert again.status_code == 201


async def test_delete_someone_elses_child_is_404_and_keeps_it(
    client: TestClient[Litestar], parent: Headers, other_parent: Headers, db: asyncpg.Connection
) -> None:
    child_id = client.post("/v1/children", json=body(), headers=parent).json()["id"]
    response = client.delete(f"/v1/children/{child_id}", headers=other_parent)
    assert response.status_code == 404
    assert await stored(db, child_id) is not None


def test_children_endpoints_need_a_token(client: TestClient[Litestar]) -> None:
    for method, path in [
        ("GET", "/v1/children"),
        ("POST", "/v1/children"),
        ("GET", "/v1/children/abc"),
        ("DELETE", "/v1/children/abc"),
    ]:
        response = client.request(method, path, json=body() if method == "POST" else None)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- documentation ---------------------------------------------------------------------


def test_openapi_documents_the_children_endpoints(client: TestClient[Litestar]) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    post = paths["/v1/children"]["post"]
    assert post["operationId"] == "upsertChild"
    assert {"200", "201"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChildUpsert"
    }
    assert paths["/v1/children"]["get"]["operationId"] == "listChildren"
    assert paths["/v1/children/{child_id}"]["get"]["operationId"] == "getChild"
    delete = paths["/v1/children/{child_id}"]["delete"]
    assert delete["operationId"] == "deleteChild"
    assert {"204", "404"} <= set(delete["responses"])
    assert "404" in paths["/v1/children/{child_id}"]["get"]["responses"]
    schemas = document["components"]["schemas"]
    assert set(schemas["Child"]["required"]) == CHILD_FIELDS
    assert set(schemas["ChildUpsert"]["required"]) == {"name", "birthday"}
