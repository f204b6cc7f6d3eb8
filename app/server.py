"""The uvicorn server this process runs under, and what the API sets on it at startup.

The app finds the server through the SIGTERM handler uvicorn installs (uvicorn is pinned to
its checked minor in pyproject.toml; tests/test_shutdown.py and
tests/realtime/test_socket_abuse.py run the real `uvicorn app.main:app` and fail if
an upgrade changes this). Under any other server, or in tests that run the app
in-process, there is none and nothing is changed.

WebSocket compression (permessage-deflate) is turned off, whatever the command line said:
a client sends messages that compress to almost nothing, each inflates to the 64 KiB cap,
and the server queues every message of a network read before it pauses reading. Measured
with 20 clients sending 64 KiB of one repeated letter and never reading, for 30 s
(tests/realtime/test_socket_abuse.py; `uvicorn app.main:app`, uvicorn 0.54):
one API process grew from 104 MiB to 1,854 MiB with compression, and stayed at 115 MiB
without. Job progress messages are a few hundred bytes: compression gains nothing there.
"""

from __future__ import annotations

import signal
import threading

from uvicorn import Server

__all__ = ["running_server", "turn_off_websocket_compression"]


def running_server() -> Server | None:
    """The uvicorn server of this process, from a startup hook (main thread), or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return server if isinstance(server, Server) else None


def turn_off_websocket_compression(server: Server) -> None:
    """Sockets accepted from now on negotiate no compression."""
    server.config.ws_per_message_deflate = False
