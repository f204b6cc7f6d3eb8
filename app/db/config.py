"""Database settings: Advanced-Alchemy's configuration of the engine over asyncpg.

The app gets it through app/db/plugin.py. The schema comes only from Alembic
(`db/migrations`), never from `create_all`.
"""

from __future__ import annotations

from typing import Any, Final

from advanced_alchemy.config import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)

from app.config import Settings, WorkerSettings
from app.db.plugin import DatabasePlugin

__all__ = [
    "MIGRATIONS_PATH",
    "VERSION_TABLE",
    "build_sqlalchemy_config",
    "build_sqlalchemy_plugin",
    "driver_connect_args",
    "statements_outlive_transactions",
]

MIGRATIONS_PATH = "db/migrations"
# Alembic's own default name, so `alembic upgrade head` and `litestar database upgrade`
# share one version table.
VERSION_TABLE = "alembic_version"

# Startup parameters PgBouncer hands on to PostgreSQL; it refuses a connection that sends
# any other ("unsupported startup parameter") unless told to ignore it, and then the
# setting would silently not apply. Set others on the role or database instead
# (`ALTER DATABASE app SET jit = off`).
_POOLER_STARTUP_PARAMETERS: Final = frozenset(
    {"application_name", "client_encoding", "DateStyle", "TimeZone", "standard_conforming_strings"}
)


def _unnamed_statement() -> str:
    return ""


def statements_outlive_transactions(settings: WorkerSettings) -> bool:
    """Whether a prepared statement may be kept and reused across transactions.

    False behind a transaction pooler: each transaction may run on another server
    connection, where a statement prepared earlier does not exist.
    """
    return settings.database_pooler != "transaction"


def driver_connect_args(
    settings: WorkerSettings, *, application_name: str, command_timeout: float
) -> dict[str, Any]:
    """asyncpg's connection arguments (and SQLAlchemy's for its asyncpg dialect).

    Behind PgBouncer in transaction pooling mode (`DATABASE_POOLER=transaction`) each
    transaction, or each statement in autocommit, may run on another server connection,
    so no named prepared statement may outlive it:

    - asyncpg's statement cache is off (`statement_cache_size=0`): it then uses the
      unnamed statement and parses it again in the same round trip that executes it;
    - SQLAlchemy's own prepared-statement cache is off, and it names its statements ""
      (the unnamed one) instead of asyncpg's per-connection numbers, which would collide
      on a server connection shared by several clients and pile up there;
    - only startup parameters PgBouncer passes on are sent.

    Anything that runs statements on the driver connection must keep to the same: use
    `fetch`/`fetchrow`/`execute` with arguments, never keep a `PreparedStatement` (or a
    name) beyond one transaction, and set no session state outside a transaction.
    """
    server_settings = {
        "application_name": application_name,
        # JIT planning costs more than it saves on the small queries an API runs.
        "jit": "off",
    }
    arguments: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        "command_timeout": command_timeout,
        "server_settings": server_settings,
    }
    if not statements_outlive_transactions(settings):
        arguments["server_settings"] = {
            name: value
            for name, value in server_settings.items()
            if name in _POOLER_STARTUP_PARAMETERS
        }
        arguments["statement_cache_size"] = 0
        arguments["prepared_statement_cache_size"] = 0
        arguments["prepared_statement_name_func"] = _unnamed_statement
    return arguments


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
            connect_args=driver_connect_args(
                settings,
                application_name="litestar-spa-api",
                # Client-side, so it also holds when the server is frozen (a server-side
                # statement_timeout needs a server that runs).
                command_timeout=settings.db_statement_timeout_s,
            ),
        ),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            script_location=MIGRATIONS_PATH, version_table_name=VERSION_TABLE
        ),
        create_all=False,
    )


def build_sqlalchemy_plugin(settings: Settings) -> DatabasePlugin:
    return DatabasePlugin(build_sqlalchemy_config(settings))
