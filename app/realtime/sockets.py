"""The lifecycle of every WebSocket the API holds, in pieces a handler calls in one line.

- `guard_socket(socket, caller, on_end=...)` for a signed-in socket the server pushes to
  (job progress): at most `max_sockets_per_user` at once per caller over every API
  process (one more is closed `1008`, before anything is sent on it; app/realtime/slots.py
  counts them); closed `4401` once the token has expired, unless the client sent
  `{"type": "auth", "token": "<fresh token>"}` in time (a refused token, or one naming
  another `sub`, is `4401` too); a message over `max_message_bytes` is `1009`. It reads
  everything the client sends, so it also notices when the client leaves.
- `incoming_texts(socket)` for a socket that reads (echo): its text messages, the same
  size cap.
- `SocketRegistry.drain()` closes every open socket with `1001` when the process stops
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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import Message, ReceiveMessage
from redis.asyncio import Redis

from app.auth.plugin import VERIFIER_STATE_KEY
from app.auth.principal import Principal
from app.auth.verifier import InvalidTokenError, TokenVerifier
from app.realtime.slots import Slot, SocketSlots

__all__ = [
    "WS_CLOSE_GOING_AWAY",
    "WS_CLOSE_POLICY",
    "WS_CLOSE_TOO_BIG",
    "WS_CLOSE_UNAUTHORIZED",
    "SocketLimits",
    "SocketRegistry",
    "guard_socket",
    "incoming_texts",
]

logger = logging.getLogger(__name__)

WS_CLOSE_GOING_AWAY: Final = 1001
WS_CLOSE_POLICY: Final = 1008
WS_CLOSE_TOO_BIG: Final = 1009
WS_CLOSE_INTERNAL_ERROR: Final = 1011
WS_CLOSE_UNAUTHORIZED: Final = 4401

REGISTRY_STATE_KEY: Final = "socket_registry"


@dataclass(frozen=True, slots=True)
class SocketLimits:
    max_message_bytes: int = 64 * 1024
    max_sockets_per_user: int = 20


class _AuthMessage(msgspec.Struct, frozen=True):
    type: str
    token: str


_decode_auth = msgspec.json.Decoder(_AuthMessage).decode


class _Live:
    """One open socket as the registry sees it: something that can be closed."""

    __slots__ = ("_admitted", "_closed", "_on_end", "_send", "reader", "socket")

    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        on_end: Callable[[], None],
        *,
        admitted: bool = True,
    ) -> None:
        self.socket = socket
        self._on_end = on_end
        self._closed = False
        # Until set, the handler's sends wait: a socket over the limit gets nothing but
        # its close frame.
        self._admitted = asyncio.Event()
        if admitted:
            self._admitted.set()
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
        await self._send(message)

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
        with contextlib.suppress(Exception):  # the client may be gone already
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        reader = self.reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()


class SocketRegistry:
    """Every open socket of this process, and how many job sockets each caller holds
    (over every API process when given Redis)."""

    def __init__(
        self, limits: SocketLimits, redis: Redis | None = None, *, key_prefix: str = ""
    ) -> None:
        self.limits = limits
        self.slots = SocketSlots(redis, cap=limits.max_sockets_per_user, key_prefix=key_prefix)
        self._live: set[_Live] = set()
        self.draining = False

    @property
    def open_sockets(self) -> int:
        return len(self._live)

    def add(self, live: _Live) -> None:
        self._live.add(live)

    def discard(self, live: _Live) -> None:
        self._live.discard(live)

    async def take_slot(self, sub: str) -> Slot | None:
        return await self.slots.take(sub)

    def free_slot(self, slot: Slot) -> None:
        self.slots.free(slot)

    async def drain(self, reason: str = "Server restarting") -> None:
        """Close every open socket with 1001 (going away); new ones are closed at once."""
        self.draining = True
        await asyncio.gather(*(live.close(WS_CLOSE_GOING_AWAY, reason) for live in self._live))


def registry_of(socket: WebSocket[Any, Any, Any]) -> SocketRegistry:
    registry: SocketRegistry = socket.app.state[REGISTRY_STATE_KEY]
    return registry


def guard_socket(
    socket: WebSocket[Any, Any, Any], caller: Principal, *, on_end: Callable[[], None]
) -> asyncio.Task[None]:
    """Watch an accepted, signed-in socket until it ends; cancel the task when done.

    `on_end` is called once the socket is over for any reason the guard sees (client
    left, token expired, limit, shutdown), so the handler stops producing.
    """
    registry = registry_of(socket)
    live = _Live(socket, on_end, admitted=False)
    task = asyncio.get_running_loop().create_task(
        _guard(registry, live, caller), name="websocket-guard"
    )
    live.reader = task
    return task


async def _guard(registry: SocketRegistry, live: _Live, caller: Principal) -> None:
    if registry.draining:
        await live.close(WS_CLOSE_GOING_AWAY, "Server restarting")
        return
    # Registered before the slot is asked for, so a drain meanwhile closes it too.
    registry.add(live)
    slot: Slot | None = None
    try:
        slot = await registry.take_slot(caller.sub)
        if slot is None:
            limit = registry.limits.max_sockets_per_user
            await live.close(WS_CLOSE_POLICY, f"Too many open sockets (at most {limit})")
            return
        live.admit()
        await _read_until_done(registry, live, caller)
    except asyncio.CancelledError:
        if not live.closed:
            raise
    except Exception:
        # Unguarded, the socket would stay open (or its sends wait) for good.
        logger.exception("socket guard failed")
        await live.close(WS_CLOSE_INTERNAL_ERROR, "Internal error")
    finally:
        registry.discard(live)
        if slot is not None:
            registry.free_slot(slot)


async def _read_until_done(registry: SocketRegistry, live: _Live, caller: Principal) -> None:
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
                await live.close(WS_CLOSE_UNAUTHORIZED, "Token expired")
                return
            if not await key_check.still_published():
                await live.close(WS_CLOSE_UNAUTHORIZED, "Token's signing key withdrawn")
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
            await live.close(WS_CLOSE_TOO_BIG, "Message too big")
            return
        if isinstance(data, str) and '"auth"' in data:
            renewed = await _renewal(live.socket, data, caller)
            if isinstance(renewed, str):
                await live.close(WS_CLOSE_UNAUTHORIZED, renewed)
                return
            if renewed is not None:
                expires_at = renewed.expires_at
                key_check.token = _decode_auth(data).token


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


async def incoming_texts(socket: WebSocket[Any, Any, Any]) -> AsyncIterator[str]:
    """The text messages of an accepted socket until the client leaves; size-capped."""
    registry = registry_of(socket)
    # No reader to cancel: after a close frame the client's answer (or the server's
    # shutdown) ends the `receive` below.
    live = _Live(socket, on_end=lambda: None)
    if registry.draining:
        await live.close(WS_CLOSE_GOING_AWAY, "Server restarting")
        return
    registry.add(live)
    try:
        while not live.closed:
            try:
                message = await socket.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                live.client_left()
                return
            data = _payload(message)
            if _too_big(data, registry.limits):
                await live.close(WS_CLOSE_TOO_BIG, "Message too big")
                return
            if isinstance(data, str):
                yield data
    except asyncio.CancelledError:
        if not live.closed:
            raise
    finally:
        registry.discard(live)
