"""Child-aware content on real PostgreSQL with real tokens: parameters and 404s, age
filtering, interest ranking, daily picks over an injected clock, flashcard filters, and
the catalog load (present after migrating, idempotent, removes retired ids)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import devstack
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import create_async_engine

from app.content.service import DAILY_CHORES, DAILY_OUTDOOR_ACTIVITIES
from db.catalog_loader import CATALOG_DIR, CATALOG_TABLES, TableLoad, load_catalog
from tests.support.databases import alembic, empty_database
from tests.support.family import Headers, create_child, frozen_today, new_parent
from tests.support.statements import statements_sent

TODAY = dt.date(2030, 6, 15)

COMMON_FIELDS = {"id", "min_age", "max_age", "tags"}
ENDPOINT_FIELDS = {
    "/v1/affirmations": COMMON_FIELDS | {"text"},
    "/v1/subjects": COMMON_FIELDS | {"name"},
    "/v1/flashcards": COMMON_FIELDS | {"subject_id", "difficulty", "front", "back"},
    "/v1/chores/daily": COMMON_FIELDS | {"title", "description"},
    "/v1/outdoor/activities": COMMON_FIELDS | {"title", "description"},
}
ENDPOINTS = sorted(ENDPOINT_FIELDS)
# Endpoints that list every suitable item (the daily ones pick a few).
FULL_LISTS = {
    "/v1/affirmations": "affirmations",
    "/v1/subjects": "subjects",
    "/v1/flashcards": "flashcards",
    "/v1/outdoor/activities": "outdoor_activities",
}
DIFFICULTY_RANK = {"easy": 0, "medium": 1, "hard": 2}

Item = dict[str, Any]


@pytest.fixture
def parent(issuer: devstack.IssuerInfo, client: TestClient[Litestar]) -> Headers:
    return new_parent(issuer)


@pytest.fixture
def today(client: TestClient[Litestar]) -> Iterator[dt.date]:
    """Freeze the app's UTC date for the test, so ages and daily picks are predictable."""
    with frozen_today(client, TODAY):
        yield TODAY


def fetch(client: TestClient[Litestar], path: str, headers: Headers, **params: str) -> list[Item]:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[Item] = response.json()
    return items


def suits(item: Item, age: int) -> bool:
    return bool(item["min_age"] <= age <= item["max_age"])


def matches(item: Item, interests: list[str]) -> bool:
    wanted = {interest.lower() for interest in interests}
    return bool(wanted & set(item["tags"]))


async def catalog_rows(db: asyncpg.Connection, table: str) -> list[Item]:
    rows = await db.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    return [dict(row) for row in rows]


# --- parameters, 400 and 404 -----------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_missing_child_id_is_400_naming_it(
    client: TestClient[Litestar], parent: Headers, path: str
) -> None:
    for query in ("", "?childId="):
        response = client.get(path + query, headers=parent)
        assert response.status_code == 400, (path, query)
        assert response.json()["status_code"] == 400
        assert "childId" in response.json()["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_unknown_foreign_or_malformed_child_is_404(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, parent: Headers, path: str
) -> None:
    someone_else = new_parent(issuer)
    foreign = create_child(client, someone_else, age=6, today=dt.date.today())
    for child_id in (foreign["id"], f"nobody-{uuid.uuid4().hex}", "not an id", "x" * 65):
        response = client.get(path, params={"childId": child_id}, headers=parent)
        assert response.status_code == 404, (path, child_id)
        assert response.json() == {"status_code": 404, "detail": "Child not found"}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_content_needs_a_token(client: TestClient[Litestar], path: str) -> None:
    assert client.get(path, params={"childId": "abc"}).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_own_child_gets_items_with_their_documented_fields(
    client: TestClient[Litestar], parent: Headers, today: dt.date, path: str
) -> None:
    child = create_child(client, parent, age=7, today=today)
    items = fetch(client, path, parent, childId=child["id"])
    assert items
    for item in items:
        assert set(item) == ENDPOINT_FIELDS[path], item
        assert all(isinstance(tag, str) for tag in item["tags"])
        assert item["tags"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("age", [0, 1, 18, 40])
def test_a_child_nothing_suits_gets_an_empty_list_not_a_404(
    client: TestClient[Litestar], parent: Headers, today: dt.date, path: str, age: int
) -> None:
    child = create_child(client, parent, age=age, today=today)
    assert fetch(client, path, parent, childId=child["id"]) == []


# --- age filtering ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "table"), sorted(FULL_LISTS.items()))
@pytest.mark.parametrize("age", [2, 3, 7, 12, 17])
async def test_lists_hold_exactly_the_items_suited_to_the_age(
    client: TestClient[Litestar],
    parent: Headers,
    db: asyncpg.Connection,
    today: dt.date,
    path: str,
    table: str,
    age: int,
) -> None:
    child = create_child(client, parent, age=age, today=today)
    items = fetch(client, path, parent, childId=child["id"])
    expected = {row["id"] for row in await catalog_rows(db, table) if suits(row, age)}
    assert {item["id"] for item in items} == expected
    assert len(items) == len(expected)


def test_a_toddler_and_a_big_kid_get_different_affirmations_and_activities(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    toddler = create_child(client, parent, age=3, today=today)
    big_kid = create_child(client, parent, age=12, today=today)
    for path, extra in [
        ("/v1/affirmations", {}),
        ("/v1/outdoor/activities", {}),
        ("/v1/outdoor/activities", {"isDaily": "true"}),
        ("/v1/chores/daily", {}),
    ]:
        young = fetch(client, path, parent, childId=toddler["id"], **extra)
        old = fetch(client, path, parent, childId=big_kid["id"], **extra)
        assert young
        assert old
        assert all(suits(item, 3) for item in young), path
        assert all(suits(item, 12) for item in old), path
        young_ids, old_ids = {i["id"] for i in young}, {i["id"] for i in old}
        assert young_ids != old_ids, path
        # Mostly different, not just reordered: the catalog keeps these bands apart.
        assert len(young_ids & old_ids) <= len(young_ids) // 2, path


def test_age_follows_the_birthday_in_utc_today(
    client: TestClient[Litestar], parent: Headers
) -> None:
    # Born 2024-06-16: 5 on 2030-06-15, 6 the next day.
    response = client.post(
        "/v1/children", json={"name": "Leo", "birthday": "2024-06-16"}, headers=parent
    )
    child_id = response.json()["id"]
    with frozen_today(client, dt.date(2030, 6, 15)):
        items = fetch(client, "/v1/affirmations", parent, childId=child_id)
        assert all(suits(item, 5) for item in items)
    with frozen_today(client, dt.date(2030, 6, 16)):
        items = fetch(client, "/v1/affirmations", parent, childId=child_id)
        assert all(suits(item, 6) for item in items)


# --- interest ranking ------------------------------------------------------------------


def expected_order(path: str, items: list[Item], interests: list[str]) -> list[str]:
    def key(item: Item) -> tuple[Any, ...]:
        unmatched = not matches(item, interests)
        if path == "/v1/flashcards":
            return (unmatched, item["subject_id"], DIFFICULTY_RANK[item["difficulty"]], item["id"])
        return (unmatched, item["id"])

    return [item["id"] for item in sorted(items, key=key)]


@pytest.mark.parametrize("path", sorted(FULL_LISTS))
@pytest.mark.parametrize(
    ("age", "interests"),
    [
        (8, ["ANIMALS", "Space"]),
        (4, ["Music", "dancing", "cooking"]),
        (13, ["football", "history", "Weather"]),
    ],
)
def test_items_matching_interests_come_first_ignoring_case(
    client: TestClient[Litestar],
    parent: Headers,
    today: dt.date,
    path: str,
    age: int,
    interests: list[str],
) -> None:
    child = create_child(client, parent, age=age, today=today, interests=interests)
    items = fetch(client, path, parent, childId=child["id"])
    flags = [matches(item, interests) for item in items]
    assert any(flags), f"{path}: no item matches {interests} at age {age}"
    # Every match before every other item; then a stable order.
    assert flags == sorted(flags, reverse=True)
    assert [item["id"] for item in items] == expected_order(path, items, interests)


@pytest.mark.parametrize("path", sorted(FULL_LISTS))
def test_without_interests_the_order_is_stable(
    client: TestClient[Litestar], parent: Headers, today: dt.date, path: str
) -> None:
    child = create_child(client, parent, age=9, today=today)
    first = fetch(client, path, parent, childId=child["id"])
    assert [item["id"] for item in first] == expected_order(path, first, [])
    assert fetch(client, path, parent, childId=child["id"]) == first


def test_changing_interests_changes_the_ranking(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=8, today=today, interests=["animals"])
    before = fetch(client, "/v1/outdoor/activities", parent, childId=child["id"])
    assert matches(before[0], ["animals"])
    replaced = client.post(
        "/v1/children",
        json={
            "id": child["id"],
            "name": "Kai",
            "birthday": child["birthday"],
            "interests": ["Art"],
        },
        headers=parent,
    )
    assert replaced.status_code == 200
    after = fetch(client, "/v1/outdoor/activities", parent, childId=child["id"])
    assert matches(after[0], ["art"])
    assert before != after


# --- daily picks -----------------------------------------------------------------------

DAILY = [
    ("/v1/chores/daily", {}, DAILY_CHORES.size, DAILY_CHORES.from_interests),
    (
        "/v1/outdoor/activities",
        {"isDaily": "true"},
        DAILY_OUTDOOR_ACTIVITIES.size,
        DAILY_OUTDOOR_ACTIVITIES.from_interests,
    ),
]
DAILY_IDS = ["chores", "outdoor"]


def ids(items: list[Item]) -> set[str]:
    return {item["id"] for item in items}


@pytest.mark.parametrize(("path", "extra", "size", "_"), DAILY, ids=DAILY_IDS)
def test_daily_picks_are_stable_all_day_and_change_the_next_day(
    client: TestClient[Litestar],
    parent: Headers,
    path: str,
    extra: dict[str, str],
    size: int,
    _: int,
) -> None:
    # A fixed child id keeps the md5-based pick reproducible from run to run.
    child = create_child(client, parent, age=8, today=TODAY, child_id=f"daily-{path.split('/')[2]}")
    params = {"childId": child["id"], **extra}
    with frozen_today(client, TODAY) as clock:
        morning = fetch(client, path, parent, **params)
        evening = fetch(client, path, parent, **params)
        assert len(morning) == size
        assert evening == morning
        assert all(suits(item, 8) for item in morning)
        clock.day = TODAY + dt.timedelta(days=1)
        tomorrow = fetch(client, path, parent, **params)
        assert len(tomorrow) == size
        assert ids(tomorrow) != ids(morning)
        # Over a fortnight the picks keep rotating through the catalog.
        seen: set[frozenset[str]] = set()
        for offset in range(14):
            clock.day = TODAY + dt.timedelta(days=offset)
            seen.add(frozenset(ids(fetch(client, path, parent, **params))))
        assert len(seen) >= 10
        clock.day = TODAY
        assert fetch(client, path, parent, **params) == morning


@pytest.mark.parametrize(("path", "extra", "size", "_"), DAILY, ids=DAILY_IDS)
def test_daily_picks_are_stable_on_the_real_clock(
    client: TestClient[Litestar],
    parent: Headers,
    path: str,
    extra: dict[str, str],
    size: int,
    _: int,
) -> None:
    child = create_child(client, parent, age=6, today=dt.datetime.now(dt.UTC).date())
    params = {"childId": child["id"], **extra}
    first = fetch(client, path, parent, **params)
    assert len(first) == size
    assert fetch(client, path, parent, **params) == first


@pytest.mark.parametrize(("path", "extra", "size", "from_interests"), DAILY, ids=DAILY_IDS)
def test_daily_picks_put_interests_first_but_leave_room_for_the_rest(
    client: TestClient[Litestar],
    parent: Headers,
    path: str,
    extra: dict[str, str],
    size: int,
    from_interests: int,
) -> None:
    # Many items match these at age 8, more than the places they may take.
    interests = ["Helping", "nature", "games", "sports"]
    child = create_child(client, parent, age=8, today=TODAY, interests=interests)
    with frozen_today(client, TODAY) as clock:
        for offset in range(5):
            clock.day = TODAY + dt.timedelta(days=offset)
            items = fetch(client, path, parent, childId=child["id"], **extra)
            assert len(items) == size
            flags = [matches(item, interests) for item in items]
            assert flags == sorted(flags, reverse=True)
            assert sum(flags) >= from_interests


def test_two_children_get_their_own_daily_picks(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    picks = set()
    for n in range(4):
        child = create_child(client, parent, age=8, today=today, child_id=f"sibling-{n}")
        picks.add(frozenset(ids(fetch(client, "/v1/chores/daily", parent, childId=child["id"]))))
    assert len(picks) > 1


def test_outdoor_activities_list_everything_unless_daily(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=8, today=today)
    default = fetch(client, "/v1/outdoor/activities", parent, childId=child["id"])
    explicit = fetch(client, "/v1/outdoor/activities", parent, childId=child["id"], isDaily="false")
    daily = fetch(client, "/v1/outdoor/activities", parent, childId=child["id"], isDaily="true")
    assert default == explicit
    assert len(default) > len(daily) == DAILY_OUTDOOR_ACTIVITIES.size
    assert ids(daily) <= ids(default)


def test_is_daily_must_be_a_boolean(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=8, today=today)
    response = client.get(
        "/v1/outdoor/activities",
        params={"childId": child["id"], "isDaily": "sometimes"},
        headers=parent,
    )
    assert response.status_code == 400
    assert [item["key"] for item in response.json()["extra"]] == ["isDaily"]


# --- flashcards ------------------------------------------------------------------------


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_flashcards_filter_by_difficulty(
    client: TestClient[Litestar], parent: Headers, today: dt.date, difficulty: str
) -> None:
    child = create_child(client, parent, age=9, today=today)
    every = fetch(client, "/v1/flashcards", parent, childId=child["id"])
    cards = fetch(client, "/v1/flashcards", parent, childId=child["id"], difficulty=difficulty)
    assert cards
    assert all(card["difficulty"] == difficulty for card in cards)
    assert ids(cards) == {card["id"] for card in every if card["difficulty"] == difficulty}


def test_flashcards_filter_by_subject_and_difficulty(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=9, today=today)
    subjects = fetch(client, "/v1/subjects", parent, childId=child["id"])
    assert len(subjects) >= 5
    for subject in subjects:
        cards = fetch(
            client, "/v1/flashcards", parent, childId=child["id"], subjectId=subject["id"]
        )
        assert cards
        assert {card["subject_id"] for card in cards} == {subject["id"]}
        hard = fetch(
            client,
            "/v1/flashcards",
            parent,
            childId=child["id"],
            subjectId=subject["id"],
            difficulty="hard",
        )
        assert hard
        assert {(card["subject_id"], card["difficulty"]) for card in hard} == {
            (subject["id"], "hard")
        }


def test_unknown_subject_is_404_but_an_unsuited_one_is_empty(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=3, today=today)
    unknown = client.get(
        "/v1/flashcards", params={"childId": child["id"], "subjectId": "alchemy"}, headers=parent
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"status_code": 404, "detail": "Subject not found"}
    for malformed in ("\u0000", "x" * 65, "math; DROP TABLE subjects", "%"):
        params = {"childId": child["id"], "subjectId": malformed}
        response = client.get("/v1/flashcards", params=params, headers=parent)
        assert response.status_code == 404, malformed
        assert response.json()["detail"] == "Subject not found"
    # `space` starts at age 4: it exists, it just has nothing for a 3-year-old.
    assert fetch(client, "/v1/flashcards", parent, childId=child["id"], subjectId="space") == []


def test_a_foreign_child_is_404_before_the_subject_is_looked_at(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, parent: Headers
) -> None:
    child = create_child(client, new_parent(issuer), age=8, today=dt.date.today())
    response = client.get(
        "/v1/flashcards", params={"childId": child["id"], "subjectId": "alchemy"}, headers=parent
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "Child not found"


def test_unknown_difficulty_is_400_naming_it(
    client: TestClient[Litestar], parent: Headers, today: dt.date
) -> None:
    child = create_child(client, parent, age=8, today=today)
    response = client.get(
        "/v1/flashcards", params={"childId": child["id"], "difficulty": "extreme"}, headers=parent
    )
    assert response.status_code == 400
    assert [item["key"] for item in response.json()["extra"]] == ["difficulty"]


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/affirmations",
        "/v1/subjects",
        "/v1/flashcards?subjectId=math&difficulty=easy",
        "/v1/chores/daily",
        "/v1/outdoor/activities?isDaily=true",
    ],
)
def test_a_content_request_is_one_statement_with_the_ownership_check(
    client: TestClient[Litestar], parent: Headers, today: dt.date, path: str
) -> None:
    child = create_child(client, parent, age=7, today=today)
    separator = "&" if "?" in path else "?"
    for child_id in (child["id"], "somebody-elses"):
        with statements_sent(client) as statements:
            response = client.get(f"{path}{separator}childId={child_id}", headers=parent)
        assert response.status_code in (200, 404)
        assert len(statements) == 1, statements
        assert "owner_sub" in statements[0]


def test_listing_children_is_one_statement(client: TestClient[Litestar], parent: Headers) -> None:
    with statements_sent(client) as statements:
        assert client.get("/v1/children", headers=parent).status_code == 200
    assert len(statements) == 1, statements


# --- documentation ---------------------------------------------------------------------


def test_openapi_names_every_item_type_and_camel_case_parameters(
    client: TestClient[Litestar],
) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    item_types = {
        "/v1/affirmations": "Affirmation",
        "/v1/subjects": "Subject",
        "/v1/flashcards": "Flashcard",
        "/v1/chores/daily": "Chore",
        "/v1/outdoor/activities": "OutdoorActivity",
    }
    for path, type_name in item_types.items():
        operation = document["paths"][path]["get"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"type": "array", "items": {"$ref": f"#/components/schemas/{type_name}"}}
        assert {"400", "404"} <= set(operation["responses"])
        assert set(schemas[type_name]["required"]) == ENDPOINT_FIELDS[path]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["childId"]["required"] is True
        assert parameters["childId"]["in"] == "query"
    flashcard_params = {
        p["name"]: p for p in document["paths"]["/v1/flashcards"]["get"]["parameters"]
    }
    assert set(flashcard_params) == {"childId", "subjectId", "difficulty"}
    assert "easy" in json.dumps(flashcard_params["difficulty"]["schema"])
    outdoor_params = {
        p["name"]: p for p in document["paths"]["/v1/outdoor/activities"]["get"]["parameters"]
    }
    assert outdoor_params["isDaily"]["required"] is False


# --- the catalog load ------------------------------------------------------------------


def catalog_file(table: str, directory: Path = CATALOG_DIR) -> list[Item]:
    items: list[Item] = json.loads((directory / f"{table}.json").read_text(encoding="utf-8"))
    return items


async def run_loader(database_url: str, catalog_dir: Path = CATALOG_DIR) -> list[TableLoad]:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(load_catalog, catalog_dir)
    finally:
        await engine.dispose()


async def table_counts(db: asyncpg.Connection) -> dict[str, int]:
    return {
        table: await db.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        for table in CATALOG_TABLES
    }


async def test_the_migrated_database_holds_the_whole_catalog(db: asyncpg.Connection) -> None:
    for table in CATALOG_TABLES:
        rows = {row["id"]: row for row in await catalog_rows(db, table)}
        items = catalog_file(table)
        assert set(rows) == {item["id"] for item in items}, table
        for item in items:
            assert {key: rows[item["id"]][key] for key in item} == item


async def test_loading_the_same_files_again_changes_nothing(
    database_url: str, db: asyncpg.Connection
) -> None:
    before = await table_counts(db)
    for _ in range(2):
        loads = await run_loader(database_url)
        assert [(load.written, load.deleted) for load in loads] == [(0, 0)] * len(CATALOG_TABLES)
        assert {load.table: load.items for load in loads} == before
    assert await table_counts(db) == before


@pytest.fixture
async def scratch_database() -> AsyncIterator[str]:
    """An empty database of our own, for tests that change the catalog tables."""
    async with empty_database("test_catalog") as url:
        yield url


async def test_catalog_migration_upgrades_reloads_and_downgrades(
    scratch_database: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(alembic, scratch_database, "upgrade", "0002")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        original = {table: len(catalog_file(table)) for table in CATALOG_TABLES}
        assert await table_counts(db) == original

        # A later release retires one item, rewords another and adds a new one.
        edited = tmp_path / "catalog"
        shutil.copytree(CATALOG_DIR, edited)
        affirmations = catalog_file("affirmations", edited)
        retired = affirmations.pop(0)
        affirmations[0]["text"] = "I can learn something new every day."
        affirmations.append(
            {
                "id": "aff-999",
                "text": "I am ready.",
                "min_age": 3,
                "max_age": 9,
                "tags": ["kindness"],
            }
        )
        (edited / "affirmations.json").write_text(json.dumps(affirmations), encoding="utf-8")
        loads = {load.table: load for load in await run_loader(scratch_database, edited)}
        assert (loads["affirmations"].written, loads["affirmations"].deleted) == (2, 1)
        assert all(
            (load.written, load.deleted) == (0, 0)
            for table, load in loads.items()
            if table != "affirmations"
        )
        assert (
            await db.fetchval("SELECT count(*) FROM affirmations WHERE id = $1", retired["id"]) == 0
        )
        assert (
            await db.fetchval("SELECT text FROM affirmations WHERE id = 'aff-999'") == "I am ready."
        )

        # Loading the shipped files again restores them exactly.
        loads = {load.table: load for load in await run_loader(scratch_database)}
        assert (loads["affirmations"].written, loads["affirmations"].deleted) == (2, 1)
        assert await table_counts(db) == original
    finally:
        await db.close()

    await asyncio.to_thread(alembic, scratch_database, "downgrade", "0001")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        assert await db.fetchval("SELECT to_regclass('affirmations')") is None
        assert await db.fetchval("SELECT to_regclass('children')") == "children"
    finally:
        await db.close()
    await asyncio.to_thread(alembic, scratch_database, "upgrade", "0002")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        assert await table_counts(db) == original
    finally:
        await db.close()
