"""`/ws/echo`: sends every text message back unchanged (a connectivity check).

Signed in like every socket, and under the same guard: the caller's socket cap, the
token's lifetime, the message size cap, and a client that stops reading is closed."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, websocket

from app.auth import Caller
from app.realtime.sockets import guard_socket

__all__ = ["echo"]


@websocket("/ws/echo")
async def echo(socket: WebSocket[Any, Any, Any], caller: Caller) -> None:
    await socket.accept()
    await guard_socket(socket, caller, on_text=socket.send_text)
