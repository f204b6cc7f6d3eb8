"""Alembic environment: async engine on DATABASE_URL, metadata from the app's models.

DATABASE_URL comes from the environment or a `.env` file, read by app/config.py like the
API and the worker do, so `alembic upgrade head` works wherever they do.

`alembic revision --autogenerate` writes a migration that imports as it stands:
Advanced-Alchemy's column types render by their public names with an import (below), and
alembic.ini's post-write hooks run ruff over the file. Advanced-Alchemy's own migration
template does the types another way (it assigns every one of its types onto the
`sqlalchemy` module inside each migration and renders `sa.GUID`); a render hook keeps
migrations plain imports.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Literal

import advanced_alchemy.types
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import TypeEngine

from app.config import ConfigError, load_database_settings
from app.db import VERSION_TABLE
from db.models import load_model_metadata

target_metadata = load_model_metadata()


def _database_url() -> str:
    try:
        return load_database_settings().database_url
    except ConfigError as error:
        sys.exit(f"configuration error: {error}")


# Advanced-Alchemy's ready-made type instances (`JsonB`, a JSON type with per-dialect
# variants), rendered by name rather than as the chain of variants they expand to.
_NAMED_TYPES = {
    id(value): name
    for name in advanced_alchemy.types.__all__
    if isinstance(value := getattr(advanced_alchemy.types, name), TypeEngine)
}


def render_advanced_alchemy_type(
    kind: str, obj: Any, autogen_context: AutogenContext
) -> str | Literal[False]:
    """`GUID(length=16)` with `from advanced_alchemy.types import GUID`, instead of
    Alembic's default `advanced_alchemy.types.guid.GUID(length=16)`, which has no import."""
    if kind != "type":
        return False
    if (name := _NAMED_TYPES.get(id(obj))) is not None:
        autogen_context.imports.add(f"from advanced_alchemy.types import {name}")
        return name
    cls = type(obj)
    if not cls.__module__.startswith("advanced_alchemy."):
        return False  # SQLAlchemy's own types: Alembic renders them
    exported = getattr(advanced_alchemy.types, cls.__name__, None) is cls
    module = "advanced_alchemy.types" if exported else cls.__module__
    autogen_context.imports.add(f"from {module} import {cls.__name__}")
    return repr(obj)


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        render_as_batch=False,
        literal_binds=connection is None,
        render_item=render_advanced_alchemy_type,
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
