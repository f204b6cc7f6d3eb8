"""A database of a test's own, migrated like production and dropped afterwards, for tests
whose data must not meet the rest of the session's (sample data, browser journeys)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import devstack

from tests.support.processes import REPO_ROOT


async def _admin(sql: str) -> None:
    dsn = devstack.asyncpg_dsn(os.environ["TEST_BASE_DATABASE_URL"])
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def private_database(prefix: str = "own") -> Iterator[str]:
    """Yields the DATABASE_URL of a new database with every migration applied."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = devstack.with_database(os.environ["TEST_BASE_DATABASE_URL"], name)
    try:
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": url},
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
