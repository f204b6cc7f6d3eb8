"""Direct access to the asyncpg driver connection behind the SQLAlchemy pool.

Only precompiled reads (app/db/precompiled.py) uses it: the pool (and its settings) stays the one
Advanced-Alchemy configured, but a statement goes out as one round trip in autocommit
instead of BEGIN / statement / COMMIT, and the connection returns to the pool as soon
as the statement is done. Anything needing a transaction belongs in a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.db.plugin import app_database

__all__ = ["app_engine", "driver_connection"]

# Server errors after which the session is gone (lost link, server shutting down); any
# other PostgresError is an answer to the statement and leaves the connection usable.
_FATAL_SERVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def app_engine(app: Litestar) -> AsyncEngine:
    """The app's engine (tests use it to watch the pool)."""
    return app_database(app).engine


def _connection_is_spoiled(driver: Any, error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresError) and not isinstance(error, _FATAL_SERVER_ERRORS):
        return bool(driver.is_closed())
    # Lost links, protocol errors and cancelled statements (a client that went away):
    # the connection's state is unknown.
    return True


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """Yield a pooled connection's `asyncpg.Connection` (not inside a transaction)."""
    # The pool's own connection, without a SQLAlchemy `Connection` around it: a checkout
    # and return then cost about 25 µs instead of 55 µs (a tenth of a hot read's CPU).
    pooled = await engine.raw_connection()
    driver = pooled.driver_connection
    try:
        yield driver
    except BaseException as error:
        if not _connection_is_spoiled(driver, error):
            raise
        # SQLAlchemy never sees errors raised here, so it cannot know the connection
        # died: tell the pool not to hand it out again. Aborted first: SQLAlchemy's
        # invalidation tries a graceful close that waits up to 2 s for a server that,
        # frozen, never answers (a request then took 5.0 s to answer 503, not 3 s).
        if driver is not None:
            driver.terminate()  # asyncpg: close the socket now, send nothing
        with contextlib.suppress(Exception):
            await greenlet_spawn(pooled.invalidate)
        if isinstance(error, Exception) and not isinstance(error, OSError):
            # One exception type for "the link broke", whatever asyncpg noticed first
            # (app/errors.py answers it with 503, not 500).
            raise ConnectionResetError("lost the database connection") from error
        raise
    finally:
        # Returned inside SQLAlchemy's greenlet, where the pool may await the driver (it
        # closes an overflow connection), and shielded as SQLAlchemy's own `async with
        # engine.connect()` is, so a request cancelled meanwhile cannot leak it.
        await asyncio.shield(greenlet_spawn(pooled.close))
