"""The one way a handler reaches a domain service: `provide_service`, a Litestar dependency.

Each domain's service is an Advanced-Alchemy service (`DomainService`, or a service over
a `QueryRepository`) built on a session and the caller's row scope. Outside a request
(jobs, the CLI) the same class is built the same way from `session_maker(...)` and a
scope of plain values; nothing here is tied to the web layer.

The provider depends on `caller` alone (a chain, not sibling dependencies that Litestar
would resolve in a task group) and makes the session itself from the app's session
maker. A session costs nothing until it is used: hot reads never touch it (they take
the fast path on its engine), so for them there is no BEGIN, COMMIT or pool checkout;
writes are committed when the handler returns and rolled back when it raises.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar, cast

from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin
from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["provide_service", "session_maker"]

ServiceT = TypeVar("ServiceT")

# Where this module remembers, per app, the state key of Advanced-Alchemy's session maker.
_MAKER_KEY = "service_session_maker_key"


def session_maker(app: Litestar) -> Callable[[], AsyncSession]:
    """The app's session maker (the one Advanced-Alchemy's plugin configured)."""
    key = app.state.get(_MAKER_KEY)
    if key is None:
        config = app.plugins.get(SQLAlchemyInitPlugin).config[0]
        key = app.state[_MAKER_KEY] = config.session_maker_app_state_key
    return cast("Callable[[], AsyncSession]", app.state[key])


def provide_service(
    build: Callable[[AsyncSession, Any], ServiceT],
) -> Provide:
    """A dependency giving `build(session, caller)`: the domain passes the caller's plain
    values (subject, tenant) on to its service's scope."""

    async def provide(
        caller: NamedDependency[Any], request: Request[Any, Any, Any]
    ) -> AsyncGenerator[Any, None]:
        session = session_maker(request.app)()
        try:
            yield build(session, caller)
            if session.in_transaction():
                await session.commit()
        except BaseException:
            if session.in_transaction():
                await session.rollback()
            raise
        finally:
            # Nothing to give back when no statement ran (hot reads).
            if session.in_transaction() or session.identity_map:
                await session.close()

    return Provide(provide)
