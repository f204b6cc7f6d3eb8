"""CORS as Litestar does it, minus its cost on requests that carry no `Origin` header.

Litestar's CORS middleware wraps the whole app and parses every request's headers just to
look for `Origin`; same-origin calls, server-to-server calls and probes have none, and for
them it does nothing else. The gateway (app/gateway.py) already scans the raw headers, so
it sends only requests with an `Origin` through Litestar's middleware, unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from litestar import Litestar
from litestar.types import ASGIApp

__all__ = ["CorsSplit", "split_cors"]


class CorsSplit(NamedTuple):
    """The app with Litestar's CORS middleware (`with_cors`) and without it (`without_cors`)."""

    with_cors: ASGIApp
    without_cors: ASGIApp
    middleware_class: Any  # Litestar's CORS middleware class, or None without CORS

    def around(self, app: ASGIApp) -> ASGIApp:
        """`app` behind the same CORS middleware (for answers the gateway makes itself)."""
        if self.middleware_class is None:
            return app
        return self.middleware_class(app=app, config=self.with_cors.config)  # type: ignore[attr-defined,no-any-return]


def split_cors(app: Litestar) -> CorsSplit:
    handler = app.asgi_handler
    # Litestar puts its CORS middleware outermost when cors_config is set (its class is
    # no longer public, hence the name check); with anything else there, split nothing.
    if app.cors_config is None or type(handler).__name__ != "CORSMiddleware":
        return CorsSplit(handler, handler, None)
    return CorsSplit(handler, handler.app, type(handler))  # type: ignore[attr-defined]
