"""Rolling restarts: what the API does on SIGTERM when it runs under uvicorn.

uvicorn on its own would close open WebSockets with 1012, wait for in-flight requests
without a bound, and then raise SIGTERM again at itself, so the process dies of the
signal instead of exiting 0. Instead, on SIGTERM:

1. every open WebSocket is closed with 1001 (going away), so clients reconnect to
   another replica at once;
2. uvicorn is asked to stop as it would be for any exit (`Server.should_exit`): it stops
   accepting connections and lets in-flight requests finish, for at most
   `GRACE_SECONDS` unless `--timeout-graceful-shutdown` says otherwise;
3. the app's shutdown hooks run and the process exits with 0.

Under any other server, or in tests that run the app in-process, nothing is installed.
A test runs the real `uvicorn app.main:app` and sends it SIGTERM (tests/test_shutdown.py):
if a uvicorn upgrade changes how it handles the signal, that test fails.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Final

from uvicorn import Server

__all__ = ["GRACE_SECONDS", "drain_on_sigterm"]

logger = logging.getLogger(__name__)

GRACE_SECONDS: Final = 10
# Closing sockets takes milliseconds; never let it hold up the rest of the shutdown.
_DRAIN_TIMEOUT_S: Final = 2.0


def drain_on_sigterm(server: Server, drain: Callable[[], Awaitable[None]]) -> None:
    """Run `drain` first when `server` gets SIGTERM, then stop it.

    Call from a startup hook (on the event loop, in the main thread), with the server from
    app/server.py's `running_server()`.
    """
    if server.config.timeout_graceful_shutdown is None:
        server.config.timeout_graceful_shutdown = GRACE_SECONDS
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []

    async def stop() -> None:
        try:
            async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                await drain()
        except Exception:
            logger.exception("closing sockets on shutdown failed")
        finally:
            # As for a normal exit: not recorded as a signal, so uvicorn does not raise
            # SIGTERM at itself afterwards and the process exits with 0.
            server.should_exit = True

    def begin() -> None:
        if not started:
            logger.info("SIGTERM: closing sockets, finishing requests, then exiting")
            started.append(loop.create_task(stop()))

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(begin)

    signal.signal(signal.SIGTERM, on_sigterm)
