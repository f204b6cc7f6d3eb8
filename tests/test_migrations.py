"""Migrations against the models, and 0005 (child ids per parent) on existing rows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import devstack
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import load_model_metadata
from tests.support.databases import alembic, empty_database
from tests.support.processes import REPO_ROOT


@pytest.fixture
async def scratch_database() -> AsyncIterator[str]:
    async with empty_database("test_migrations") as url:
        yield url


async def test_the_migrations_build_what_the_models_declare(database_url: str) -> None:
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
    assert differences == []


async def test_per_parent_child_ids_keep_existing_rows(scratch_database: str) -> None:
    await asyncio.to_thread(alembic, scratch_database, "upgrade", "0004")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        await db.execute(
            "INSERT INTO children (id, owner_sub, name, birthday, interests)"
            " VALUES ('mia-2018', 'parent-a', 'Mia', '2018-03-01', '{cats}'),"
            " ('ben-2019', 'parent-b', 'Ben', '2019-05-02', '{}')"
        )
        before = await db.fetch("SELECT * FROM children ORDER BY id")
    finally:
        await db.close()

    await asyncio.to_thread(alembic, scratch_database, "upgrade", "head")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        assert await db.fetch("SELECT * FROM children ORDER BY id") == before
        # Another parent may now use the same id; the first one's child is untouched.
        await db.execute(
            "INSERT INTO children (id, owner_sub, name, birthday)"
            " VALUES ('mia-2018', 'parent-b', 'Other Mia', '2017-01-01')"
        )
        assert (
            await db.fetchval(
                "SELECT name FROM children WHERE owner_sub = 'parent-a' AND id = 'mia-2018'"
            )
            == "Mia"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await db.execute(
                "INSERT INTO children (id, owner_sub, name, birthday)"
                " VALUES ('mia-2018', 'parent-a', 'Twice', '2017-01-01')"
            )
        await db.execute("DELETE FROM children WHERE owner_sub = 'parent-b' AND id = 'mia-2018'")
    finally:
        await db.close()

    # Down again while ids are still globally unique: the rows stay.
    await asyncio.to_thread(alembic, scratch_database, "downgrade", "0004")
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        assert await db.fetch("SELECT * FROM children ORDER BY id") == before
    finally:
        await db.close()


async def test_advanced_alchemys_database_cli_migrates_too(scratch_database: str) -> None:
    """`litestar database upgrade` (Advanced-Alchemy's CLI through the app's plugin) runs
    the same migrations, with the same version table, as `alembic upgrade head`."""
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "litestar",
            "--app",
            "app.main:app",
            "database",
            "upgrade",
            "--no-prompt",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": scratch_database},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    db = await asyncpg.connect(devstack.asyncpg_dsn(scratch_database))
    try:
        heads = ScriptDirectory(str(REPO_ROOT / "db" / "migrations")).get_heads()
        assert [await db.fetchval("SELECT version_num FROM alembic_version")] == heads
        key = await db.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_children'"
        )
        assert key == "PRIMARY KEY (owner_sub, id)"
    finally:
        await db.close()
