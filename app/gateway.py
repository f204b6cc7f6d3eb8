"""The one ASGI layer in front of Litestar's router.

Per request, in one pass over the headers: the request id (honoured or made), the caller
(authenticated unless the route is public), Litestar's CORS middleware only when there is
an `Origin`, the X-Request-ID response header and one access line.

Why one layer instead of Litestar middleware: every middleware adds a wrapper call, and a
route with any middleware also gets an extra exception-handling layer with its own send
wrapper. Here each request crosses one coroutine and one send wrapper, which cut the CPU
of a /health request by 10-12 % (old and new servers loaded side by side on one core).

Whether a route is public is read from its handler's opt through Litestar's own router
(`handle_routing`, which caches by path and method), so the gateway never guesses from
the path. Requests that match no route are left to Litestar, which answers 404 or 405
without running any handler.
"""

from __future__ import annotations

from functools import partial
from time import perf_counter

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils import normalize_path

from app.access_log import log_access, request_id_from
from app.auth.authenticator import PUBLIC_OPT, Authenticator, Refusal, send_refusal
from app.auth.principal import current_caller
from app.cors import split_cors

__all__ = ["Gateway", "with_gateway"]

# How many (method, path) pairs the gateway remembers as public or not before starting over.
_REMEMBERED_ROUTES = 4096


class Gateway:
    def __init__(self, app: Litestar, authenticator: Authenticator) -> None:
        self._cors = split_cors(app)
        self._router = app.asgi_router
        self.authenticator = authenticator
        self._needs_token_by_route: dict[tuple[str | None, str], bool] = {}

    def _needs_token(self, method: str | None, path: str, root_path: str) -> bool:
        """Whether the route `path` leads to wants a caller; remembered per method and path
        once a route matched (a route registered later must not find a stale answer)."""
        needs = self._route_needs_token(method, path, root_path)
        if needs is None:
            return False  # no route: Litestar answers 404 or 405 and runs no handler
        if len(self._needs_token_by_route) >= _REMEMBERED_ROUTES:
            self._needs_token_by_route.clear()  # unbounded path variety (ids in paths)
        self._needs_token_by_route[method, path] = needs
        return needs

    def _route_needs_token(self, method: str | None, path: str, root_path: str) -> bool | None:
        if method == "OPTIONS":  # CORS preflights carry no credentials
            return False
        if root_path:  # as Litestar's router strips it
            path = path.split(root_path, maxsplit=1)[-1]
        try:
            route_handler = self._router.handle_routing(path=normalize_path(path), method=method)[1]
        except (NotFoundException, MethodNotAllowedException):
            return None
        except Exception:
            return True  # Litestar will refuse it too; an anonymous caller hears 401 first
        return not route_handler.opt.get(PUBLIC_OPT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        # One C-level pass; ASGI servers give header names in lower case.
        headers = dict(scope["headers"])
        request_id, id_header = request_id_from(headers.get(b"x-request-id"))
        scope["state"]["request_id"] = request_id  # for error logs (app/errors.py)
        method = scope["method"] if scope["type"] == ScopeType.HTTP else None
        path = scope["path"]
        # Litestar's CORS middleware handles HTTP only (WebSocket scopes have no method).
        cross_origin = method is not None and b"origin" in headers
        app = self._cors.with_cors if cross_origin else self._cors.without_cors
        status = 0
        caller = None
        needs_token = self._needs_token_by_route.get((method, path))
        if needs_token is None:
            needs_token = self._needs_token(method, path, scope.get("root_path", ""))
        if needs_token:
            outcome = await self.authenticator.authenticate(scope, headers.get(b"authorization"))
            if isinstance(outcome, Refusal):
                refuse: ASGIApp = partial(send_refusal, refusal=outcome)
                app = self._cors.around(refuse) if cross_origin else refuse
                status = 401  # a refused WebSocket is still accepted, then closed
            else:
                caller = outcome
                # ASGI servers run each request in its own task, so this value ends
                # with the request; elsewhere it keeps its default, None.
                current_caller.set(caller)

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif message["type"] == "websocket.accept":
                status = status or 101
            elif message["type"] == "websocket.close" and not status:
                status = 403  # closed before the handshake completed
            await send(message)

        try:
            await app(scope, receive, send_with_request_id)
        finally:
            log_access(
                method=method or "WS",
                path=path,
                status=status or 500,
                duration_ms=int((perf_counter() - started) * 100_000) / 100,
                request_id=request_id,
                sub=caller.sub if caller is not None else None,
            )


def with_gateway(app: Litestar, authenticator: Authenticator) -> Litestar:
    """Put the gateway in front of everything `app` serves."""
    app.asgi_handler = Gateway(app, authenticator)
    return app
