"""Database wiring: Advanced-Alchemy's Litestar plugin over asyncpg.

Each request gets its own session, committed when the response is 2xx/3xx and rolled
back otherwise. The schema comes only from Alembic (`db/migrations`), never from
`create_all`.
"""

from __future__ import annotations

import importlib

from advanced_alchemy.base import orm_registry
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from sqlalchemy import MetaData

from app.config import Settings

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
            pool_pre_ping=True,
            connect_args={
                "timeout": settings.db_connect_timeout_s,
                "command_timeout": 30,
                # JIT planning costs more than it saves on the small queries an API runs.
                "server_settings": {"application_name": "litestar-spa-api", "jit": "off"},
            },
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        alembic_config=AlembicAsyncConfig(
            script_location=MIGRATIONS_PATH, version_table_name=VERSION_TABLE
        ),
        create_all=False,
        # Our handlers in app/errors.py map repository errors without leaking SQL text.
        set_default_exception_handler=False,
    )


def build_sqlalchemy_plugin(settings: Settings) -> SQLAlchemyPlugin:
    return SQLAlchemyPlugin(config=build_sqlalchemy_config(settings))
