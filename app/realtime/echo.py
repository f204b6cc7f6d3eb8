"""`/ws/echo`: sends every text message back unchanged (a connectivity check; public)."""

from __future__ import annotations

from typing import Any

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from app.auth import PUBLIC_OPT
from app.realtime.sockets import incoming_texts

__all__ = ["echo"]


@websocket("/ws/echo", opt={PUBLIC_OPT: True})
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    try:
        async for text in incoming_texts(socket):
            await socket.send_text(text)
    except WebSocketDisconnect:
        return
