"""The asyncpg driver path (app/db/driver.py) on real PostgreSQL: a connection that dies
while checked out is dropped from the pool instead of being handed to the next request."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.driver import driver_connection


async def test_a_dead_connection_is_not_returned_to_the_pool(
    database_url: str, db: asyncpg.Connection
) -> None:
    # No pre-ping and one pooled connection: only invalidation can save the next caller.
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        async with driver_connection(engine) as connection:
            first_pid = connection.get_server_pid()

        async def query_after_the_server_drops_us() -> None:
            async with driver_connection(engine) as connection:
                assert connection.get_server_pid() == first_pid  # the pooled one
                await db.execute("SELECT pg_terminate_backend($1)", first_pid)
                await connection.fetchval("SELECT 1")

        # Whatever asyncpg noticed first, the caller sees one "link broke" error (503).
        with pytest.raises(ConnectionResetError):
            await query_after_the_server_drops_us()
        async with driver_connection(engine) as connection:
            assert connection.get_server_pid() != first_pid
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()


async def test_a_server_side_error_keeps_the_connection(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        async with driver_connection(engine) as connection:
            first_pid = connection.get_server_pid()

        async def divide_by_zero() -> None:
            async with driver_connection(engine) as connection:
                await connection.fetchval("SELECT 1 / 0")

        with pytest.raises(asyncpg.DivisionByZeroError):
            await divide_by_zero()
        async with driver_connection(engine) as connection:
            assert connection.get_server_pid() == first_pid
    finally:
        await engine.dispose()


async def test_an_overflow_connection_is_closed_on_return(database_url: str) -> None:
    """Returning a connection the pool has no room for closes it, which awaits the driver:
    it must happen where SQLAlchemy can await (a failure here would leak connections)."""
    engine = create_async_engine(database_url, pool_size=1, max_overflow=1, pool_pre_ping=False)
    try:
        async with driver_connection(engine) as first, driver_connection(engine) as second:
            assert first.get_server_pid() != second.get_server_pid()
        # The one returned second found the pool full.
        assert [first.is_closed(), second.is_closed()] == [True, False]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with driver_connection(engine) as connection:
            assert await connection.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()
