"""The lifecycle of every WebSocket the API holds, in one call a handler makes.

`guard_socket(socket, caller, on_end=..., on_text=...)` watches an accepted, signed-in
socket until it ends:

- admission: a caller holds at most `max_sockets_per_user` sockets on this process and the
  process at most `max_sockets` (one more is closed `1008`, or `1013` when the process is
  full, before anything is sent on it). The caps protect one process; they are not summed
  over processes (the edge caps sockets per address, scripts/edge/nginx.conf);
- the token's lifetime: closed `4401` once it has expired, unless the client sent
  `{"type": "auth", "token": "<fresh token>"}` in time (a refused token, or one naming
  another `sub`, is `4401` too);
- what the client sends: a message over `max_message_bytes` is `1009`; every other text
  goes to `on_text` (echo), or is ignored. Reading is how the guard learns the client left;
- what the client does not read: each send may wait at most `send_timeout_s` for the
  client to take what was sent before (the ASGI server stops taking sends while its own
  buffer is full); past that the socket is closed `1008` and its buffers are given back.

`SocketRegistry.drain()` closes every open socket with `1001` when the process stops
(app/shutdown.py calls it on SIGTERM).

When the guard closes a socket it first calls `on_end` (the handler stops producing), and
any later send by the handler raises `WebSocketDisconnect`, which handlers already take
as "the client is gone".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import (
    WS_1001_GOING_AWAY,
    WS_1008_POLICY_VIOLATION,
    WS_1009_MESSAGE_TOO_BIG,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
)
from litestar.types import Message, ReceiveMessage

from app.auth.plugin import VERIFIER_STATE_KEY
from app.auth.principal import Principal
from app.auth.verifier import InvalidTokenError, TokenVerifier
from app.close_codes import WS_4401_UNAUTHORIZED

__all__ = ["SocketLimits", "SocketRegistry", "guard_socket"]

logger = logging.getLogger(__name__)

REGISTRY_STATE_KEY: Final = "socket_registry"


@dataclass(frozen=True, slots=True)
class SocketLimits:
    max_message_bytes: int = 64 * 1024
    max_sockets_per_user: int = 20
    # Below uvicorn's --limit-concurrency (2,000 in the image), so sockets alone never
    # leave a process unable to answer HTTP requests.
    max_sockets: int = 1500
    # nginx's send_timeout at the edge is the same 10 s.
    send_timeout_s: float = 10.0


class _AuthMessage(msgspec.Struct, frozen=True):
    type: str
    token: str


_decode_auth = msgspec.json.Decoder(_AuthMessage).decode


class _Live:
    """One open socket as the registry sees it: something that can be closed."""

    __slots__ = (
        "_admitted",
        "_closed",
        "_on_end",
        "_send",
        "_send_timeout_s",
        "reader",
        "socket",
    )

    def __init__(
        self, socket: WebSocket[Any, Any, Any], on_end: Callable[[], None], send_timeout_s: float
    ) -> None:
        self.socket = socket
        self._on_end = on_end
        self._closed = False
        self._send_timeout_s = send_timeout_s
        # Until set, the handler's sends wait: a socket over the limit gets nothing but
        # its close frame.
        self._admitted = asyncio.Event()
        # The guard's task, cancelled when someone else closes the socket.
        self.reader: asyncio.Task[Any] | None = None
        # Every later send of the handler goes through the check below, so nothing is
        # sent after the close frame (the ASGI server would raise instead).
        self._send = socket.send
        socket.send = self._checked_send

    @property
    def closed(self) -> bool:
        return self._closed

    def admit(self) -> None:
        self._admitted.set()

    async def _checked_send(self, message: Message) -> None:
        if not self._admitted.is_set():
            await self._admitted.wait()
        if self._closed:
            raise WebSocketDisconnect(detail="the server closed this socket")
        try:
            async with asyncio.timeout(self._send_timeout_s):
                await self._send(message)
        except TimeoutError:
            await self.close(WS_1008_POLICY_VIOLATION, "Client is not reading")
            raise WebSocketDisconnect(detail="the client is not reading") from None

    def client_left(self) -> None:
        self._closed = True
        self._admitted.set()  # waiting sends wake up and see the socket closed
        self._on_end()

    async def close(self, code: int, reason: str) -> None:
        """Stop the handler and close with `code`; once only, from any task."""
        if self._closed:
            return
        self._closed = True
        self._admitted.set()
        self._on_end()
        # The client may be gone, or not reading (then the close frame cannot be sent
        # either, and the server drops the connection when the handler returns).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._send_timeout_s):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        reader = self.reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()


class SocketRegistry:
    """Every open socket of this process, and how many each caller holds."""

    def __init__(self, limits: SocketLimits) -> None:
        self.limits = limits
        self._live: set[_Live] = set()
        self._per_user: Counter[str] = Counter()
        self.draining = False

    @property
    def open_sockets(self) -> int:
        return len(self._live)

    def admit(self, live: _Live, sub: str) -> tuple[int, str] | None:
        """Count one more socket for `sub`, or the close code and reason refusing it."""
        if len(self._live) >= self.limits.max_sockets:
            return WS_1013_TRY_AGAIN_LATER, "This server holds all the sockets it can"
        if self._per_user[sub] >= self.limits.max_sockets_per_user:
            limit = self.limits.max_sockets_per_user
            return WS_1008_POLICY_VIOLATION, f"Too many open sockets (at most {limit})"
        self._per_user[sub] += 1
        self._live.add(live)
        return None

    def release(self, live: _Live, sub: str) -> None:
        self._live.discard(live)
        self._per_user[sub] -= 1
        if not self._per_user[sub]:
            del self._per_user[sub]

    async def drain(self, reason: str = "Server restarting") -> None:
        """Close every open socket with 1001 (going away); new ones are closed at once."""
        self.draining = True
        await asyncio.gather(*(live.close(WS_1001_GOING_AWAY, reason) for live in self._live))


def registry_of(socket: WebSocket[Any, Any, Any]) -> SocketRegistry:
    registry: SocketRegistry = socket.app.state[REGISTRY_STATE_KEY]
    return registry


def guard_socket(
    socket: WebSocket[Any, Any, Any],
    caller: Principal,
    *,
    on_end: Callable[[], None] = lambda: None,
    on_text: Callable[[str], Awaitable[None]] | None = None,
) -> asyncio.Task[None]:
    """Watch an accepted, signed-in socket until it ends; cancel the task when done.

    `on_end` is called once the socket is over for any reason the guard sees (client
    left, token expired, limit, shutdown), so the handler stops producing. `on_text`, if
    given, receives each text the client sends (other than token renewals), in order.
    """
    registry = registry_of(socket)
    live = _Live(socket, on_end, registry.limits.send_timeout_s)
    task = asyncio.get_running_loop().create_task(
        _guard(registry, live, caller, on_text), name="websocket-guard"
    )
    live.reader = task
    return task


async def _guard(
    registry: SocketRegistry,
    live: _Live,
    caller: Principal,
    on_text: Callable[[str], Awaitable[None]] | None,
) -> None:
    if registry.draining:
        await live.close(WS_1001_GOING_AWAY, "Server restarting")
        return
    refusal = registry.admit(live, caller.sub)
    if refusal is not None:
        await live.close(*refusal)
        return
    try:
        live.admit()
        await _read_until_done(registry, live, caller, on_text)
    except asyncio.CancelledError:
        if not live.closed:
            raise
    except WebSocketDisconnect:
        live.client_left()  # a send of on_text found the client gone (or not reading)
    except Exception:
        # Unguarded, the socket would stay open (or its sends wait) for good.
        logger.exception("socket guard failed")
        await live.close(WS_1011_INTERNAL_ERROR, "Internal error")
    finally:
        registry.release(live, caller.sub)


async def _read_until_done(
    registry: SocketRegistry,
    live: _Live,
    caller: Principal,
    on_text: Callable[[str], Awaitable[None]] | None,
) -> None:
    loop = asyncio.get_running_loop()
    expires_at = caller.expires_at
    key_check = _KeyCheck(live.socket)
    while not live.closed:
        # The socket lives as long as its token: `exp`, on this server's clock.
        expiry = loop.time() + max(expires_at - time.time(), 0.0)
        try:
            async with asyncio.timeout_at(min(expiry, key_check.due)):
                message = await live.socket.receive()
        except TimeoutError:
            if loop.time() >= expiry:
                await live.close(WS_4401_UNAUTHORIZED, "Token expired")
                return
            if not await key_check.still_published():
                await live.close(WS_4401_UNAUTHORIZED, "Token's signing key withdrawn")
                return
            continue
        except WebSocketDisconnect:
            live.client_left()
            return
        if message["type"] == "websocket.disconnect":
            live.client_left()
            return
        data = _payload(message)
        if _too_big(data, registry.limits):
            await live.close(WS_1009_MESSAGE_TOO_BIG, "Message too big")
            return
        if not isinstance(data, str):
            continue
        if '"auth"' in data:
            renewed = await _renewal(live.socket, data, caller)
            if isinstance(renewed, str):
                await live.close(WS_4401_UNAUTHORIZED, renewed)
                return
            if renewed is not None:
                expires_at = renewed.expires_at
                key_check.token = _decode_auth(data).token
                continue
        if on_text is not None:
            await on_text(data)


class _KeyCheck:
    """Whether the key that signed the socket's token is still published, asked every
    tenth of the JWKS TTL: with the cache's re-read at 80 % of it, a withdrawn key closes
    the socket within the TTL (a socket's token is verified only at connect and renewal).
    """

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self._verifier: TokenVerifier | None = socket.app.state.get(VERIFIER_STATE_KEY)
        auth = socket.scope.get("auth")
        self.token: str | None = auth if isinstance(auth, str) else None
        self._loop = asyncio.get_running_loop()
        self._every = self._verifier.jwks.ttl_s / 10 if self._verifier else float("inf")
        self.due = self._loop.time() + self._every

    async def still_published(self) -> bool:
        self.due = self._loop.time() + self._every
        if self._verifier is None or self.token is None:
            return True
        return await self._verifier.signing_key_published(self.token)


async def _renewal(
    socket: WebSocket[Any, Any, Any], text: str, caller: Principal
) -> Principal | str | None:
    """The renewed caller, a refusal reason, or None when the text is no auth message."""
    try:
        message = _decode_auth(text)
    except msgspec.DecodeError:
        return None
    if message.type != "auth":
        return None
    verifier: TokenVerifier | None = socket.app.state.get(VERIFIER_STATE_KEY)
    if verifier is None:
        return "Token renewal is not available"
    try:
        principal = await verifier.verify(message.token)
    except InvalidTokenError as exc:
        return f"Token refused: {exc}"[:120]
    if principal.sub != caller.sub:
        return "Token refused: it names another user"
    return principal


def _payload(message: ReceiveMessage) -> str | bytes:
    text = message.get("text")
    if isinstance(text, str):
        return text
    data = message.get("bytes")
    return data if isinstance(data, bytes) else b""


def _too_big(data: str | bytes, limits: SocketLimits) -> bool:
    size = len(data)
    if isinstance(data, str) and size * 4 > limits.max_message_bytes:
        size = len(data.encode())  # exact only when it could matter
    return size > limits.max_message_bytes
