"""`/ws/jobs/{job_id}`: a job's current state, then each update, then close."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath
from litestar.status_codes import (
    WS_1000_NORMAL_CLOSURE,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import Caller
from app.close_codes import WS_4404_NOT_FOUND
from app.jobs.follow import JobNotFound, ProgressFollower
from app.jobs.progress import parse_job_id
from app.realtime import HubUnavailable, PubSubHub, guard_socket
from app.tracing import link_socket_to_job

__all__ = ["watch_job"]

logger = logging.getLogger(__name__)


@websocket("/ws/jobs/{job_id:str}")
async def watch_job(
    socket: WebSocket[Any, Any, Any],
    job_id: FromPath[str],
    caller: Caller,
    hub: NamedDependency[PubSubHub],
    db_engine: NamedDependency[AsyncEngine],
) -> None:
    """The job's current state, then one message per update; closes 1000 after the end.

    Unknown or someone else's job: 4404 (after accepting, so browsers see the code).
    """
    await socket.accept()
    parsed = parse_job_id(job_id)
    if parsed is None:
        await socket.close(WS_4404_NOT_FOUND, "Job not found")
        return
    await link_socket_to_job(socket, parsed)  # nothing unless tracing is on
    follower = ProgressFollower(db_engine, hub, parsed, caller.sub)
    # Reads what the client sends (token renewal; how we learn it left), enforces the
    # socket limits and the token's lifetime; stops the follower when the socket ends.
    watcher = guard_socket(socket, caller, on_end=follower.stop)
    try:
        async with contextlib.aclosing(follower.messages()) as messages:
            async for data in messages:
                await socket.send_text(data)
        code, reason = WS_1000_NORMAL_CLOSURE, "Job finished"
    except WebSocketDisconnect:
        return
    except JobNotFound:
        code, reason = WS_4404_NOT_FOUND, "Job not found"
    except HubUnavailable:
        code, reason = WS_1013_TRY_AGAIN_LATER, "Progress updates are unavailable; try again"
    except Exception:
        logger.exception("job progress socket failed")
        code, reason = WS_1011_INTERNAL_ERROR, "Internal error"
    finally:
        watcher.cancel()
    if not follower.stopped:
        with contextlib.suppress(WebSocketDisconnect):
            await socket.close(code, reason)
