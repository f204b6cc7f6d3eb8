"""Advanced-Alchemy's database configuration, served to Litestar.

The engine and session maker are Advanced-Alchemy's (`advanced_alchemy.config`); this
plugin gives them to the app: the engine is made at startup and disposed at shutdown, a
handler may ask for `db_engine`, or for `db_session`, a session committed when the handler
returns and rolled back when it raises (as our 4xx/5xx are raised), closed either way,
all before the response is sent, so a failed commit becomes the error response.
`litestar database ...` is Advanced-Alchemy's migration CLI on the same configuration.

Why not Advanced-Alchemy's own Litestar plugin: importing any part of its Litestar
extension imports Alembic and the Litestar CLI (Rich, rich-click) too, about 12 MiB of
every API process (a tenth of it) for commands a server never runs; here they are loaded
only when the CLI starts. Its plugin also commits from a `before_send` hook that Litestar
then wraps around every response, including the many (health, /v1/me, the precompiled
reads) that never open a session.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

if TYPE_CHECKING:
    from advanced_alchemy.config import SQLAlchemyAsyncConfig
    from click import Context, Group

__all__ = ["DatabasePlugin", "app_database"]

ENGINE_DEPENDENCY = "db_engine"
SESSION_DEPENDENCY = "db_session"
# Where the app keeps this plugin: read on every request that builds a service, so a
# state lookup rather than a search of the app's plugins.
_STATE_KEY = "database"


class DatabasePlugin(InitPluginProtocol, CLIPluginProtocol):
    """One database for the app, configured by an Advanced-Alchemy `SQLAlchemyAsyncConfig`."""

    def __init__(self, config: SQLAlchemyAsyncConfig) -> None:
        self.config = config

    @property
    def engine(self) -> AsyncEngine:
        """The app's engine (made on first use; the pool connects lazily)."""
        return self.config.get_engine()

    @property
    def session_maker(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the app's engine, with Advanced-Alchemy's session listeners."""
        return cast("async_sessionmaker[AsyncSession]", self.config.create_session_maker())

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state[_STATE_KEY] = self
        app_config.lifespan.append(self._lifespan)
        app_config.dependencies[ENGINE_DEPENDENCY] = Provide(
            self._provide_engine, sync_to_thread=False
        )
        app_config.dependencies[SESSION_DEPENDENCY] = Provide(self._provide_session)
        app_config.signature_namespace.update(AsyncEngine=AsyncEngine, AsyncSession=AsyncSession)
        return app_config

    def on_cli_init(self, cli: Group) -> None:
        # Imported here: Alembic and Advanced-Alchemy's CLI load only when the CLI runs.
        from advanced_alchemy.cli import add_migration_commands
        from click import pass_context

        config = self.config

        @cli.group(name="database")
        @pass_context
        def database(context: Context) -> None:
            """Database migrations (Advanced-Alchemy over Alembic, db/migrations)."""
            context.obj = {"app": context.obj, "configs": [config]}

        add_migration_commands(database)

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        engine = self.engine
        self.config.create_session_maker()  # at startup, not in the first request
        try:
            yield
        finally:
            await engine.dispose()

    def _provide_engine(self) -> AsyncEngine:
        return self.engine

    async def _provide_session(self) -> AsyncGenerator[AsyncSession, None]:
        session = self.session_maker()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()


def app_database(app: Litestar) -> DatabasePlugin:
    """The app's database plugin (its engine and session maker)."""
    plugin: DatabasePlugin = app.state[_STATE_KEY]
    return plugin
