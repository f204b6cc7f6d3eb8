"""Who is calling: the bearer token of an HTTP request or the `?token=` of a WebSocket.

The gateway (app/gateway.py) asks `authenticate` once per request, before any parameter
is parsed, for every route that is not public; a route is public when its handler (or its
controller or router) sets the `PUBLIC_OPT` opt. The gateway answers a `Refusal` (a 401
response; a socket through `refuse_socket`): this package does not build HTTP responses,
the request layer does.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final, NamedTuple

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send, WebSocketCloseEvent

from app.auth.principal import Principal
from app.auth.verifier import MAX_TOKEN_BYTES, InvalidTokenError, TokenVerifier
from app.close_codes import WS_4401_UNAUTHORIZED

__all__ = ["PUBLIC_OPT", "Authenticator", "Refusal", "refuse_socket"]

# The handler opt that makes a route public: `opt={PUBLIC_OPT: True}` on a handler,
# controller or router. The only place this name is spelled.
PUBLIC_OPT = "exclude_from_auth"

# Browsers never see an HTTP status for a refused WebSocket handshake, so a refused
# socket is accepted and then closed 4401 instead. The server holds each one until the
# client answers the close; past this many in that time on one process (a flood of
# anonymous upgrades), further ones are refused at the handshake and dropped at once.
MAX_SOCKET_REFUSALS: Final = 100


class Refusal(NamedTuple):
    reason: str
    challenge: str


_MISSING = Refusal("missing bearer token", "Bearer")
_TOO_LARGE = Refusal(
    "token too large", 'Bearer error="invalid_token", error_description="token too large"'
)
# Room for `Bearer ` or the rest of a socket's query string beside the token itself.
_MAX_CARRIER_BYTES = MAX_TOKEN_BYTES + 1024


class Authenticator:
    """HTTP takes `Authorization: Bearer <token>`; WebSockets take `?token=<token>`."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    async def authenticate(self, scope: Scope, authorization: bytes | None) -> Principal | Refusal:
        """The verified caller, also stored as `scope["user"]`, or why there is none."""
        # Measured before anything is decoded: a megabyte "token" costs a length check only.
        carrier = scope["query_string"] if scope["type"] == ScopeType.WEBSOCKET else authorization
        if carrier is not None and len(carrier) > _MAX_CARRIER_BYTES:
            return _TOO_LARGE
        token = _token_from(scope, authorization)
        if len(token) > MAX_TOKEN_BYTES:
            return _TOO_LARGE
        if not token:
            return _MISSING
        principal = self.verifier.cached(token)
        if principal is None:
            try:
                principal = await self.verifier.verify(token)
            except InvalidTokenError as exc:
                challenge = f'Bearer error="invalid_token", error_description="{exc}"'
                return Refusal(str(exc), challenge)
        scope["user"], scope["auth"] = principal, token
        return principal


def _token_from(scope: Scope, authorization: bytes | None) -> str:
    if scope["type"] == ScopeType.WEBSOCKET:
        return Request(scope).query_params.get("token", "").strip()
    if authorization is None:
        return ""
    scheme, _, token = authorization.partition(b" ")
    return token.strip().decode("latin-1") if scheme.lower() == b"bearer" else ""


class _RecentRefusals:
    """Refused sockets the server may still be holding: each one until the client answers
    the close frame, at most the server's close timeout (uvicorn: 10 s)."""

    def __init__(self, limit: int, hold_s: float) -> None:
        self.limit, self.hold_s = limit, hold_s
        self.times: deque[float] = deque()

    def take(self) -> bool:
        now = time.monotonic()
        while self.times and self.times[0] <= now - self.hold_s:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


_recent_refusals = _RecentRefusals(MAX_SOCKET_REFUSALS, hold_s=10.0)


async def refuse_socket(receive: Receive, send: Send, reason: str) -> None:
    """Accept-then-close 4401 (browsers never see an HTTP status for a refused handshake)."""
    await receive()  # the client's websocket.connect
    close: WebSocketCloseEvent = {
        "type": "websocket.close",
        "code": WS_4401_UNAUTHORIZED,
        "reason": reason,
    }
    if _recent_refusals.take():
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    # Without the accept, the server answers the handshake 403 and drops it at once.
    await send(close)
