"""CORS as Litestar does it, minus its cost on requests that carry no `Origin` header.

Litestar's CORS middleware wraps the whole app and parses every request's headers just to
look for `Origin`; same-origin calls, server-to-server calls and probes have none, and for
them it does nothing else. Scanning the raw headers for the name is far cheaper, and
requests that do carry an `Origin` still go through Litestar's middleware unchanged.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["skip_cors_without_origin"]


def skip_cors_without_origin(app: Litestar) -> Litestar:
    """Route `app`'s HTTP requests without `Origin` around its CORS middleware."""
    cors = app.asgi_handler
    # Litestar puts its CORS middleware outermost when cors_config is set (its class is
    # no longer public, hence the name check); with anything else there, change nothing.
    if app.cors_config is None or type(cors).__name__ != "CORSMiddleware":
        return app
    inner: ASGIApp = cors.app  # type: ignore[attr-defined]

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar's CORS middleware handles HTTP only; anything else goes straight on.
        if scope["type"] == ScopeType.HTTP:
            for name, _ in scope["headers"]:
                if name == b"origin":  # ASGI servers give header names in lower case
                    await cors(scope, receive, send)
                    return
        await inner(scope, receive, send)

    app.asgi_handler = handle
    return app
