"""Request sessions: committed when the handler returns, rolled back when it raises."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from litestar import Litestar, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import load_settings
from app.main import create_app


async def _write(session: AsyncSession, key: str) -> None:
    await session.execute(text("INSERT INTO session_probe (key) VALUES (:key)"), {"key": key})


@post("/v1/probe/ok/{key:str}", status_code=201)
async def write_and_return(key: FromPath[str], db_session: NamedDependency[AsyncSession]) -> str:
    await _write(db_session, key)
    return key


@post("/v1/probe/refused/{key:str}")
async def write_then_refuse(key: FromPath[str], db_session: NamedDependency[AsyncSession]) -> str:
    await _write(db_session, key)
    raise HTTPException(status_code=409, detail="refused after writing")


@post("/v1/probe/crash/{key:str}")
async def write_then_crash(key: FromPath[str], db_session: NamedDependency[AsyncSession]) -> str:
    await _write(db_session, key)
    raise RuntimeError("crashed after writing")


@pytest.fixture
async def probe_table(db: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    await db.execute("CREATE TABLE IF NOT EXISTS session_probe (key text PRIMARY KEY)")
    try:
        yield db
    finally:
        await db.execute("DROP TABLE IF EXISTS session_probe")


@pytest.fixture
def probe_client() -> TestClient[Litestar]:
    app = create_app(load_settings())
    for handler in (write_and_return, write_then_refuse, write_then_crash):
        app.register(handler)
    return TestClient(app)


@pytest.mark.parametrize(
    ("route", "status", "kept"),
    [("ok", 201, True), ("refused", 409, False), ("crash", 500, False)],
)
async def test_a_request_session_commits_only_when_the_handler_returns(
    probe_table: asyncpg.Connection,
    probe_client: TestClient[Litestar],
    auth: Callable[[str], dict[str, str]],
    route: str,
    status: int,
    kept: bool,
) -> None:
    key = uuid.uuid4().hex
    with probe_client as client:
        response = client.post(f"/v1/probe/{route}/{key}", headers=auth("alice"))
    assert response.status_code == status
    found = await probe_table.fetchval("SELECT count(*) FROM session_probe WHERE key = $1", key)
    assert found == (1 if kept else 0)


async def test_sessions_go_back_to_the_pool(
    probe_table: asyncpg.Connection,
    probe_client: TestClient[Litestar],
    auth: Callable[[str], dict[str, str]],
) -> None:
    # More requests than the pool has connections, each ending every way a request can:
    # a session left open would exhaust the pool and time the later ones out.
    pool_size = load_settings().db_pool_size
    with probe_client as client:
        for number in range(pool_size * 2):
            route = ("ok", "refused", "crash")[number % 3]
            client.post(f"/v1/probe/{route}/{uuid.uuid4().hex}", headers=auth("bob"))
        last = client.post(f"/v1/probe/ok/{uuid.uuid4().hex}", headers=auth("bob"))
        assert last.status_code == 201
    kept = await probe_table.fetchval("SELECT count(*) FROM session_probe")
    assert kept == len(range(0, pool_size * 2, 3)) + 1  # the "ok" ones
