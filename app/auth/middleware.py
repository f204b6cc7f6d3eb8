"""Bearer-token authentication for HTTP requests and WebSocket connections."""

from __future__ import annotations

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.auth.verifier import InvalidTokenError, TokenVerifier
from app.errors import error_response

__all__ = ["WS_CLOSE_UNAUTHORIZED", "BearerAuthMiddleware"]

# Browsers never see an HTTP status for a refused WebSocket handshake, so a refused
# socket is accepted and then closed with this application close code instead.
WS_CLOSE_UNAUTHORIZED = 4401


class BearerAuthMiddleware(ASGIMiddleware):
    """HTTP takes `Authorization: Bearer <token>`; WebSockets take `?token=<token>`.

    Refusals are answered here rather than raised, so that outer middleware (request
    logging, request id) sees and decorates them like any other response.
    """

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = "exclude_from_auth"

    def __init__(self, verifier: TokenVerifier, public_prefixes: tuple[str, ...]) -> None:
        self.verifier = verifier
        self.public_prefixes = public_prefixes
        self.should_bypass_for_scope = self._is_public

    def _is_public(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return any(
            path == prefix or path.startswith(f"{prefix}/") for prefix in self.public_prefixes
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") == "OPTIONS":  # CORS preflights carry no credentials
            await next_app(scope, receive, send)
            return
        token = _token_from(scope)
        if not token:
            await _refuse(scope, receive, send, "missing bearer token", challenge="Bearer")
            return
        try:
            principal = await self.verifier.verify(token)
        except InvalidTokenError as exc:
            challenge = f'Bearer error="invalid_token", error_description="{exc}"'
            await _refuse(scope, receive, send, str(exc), challenge=challenge)
            return
        scope["user"], scope["auth"] = principal, token
        await next_app(scope, receive, send)


def _token_from(scope: Scope) -> str:
    if scope["type"] == ScopeType.WEBSOCKET:
        return Request(scope).query_params.get("token", "").strip()
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _refuse(
    scope: Scope, receive: Receive, send: Send, reason: str, *, challenge: str
) -> None:
    detail = f"Not authenticated: {reason}"
    if scope["type"] == ScopeType.WEBSOCKET:
        await receive()  # the client's websocket.connect
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await send(
            {"type": "websocket.close", "code": WS_CLOSE_UNAUTHORIZED, "reason": detail[:120]}
        )
        return
    response = error_response(401, detail, headers={"WWW-Authenticate": challenge})
    await response.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
