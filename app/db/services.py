"""The one way a handler reaches a domain service: `provide_service`, a Litestar dependency.

Each domain's service is an Advanced-Alchemy service (`DomainService`, or a service over
a `QueryRepository`) built on a session and the caller's row scope. Outside a request
(jobs, the CLI) the same class is built the same way from `session_maker(...)` and a
scope of plain values; nothing here is tied to the web layer.

The provider depends on `caller` alone (a chain, not sibling dependencies that Litestar
would resolve in a task group). Its session is a `DeferredSession`: it answers `bind`
and `info` itself and makes the real `AsyncSession` from the app's session maker only
when a statement needs it. Hot reads never do (they are precompiled reads on the engine),
so for them there is no session object, BEGIN, COMMIT or pool checkout: measured with
`scripts/bench --profile children`, building a real session per request was about a
tenth of the request's CPU. Writes are committed when the handler returns and rolled
back when it raises.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar, cast

from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.plugin import app_database

__all__ = ["DeferredSession", "ReadOnlyServiceError", "provide_service", "session_maker"]

ServiceT = TypeVar("ServiceT")


def session_maker(app: Litestar) -> async_sessionmaker[AsyncSession]:
    """The app's session maker (the one Advanced-Alchemy's configuration made)."""
    return app_database(app).session_maker


class DeferredSession:
    """Stands in for an `AsyncSession` until something other than `bind` or `info` is
    asked of it; then makes the session (with the `info` gathered so far) and forwards
    every attribute to it."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], *, read_only: bool = False) -> None:
        self._maker = maker
        self._read_only = read_only
        self._session: AsyncSession | None = None
        self._info: dict[Any, Any] = {}
        self.bind = maker.kw["bind"]

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def info(self) -> dict[Any, Any]:
        return self._info if self._session is None else self._session.info

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            if self._read_only:
                # A read-only handler's service has nobody to commit or close a session.
                raise ReadOnlyServiceError(
                    f"this service was provided for reads only (asked for {name!r})"
                )
            self._session = self._maker(info=self._info)
        return getattr(self._session, name)


class ReadOnlyServiceError(RuntimeError):
    """A service provided with `read_only=True` tried to use its session."""


def provide_service(
    build: Callable[[AsyncSession, Any], ServiceT], *, read_only: bool = False
) -> Provide:
    """A dependency giving `build(session, caller)`: the domain passes the caller's plain
    values (subject, tenant) on to its service's scope.

    `read_only=True` is the cheaper route for handlers that only make precompiled reads (the
    hot GETs): a plain function instead of a generator, so Litestar keeps no cleanup
    for it (about 20 µs of a request's CPU in `scripts/bench --profile children`), and
    a session that refuses to start, so nothing can be left uncommitted or open.
    """
    if read_only:

        def provide_reads(caller: NamedDependency[Any], request: Request[Any, Any, Any]) -> Any:
            deferred = DeferredSession(session_maker(request.app), read_only=True)
            return build(cast("AsyncSession", deferred), caller)

        return Provide(provide_reads, sync_to_thread=False)

    async def provide(
        caller: NamedDependency[Any], request: Request[Any, Any, Any]
    ) -> AsyncGenerator[Any, None]:
        deferred = DeferredSession(session_maker(request.app))
        session = cast("AsyncSession", deferred)
        try:
            yield build(session, caller)
            if deferred.started and session.in_transaction():
                await session.commit()
        except BaseException:
            if deferred.started and session.in_transaction():
                await session.rollback()
            raise
        finally:
            # Nothing to give back when no statement ran (hot reads).
            if deferred.started:
                await session.close()

    return Provide(provide)
