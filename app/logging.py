"""Structured (JSON) logs: one object per line, written off the event loop.

Every line goes to one background writer that writes them in order, in batches, from its
own thread, so the event loop never waits on a slow stderr.

No line carries a credential: uvicorn's own loggers (which print a WebSocket handshake's
path with its `?token=`) are routed through the same JSON handler, and every line that
handler writes has bearer tokens, token-like query parameters and anything shaped like a
JWT replaced by `[redacted]`. The access line (app/access_log.py) never holds a query
string or a header in the first place, so it skips this pass.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from typing import IO, Any
from urllib.parse import quote, unquote

import msgspec

__all__ = [
    "JsonFormatter",
    "JsonLineHandler",
    "LineWriter",
    "RedactSecrets",
    "configure_logging",
    "redact_secrets",
    "root_handler",
]

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
_encoder = msgspec.json.Encoder()

REDACTED = "[redacted]"
# Query parameters whose value is a credential: token, access_token, id_token, client_secret…
_SECRET_PARAMETER = re.compile(
    r"(\b[\w.-]*(?:token|secret|password|passwd|api_?key)=)[^&#\s\"'\\]+", re.IGNORECASE
)
# `Authorization: Bearer …` / `Basic …` values, wherever they were quoted.
_AUTHORIZATION_VALUE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# A JWT anywhere else (base64url header and payload of a JSON object, then a signature).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def _keep_name(match: re.Match[str]) -> str:
    return f"{match[1]}{REDACTED}"


def _keep_scheme(match: re.Match[str]) -> str:
    return f"{match[1]} {REDACTED}"


# A run of URL characters holding a percent-escape: `?to%6Ben=%65%79%4A…` is a token too.
_ENCODED_RUN = re.compile(r"[^\s\"'<>\\]*%[0-9A-Fa-f]{2}[^\s\"'<>\\]*")
# Kept as they are when a run is written back: what URLs show unescaped, and the brackets
# of `[redacted]`. Everything else (quotes, backslashes, controls) stays escaped.
_URL_SAFE = "/?&=:;,+@!$'()*[]"


def _redact_encoded(match: re.Match[str]) -> str:
    run = match[0]
    decoded = run
    for _ in range(3):  # escapes of escapes: %2565 is %65 is e
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    cleaned = _redact_plain(decoded)
    return run if cleaned == decoded else quote(cleaned, safe=_URL_SAFE)


def redact_secrets(text: str) -> str:
    """`text` with every credential-looking value replaced by `[redacted]`, also where
    the name or the value is percent-encoded.

    Replacements are functions, not `\\1` templates: `re` compiles a template on first
    use (an import), and lines logged while the interpreter shuts down can import nothing.
    """
    if "%" in text:
        text = _ENCODED_RUN.sub(_redact_encoded, text)
    return _redact_plain(text)


def _redact_plain(text: str) -> str:
    text = _SECRET_PARAMETER.sub(_keep_name, text)
    text = _AUTHORIZATION_VALUE.sub(_keep_scheme, text)
    return _JWT.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message without credentials, before any handler sees it.

    Attached to uvicorn's loggers, so a handler someone adds to them later (a custom
    `--log-config`) still never receives a token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


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
        # Last, over the whole line: extras and tracebacks may quote a URL or a header too.
        return redact_secrets(_encoder.encode(entry).decode())


class LineWriter:
    """Writes log lines to a stream from a daemon thread, a batch at a time.

    A line is either finished bytes or a msgspec Struct, which the thread encodes as one
    JSON object: the request path then only builds the Struct (see app/access_log.py).

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
        self._pending: deque[bytes | msgspec.Struct] = deque()
        self._dropped = 0
        self._woken = False
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def stream(self) -> IO[str]:
        return self._stream

    def write(self, line: bytes | msgspec.Struct) -> None:
        """Queue one line: bytes ending in a newline, or a Struct to encode as JSON."""
        if sys.is_finalizing():
            # The interpreter is going away (e.g. asyncio reporting a task it destroyed):
            # the writer thread may be frozen holding its own locks, and no new thread can
            # start. Waking it would hang the exit, so this line and whatever is still
            # queued are written here, without a lock.
            self._pending.append(line)
            self._drain()
            return
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
            line = pending.popleft()
            batch.append(line if type(line) is bytes else _encoder.encode(line) + b"\n")
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


# The handler installed by configure_logging.
_handler: JsonLineHandler | None = None


def root_handler() -> JsonLineHandler | None:
    """The handler configure_logging installed (callers check it is still the root's)."""
    return _handler


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
    # uvicorn's other loggers print through their own plain-text handler by default, and
    # log each WebSocket handshake with its query string (`?token=…`): send them through
    # ours instead, cleaned at the source as well.
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        if not any(isinstance(existing, RedactSecrets) for existing in logger.filters):
            logger.addFilter(RedactSecrets())


_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def _reset_writer_after_fork() -> None:
    if _handler is not None:
        _handler.writer.after_fork()


os.register_at_fork(after_in_child=_reset_writer_after_fork)


class RoutineCronFilter(logging.Filter):
    """Drops SAQ's INFO lines about cron jobs (enqueued, scheduled, processing, finished).

    The worker's sweep runs every few seconds; its own logger speaks when it corrects
    something, so SAQ's four lines per run were noise. Lines about other jobs, and any
    warning or error about a cron job, still pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        return ":cron:" not in record.getMessage() and "key: cron:" not in record.getMessage()


def quiet_routine_cron() -> None:
    """Attach RoutineCronFilter to SAQ's logger (the worker calls this at start)."""
    saq_logger = logging.getLogger("saq")
    if not any(isinstance(f, RoutineCronFilter) for f in saq_logger.filters):
        saq_logger.addFilter(RoutineCronFilter())
