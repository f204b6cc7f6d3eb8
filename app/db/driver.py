"""Direct access to the asyncpg driver connection behind the SQLAlchemy pool.

Hot read paths and single-statement writes use this instead of an ORM session: the pool
(and its settings) stays the one Advanced-Alchemy configured, but a statement goes out
as one round trip in autocommit instead of BEGIN / statement / COMMIT, rows come back as
tuples that are turned straight into msgspec Structs, and the connection returns to the
pool as soon as the statement is done. Use it only for work that is a single statement;
anything needing a transaction across statements belongs in a session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["driver_connection"]


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """Yield the pooled connection's `asyncpg.Connection` (not inside a transaction)."""
    async with engine.connect() as connection:
        fairy = await connection.get_raw_connection()
        yield fairy.driver_connection
