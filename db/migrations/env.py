"""Alembic environment: async engine on DATABASE_URL, metadata from the app's models.

DATABASE_URL comes from the environment or a `.env` file, read by app/config.py like the
API and the worker do, so `alembic upgrade head` works wherever they do.
"""

from __future__ import annotations

import asyncio
import sys

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import ConfigError, load_database_settings
from app.db import VERSION_TABLE
from db.models import load_model_metadata

target_metadata = load_model_metadata()


def _database_url() -> str:
    try:
        return load_database_settings().database_url
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        render_as_batch=False,
        literal_binds=connection is None,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
