"""Structured (JSON) logs: one object per line, written off the event loop.

The standard library's pair does the writing: the root handler is a `QueueHandler` that
formats each record as a JSON line and queues it, and a `QueueListener` thread writes the
queued lines to stderr, in order, a batch at a time, so the event loop never waits on a
slow stderr. At exit `logging.shutdown` closes the handler, which drains the queue; a line
logged while the interpreter finalizes (the thread may be gone) is written at once. A
process forked after `configure_logging` calls it again (uvicorn's and SAQ's extra
processes import the app anew): the thread does not survive a fork.

No line carries a credential: uvicorn's own loggers (which print a WebSocket handshake's
path with its `?token=`) are routed through the same JSON handler, and every line that
handler writes has bearer tokens, token-like query parameters and anything shaped like a
JWT replaced by `[redacted]`. The access line (app/access_log.py) never holds a query
string or a header in the first place, so it skips this pass.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue
from typing import IO, Any
from urllib.parse import quote, unquote

import msgspec

__all__ = [
    "JsonFormatter",
    "JsonLineListener",
    "JsonQueueHandler",
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


# Lines per write at most, when they keep coming faster than the queue empties.
MAX_BATCH = 1000


def _write(stream: IO[str], lines: list[bytes]) -> None:
    data = b"".join(lines)
    try:
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            stream.flush()  # anything written through the text layer goes first
            binary.write(data)
            binary.flush()
        else:
            stream.write(data.decode())
            stream.flush()
    except (OSError, ValueError):
        pass  # the stream is closed or gone: there is nowhere left to log to


def _as_line(item: bytes | msgspec.Struct) -> bytes:
    return item if type(item) is bytes else _encoder.encode(item) + b"\n"


class JsonLineListener(QueueListener):
    """The standard `QueueListener`, writing the queued lines itself (they arrive
    formatted, or as Structs it encodes: see app/access_log.py) a batch at a time.

    After each write it pauses `interval` seconds while lines gather, so a busy process
    makes a few dozen writes a second, not one per line. A `threading.Event` in the queue
    is a flush: it is set once everything queued before it is written.
    """

    def __init__(self, queue: SimpleQueue[Any], stream: IO[str], *, interval: float) -> None:
        super().__init__(queue)
        self.pending = queue  # `queue`, typed
        self.stream = stream
        self.interval = interval
        self._batch: list[bytes] = []

    def handle(self, record: Any) -> None:
        if isinstance(record, threading.Event):
            _write(self.stream, self._batch)
            self._batch = []
            record.set()
            return
        self._batch.append(_as_line(record))
        caught_up = self.pending.empty()
        if caught_up or len(self._batch) >= MAX_BATCH:
            _write(self.stream, self._batch)
            self._batch = []
        if caught_up:
            time.sleep(self.interval)

    def stop(self) -> None:
        super().stop()  # everything queued before the stop is handled first
        _write(self.stream, self._batch)
        self._batch = []


class JsonQueueHandler(QueueHandler):
    """The root handler: each record as one JSON line (`JsonFormatter`), queued for a
    `JsonLineListener` thread. At most `max_pending` lines wait; past that a line is
    dropped and counted, and the count is logged once the queue has room again."""

    def __init__(
        self, stream: IO[str], *, interval: float = 0.02, max_pending: int = 100_000
    ) -> None:
        queue: SimpleQueue[Any] = SimpleQueue()
        super().__init__(queue)
        self.pending = queue  # `queue`, typed
        self.setFormatter(JsonFormatter())
        self.stream = stream
        self.max_pending = max_pending
        self.dropped = 0
        self.listener = JsonLineListener(queue, stream, interval=interval)
        self.listener.start()
        self.listening = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.put(self.format(record).encode() + b"\n")
        except Exception:
            self.handleError(record)

    def put(self, line: bytes | msgspec.Struct) -> None:
        """Queue one line: bytes ending in a newline, or a Struct to encode as JSON."""
        if not self.listening or sys.is_finalizing():
            # Closed at exit, or the interpreter is going away (e.g. asyncio reporting a
            # task it destroyed): the thread may be gone or frozen, so write it here.
            _write(self.stream, [_as_line(line)])
            return
        queue = self.pending
        if queue.qsize() >= self.max_pending:
            # The stream is not keeping up; bounded memory beats an ever-growing queue.
            self.dropped += 1
            return
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            notice = {"ts": round(time.time(), 3), "level": "warning", "logger": __name__}
            notice["msg"] = f"{dropped} log lines dropped: the log stream is not keeping up"
            queue.put_nowait(_encoder.encode(notice) + b"\n")
        queue.put_nowait(line)

    def flush(self) -> None:
        """Wait (at most 5 s) until every line queued so far is written."""
        if self.listening and not sys.is_finalizing():
            written = threading.Event()
            self.pending.put_nowait(written)
            written.wait(timeout=5)

    def close(self) -> None:
        if self.listening:
            self.listening = False  # from here on lines are written at once
            self.listener.stop()
        super().close()


# The handler installed by configure_logging.
_handler: JsonQueueHandler | None = None


def root_handler() -> JsonQueueHandler | None:
    """The handler configure_logging installed (callers check it is still the root's)."""
    return _handler


def configure_logging(level: str) -> None:
    global _handler
    if _handler is None or _handler.stream is not sys.stderr or not _handler.listening:
        if _handler is not None:
            _handler.close()
        _handler = JsonQueueHandler(sys.stderr)
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
