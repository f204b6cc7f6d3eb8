"""Database wiring: Advanced-Alchemy's Litestar plugin over asyncpg.

A request that asks for `db_session` gets its own session, committed when its handler
returns and rolled back when it raises (app/db/sessions.py). The schema comes only from
Alembic (`db/migrations`), never from `create_all`.
"""

from __future__ import annotations

import importlib

from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import MetaData

from app.config import Settings
from app.db.sessions import DatabasePlugin

__all__ = [
    "MIGRATIONS_PATH",
    "VERSION_TABLE",
    "build_sqlalchemy_config",
    "build_sqlalchemy_plugin",
    "load_model_metadata",
]

MIGRATIONS_PATH = "db/migrations"
# Alembic's own default name, so `alembic upgrade head` and `litestar database upgrade`
# share one version table.
VERSION_TABLE = "alembic_version"

# Every module that declares tables; Alembic imports them to compare against the database.
MODEL_MODULES: tuple[str, ...] = (
    "app.children.models",
    "app.content.models",
    "app.projects.models",
    "app.jobs.models",
)


def load_model_metadata() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return orm_registry.metadata


def build_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    return SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=EngineConfig(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            # No pre-ping: with asyncpg it costs three extra round trips per checkout. A
            # connection found dead when used is invalidated (the pool then refreshes), and
            # recycling bounds how long an idle one can have been cut by a firewall.
            pool_pre_ping=False,
            pool_recycle=1800,
            connect_args={
                "timeout": settings.db_connect_timeout_s,
                # Client-side, so it also holds when the server is frozen (a server-side
                # statement_timeout needs a server that runs).
                "command_timeout": settings.db_statement_timeout_s,
                # JIT planning costs more than it saves on the small queries an API runs.
                "server_settings": {"application_name": "litestar-spa-api", "jit": "off"},
            },
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            script_location=MIGRATIONS_PATH, version_table_name=VERSION_TABLE
        ),
        create_all=False,
        # Our handlers in app/errors.py map repository errors without leaking SQL text.
        set_default_exception_handler=False,
    )


def build_sqlalchemy_plugin(settings: Settings) -> DatabasePlugin:
    return DatabasePlugin(build_sqlalchemy_config(settings))
