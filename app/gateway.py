"""The request pipeline: one Litestar middleware on every route (`Litestar(middleware=
[Gateway(...)])`, public API), plus an exception handler for requests no route took.

Per request, in one pass over the headers: the request id (always the server's own; a
client's X-Request-ID is only logged beside it, app/access_log.py), the caller
(authenticated unless the route is public), the caller's request limit, the
X-Request-ID response header, one access line and the request's figures for /metrics.
CORS from Litestar's `CORSConfig`, applied here to requests with an `Origin` only
(app/cors.py says why), refusals included.

Why one middleware rather than one per concern: each Litestar middleware adds a wrapper
call and its own bypass checks to every request; here a request crosses one coroutine and
one send wrapper. It is a plain middleware factory (a callable taking the next ASGI app,
which `middleware=` accepts) rather than an `ASGIMiddleware` subclass: that base class's
per-request bypass checks (scope type, opt key, path pattern) cost 1.2 µs of a /health
request's ~23 µs in process, and there is nothing here for them to bypass.

Litestar runs route middleware after routing, so whether a route is public is read from
the handler Litestar chose (`scope["route_handler"].opt`), and a route registered later
gets the middleware like any other. The public opt is not the middleware's
`exclude_opt_key`: public routes still get request ids, access lines and figures; only the
authentication step is skipped. A request that matches no route (404/405) never reaches
route middleware: `unrouted_exception_handlers` gives it its request id and access line.
"""

from __future__ import annotations

from functools import partial
from time import perf_counter
from typing import Any

from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, ExceptionHandlersMap, Message, Receive, Scope, Send

from app.access_log import client_request_id, log_access, new_request_id
from app.auth.authenticator import PUBLIC_OPT, Authenticator, Refusal, refuse_socket
from app.auth.principal import current_caller
from app.cors import Cors, HeaderList
from app.errors import error_response, exception_handlers
from app.limits import RequestLimiter
from app.metrics import UNMATCHED_ROUTE, http_stats

__all__ = ["Gateway", "unrouted_exception_handlers"]

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Gateway:
    """Request id, authentication, request limit, CORS, access line and figures, per request.

    Litestar calls it once per route handler with that handler's ASGI app, and the result
    serves the handler's HTTP requests or WebSockets (route middleware sees no other
    scope types).
    """

    def __init__(
        self,
        authenticator: Authenticator,
        limiter: RequestLimiter | None = None,
        cors: Cors | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.limiter = limiter
        self.cors = cors

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The gateway in front of one route handler's ASGI app (called once per handler)."""
        next_app = app
        authenticate = self.authenticator.authenticate
        limiter, cors = self.limiter, self.cors

        async def gateway(scope: Scope, receive: Receive, send: Send) -> None:
            started = perf_counter()
            # One C-level pass; ASGI servers give header names in lower case.
            headers = dict(scope["headers"])
            request_id, id_header = new_request_id()
            client_id = client_request_id(headers.get(b"x-request-id"))
            state = scope["state"]
            state["request_id"] = request_id  # for error logs (app/errors.py)
            if client_id is not None:
                state["client_request_id"] = client_id
            is_http = scope["type"] == ScopeType.HTTP
            method: str = scope["method"] if is_http else "WS"  # type: ignore[typeddict-item]
            app = next_app
            status = 0
            caller = None
            cors_headers: HeaderList | None = None
            origin = headers.get(b"origin") if is_http else None
            if origin is not None and cors is not None:
                origin_text = origin.decode("latin-1")
                cors_headers = cors.response_headers(origin_text)
                if method == "OPTIONS":  # a preflight: answered here, with its own headers
                    app = partial(_send_preflight, cors=cors, origin=origin_text, headers=headers)
                    cors_headers = None
            # Preflights and other OPTIONS requests carry no credentials.
            if not scope["route_handler"].opt.get(PUBLIC_OPT) and method != "OPTIONS":
                outcome = await authenticate(scope, headers.get(b"authorization"))
                if isinstance(outcome, Refusal):
                    app = partial(send_refusal, refusal=outcome)
                    status = 401  # a refused WebSocket is still accepted, then closed
                else:
                    caller = outcome
                    # ASGI servers run each request in its own task, so this value ends
                    # with the request; elsewhere it keeps its default, None.
                    current_caller.set(caller)
                    if limiter is not None and is_http:
                        retry_after = limiter.admit(caller.sub)
                        if retry_after is None:
                            retry_after = await limiter.admit_first(caller.sub)
                        if retry_after:
                            app = partial(
                                _send_too_many, limit=limiter.limit, retry_after=retry_after
                            )
            accepted = False

            async def send_with_request_id(message: Message) -> None:
                nonlocal status, accepted
                if message["type"] == "http.response.start":
                    status = message["status"]
                    response_headers = [*message.get("headers", ()), id_header]
                    if cors_headers is not None:
                        response_headers += cors_headers
                    message = {**message, "headers": response_headers}
                elif message["type"] == "websocket.accept":
                    status = status or 101
                    if not accepted:
                        accepted = True
                        http_stats.websockets += 1
                elif message["type"] == "websocket.close":
                    if accepted:
                        accepted = False
                        http_stats.websockets -= 1
                    elif not status:
                        status = 403  # closed before the handshake completed
                await send(message)

            try:
                await app(scope, receive, send_with_request_id)
            finally:
                if accepted:  # the client went away: no close was sent
                    http_stats.websockets -= 1
                elapsed = perf_counter() - started
                status = status or 500
                log_access(
                    method=method,
                    path=scope["path"],
                    status=status,
                    duration_ms=int(elapsed * 100_000) / 100,
                    request_id=request_id,
                    sub=caller.sub if caller is not None else None,
                    client_request_id=client_id,
                )
                http_stats.observe(method, scope["path_template"], status, elapsed)

        return gateway


async def send_refusal(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    """401 with a WWW-Authenticate challenge, or for a WebSocket accept-then-close 4401."""
    detail = f"Not authenticated: {refusal.reason}"
    if scope["type"] == ScopeType.WEBSOCKET:
        await refuse_socket(receive, send, detail[:120])
        return
    response = error_response(401, detail, headers={"WWW-Authenticate": refusal.challenge})
    await response.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)


async def _send_preflight(
    scope: Scope, receive: Receive, send: Send, cors: Cors, origin: str, headers: dict[bytes, bytes]
) -> None:
    method = headers.get(b"access-control-request-method")
    requested = headers.get(b"access-control-request-headers", b"")
    status, response_headers, body = cors.preflight(
        origin, method.decode("latin-1") if method else None, requested.decode("latin-1")
    )
    response_headers = [*response_headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_too_many(
    scope: Scope, receive: Receive, send: Send, limit: int, retry_after: int
) -> None:
    detail = f"Too many requests: at most {limit} per minute"
    response = error_response(429, detail, headers={"Retry-After": str(retry_after)})
    await response.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)


def _unrouted(
    request: Request[Any, Any, Any], exc: HTTPException, cors: Cors | None
) -> Response[Any]:
    response: Response[Any] = exception_handlers[HTTPException](request, exc)
    state = request.scope["state"]
    if "request_id" in state:
        return response  # raised by a route: the gateway adds its headers and line
    # No route took the request (Litestar's router refused it): no middleware ran.
    sent = request.headers.get("x-request-id")
    client_id = client_request_id(sent.encode("latin-1") if sent is not None else None)
    request_id, _ = new_request_id()
    state["request_id"] = request_id
    if client_id is not None:
        state["client_request_id"] = client_id
    response.headers["X-Request-ID"] = request_id
    origin = request.headers.get("origin")
    if origin is not None and cors is not None:
        for name, value in cors.response_headers(origin):
            response.headers[name.decode()] = value.decode("latin-1")
    method = request.method
    log_access(
        method=method,
        path=request.scope["path"],
        status=exc.status_code,
        duration_ms=0.0,  # routing only; nothing before this point is timed
        request_id=request_id,
        sub=None,
        client_request_id=client_id,
    )
    # Any method a client makes up reaches here: keep the label set bounded.
    label = method if method in _KNOWN_METHODS else "other"
    http_stats.observe(label, UNMATCHED_ROUTE, exc.status_code, 0.0)
    return response


def unrouted_exception_handlers(cors: Cors | None) -> ExceptionHandlersMap:
    """For `Litestar(exception_handlers=...)`, beside app.errors.exception_handlers."""
    handler = partial(_unrouted, cors=cors)
    return {NotFoundException: handler, MethodNotAllowedException: handler}
