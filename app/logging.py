"""Structured (JSON) logs and one access line per request.

The access line carries method, path, status, duration, request id and the caller's
`sub`. It never includes headers or the query string, so neither the Authorization
header nor a WebSocket `?token=` can leak into logs.

Cost: an access line is written for every request, and going through `logging` (record,
handler lock, formatter, one write per line) cost about as much as the request itself
(scripts/bench). So with the configuration set up here, the middleware encodes the line
itself and every line, access or not, goes to one background writer that writes them in
order, in batches, from its own thread: the event loop never waits on a slow stderr. When
logging is configured otherwise (another handler or filter, e.g. pytest's caplog), the
access line goes through `logging` like any record.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections import deque
from functools import partial
from typing import IO, Any, cast

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JsonFormatter",
    "JsonLineHandler",
    "LineWriter",
    "RequestLoggingMiddleware",
    "configure_logging",
    "log_access",
]

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_encoder = msgspec.json.Encoder()

access_logger = logging.getLogger("app.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


class LineWriter:
    """Writes finished log lines to a stream from a daemon thread, a batch at a time.

    `write` only appends to a deque (thread-safe without a lock) and wakes the thread at
    most once per batch; the thread pauses `interval` seconds after each batch, so a busy
    process makes a few dozen writes a second, not one per line. Lines keep their order.
    A line waits at most about `interval` (plus the write) before it reaches the stream;
    `flush()` (called by logging at exit) writes whatever is pending at once.
    """

    def __init__(self, stream: IO[str], *, interval: float = 0.02, max_pending: int = 100_000):
        self._stream = stream
        self._interval = interval
        self._max_pending = max_pending
        self._pending: deque[bytes] = deque()
        self._dropped = 0
        self._woken = False
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def stream(self) -> IO[str]:
        return self._stream

    def write(self, line: bytes) -> None:
        """Queue one line (ending in a newline)."""
        if len(self._pending) >= self._max_pending:
            # The stream is not keeping up; bounded memory beats an ever-growing queue.
            self._dropped += 1
            return
        self._pending.append(line)
        if not self._woken:
            self._woken = True
            if self._thread is None:
                self._start()
            self._wake.set()

    def flush(self) -> None:
        with self._write_lock:
            self._drain()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            # Reset before draining: a line queued from here on wakes the thread again.
            self._woken = False
            with self._write_lock:
                self._drain()
            time.sleep(self._interval)

    def _drain(self) -> None:
        pending, batch = self._pending, []
        while pending:
            batch.append(pending.popleft())
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            notice = {"ts": round(time.time(), 3), "level": "warning", "logger": __name__}
            notice["msg"] = f"{dropped} log lines dropped: the log stream is not keeping up"
            batch.append(_encoder.encode(notice) + b"\n")
        if not batch:
            return
        data = b"".join(batch)
        try:
            binary = getattr(self._stream, "buffer", None)
            if binary is not None:
                self._stream.flush()  # anything written through the text layer goes first
                binary.write(data)
                binary.flush()
            else:
                self._stream.write(data.decode())
                self._stream.flush()
        except (OSError, ValueError):
            pass  # the stream is closed or gone: there is nowhere left to log to

    def after_fork(self) -> None:
        # The thread does not survive a fork, and the parent writes its own pending lines.
        self._pending = deque()
        self._woken = False
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread = None


class JsonLineHandler(logging.Handler):
    """The root handler: JSON lines through a `LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record).encode() + b"\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush()


# The handler installed by configure_logging; the access line takes its fast path only
# while this is still the one and only place log records go.
_handler: JsonLineHandler | None = None


def configure_logging(level: str) -> None:
    global _handler
    writer = _handler.writer if _handler is not None else None
    if writer is None or writer.stream is not sys.stderr:
        if writer is not None:
            writer.flush()
        writer = LineWriter(sys.stderr)
    _handler = JsonLineHandler(writer)
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours (and print query strings).
    logging.getLogger("uvicorn.access").disabled = True


def _reset_writer_after_fork() -> None:
    if _handler is not None:
        _handler.writer.after_fork()


os.register_at_fork(after_in_child=_reset_writer_after_fork)


def _access_fast_path() -> JsonLineHandler | None:
    """Our handler when a record from `app.access` would reach it and nothing else."""
    handler = _handler
    logger = access_logger
    while handler is not None:
        if logger.filters:
            return None
        parent = logger.parent
        if parent is None:  # the root
            handlers = logger.handlers
            if len(handlers) == 1 and handlers[0] is handler and not handler.filters:
                return handler
            return None
        if logger.handlers or not logger.propagate:
            return None
        logger = parent
    return None


def log_access(
    *, method: str, path: str, status: int, duration_ms: float, request_id: str, sub: str | None
) -> None:
    """Write the access line for one request."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    handler = _access_fast_path()
    if handler is None:
        extra = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
        access_logger.info("request", extra={**extra, "request_id": request_id, "sub": sub})
        return
    # The same line JsonFormatter would make from the record, without building one.
    entry = {
        "ts": round(time.time(), 3),
        "level": "info",
        "logger": "app.access",
        "msg": "request",
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "request_id": request_id,
        "sub": sub,
    }
    handler.writer.write(_encoder.encode(entry) + b"\n")


class RequestLoggingMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __call__(self, app: ASGIApp) -> ASGIApp:
        # Litestar's ASGIMiddleware wrapper checks the scope type and exclusions on every
        # request; this middleware excludes nothing and route middleware only ever sees
        # HTTP and WebSocket scopes, so `handle` is called directly.
        return partial(self.handle, next_app=app)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and not status:
                status = 403
            await send(message)

        try:
            await next_app(scope, receive, send_with_request_id)
        finally:
            log_access(
                method=cast("str", scope.get("method", "WS")),
                path=scope["path"],
                status=status or 500,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=request_id,
                sub=getattr(scope.get("user"), "sub", None),
            )


class _RequestIds:
    """Unique request ids without a system call per request (uuid4 reads os.urandom).

    32 hex characters like a uuid4: a random per-process prefix, then a counter.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_request_ids = _RequestIds()


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return _request_ids.next()
