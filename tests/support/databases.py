"""Databases of a test's own, dropped afterwards: empty (for migration tests that walk
Alembic's revisions themselves) or migrated like production (sample data, browser
journeys), for tests whose data must not meet the rest of the session's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import devstack
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support.processes import REPO_ROOT


async def _admin(sql: str) -> None:
    dsn = devstack.asyncpg_dsn(os.environ["TEST_BASE_DATABASE_URL"])
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def alembic(database_url: str, *args: str) -> None:
    """Run `alembic ARGS...` against `database_url`, as the documented command does."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _new_name(prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return name, devstack.with_database(os.environ["TEST_BASE_DATABASE_URL"], name)


@contextlib.asynccontextmanager
async def empty_database(prefix: str) -> AsyncIterator[str]:
    """Yields the DATABASE_URL of a new, empty database (no migration applied)."""
    name, url = _new_name(prefix)
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def private_database(prefix: str = "own") -> Iterator[str]:
    """Yields the DATABASE_URL of a new database with every migration applied."""
    name, url = _new_name(prefix)
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        alembic(url, "upgrade", "head")
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def throwaway_tables(metadata: MetaData, database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `database_url` with `metadata`'s tables (a test's own models, on a
    registry Alembic never sees) created for the block and dropped after it."""
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()
