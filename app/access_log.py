"""Request ids and the access line the gateway (app/gateway.py) writes per request.

The access line carries method, path, status, duration, request id, the client's own
X-Request-ID (`client_request_id`, when it sent a sane one) and the caller's `sub`. The
request id is always the server's, unique, and the one the response's X-Request-ID
header carries: a client cannot choose it, so it cannot make two requests share one or
reuse an id the server gave out earlier (issue 19). The line never includes headers or
the query string, so neither the Authorization header nor a WebSocket `?token=` can leak
into logs.

Cost: this runs on every request, so it does the least it can there. With the logging set
up by app.logging.configure_logging, the line is queued as a Struct on the root handler's
queue and encoded by its listener thread; going through `logging` (record, lock,
formatter) cost about as much as the request itself (scripts/bench). When logging is
configured otherwise (another handler or filter, e.g. pytest's caplog), the line goes
through `logging`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from random import getrandbits

import msgspec

from app.logging import root_handler

__all__ = [
    "AccessLine",
    "RequestIdHeader",
    "TracedAccessLine",
    "add_trace_ids",
    "client_request_id",
    "log_access",
    "new_request_id",
]

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = b"x-request-id"

# The response header that carries a request id, as ASGI wants it.
RequestIdHeader = tuple[bytes, bytes]

access_logger = logging.getLogger("app.access")


class AccessLine(msgspec.Struct, kw_only=True):
    """One access line, in the key order JsonFormatter gives a logged record."""

    ts: float
    level: str = "info"
    logger: str = "app.access"
    msg: str = "request"
    method: str
    path: str
    status: int
    duration_ms: float
    request_id: str
    client_request_id: str | None
    sub: str | None


class TracedAccessLine(AccessLine, kw_only=True):
    """The access line of a request inside a trace (app/tracing, when it is on)."""

    trace_id: str
    span_id: str


# The current span's (trace_id, span_id), or None outside one: set by app/tracing when
# tracing is on, so access lines written on the fast path carry them too.
TraceIds = Callable[[], "tuple[str, str] | None"]
_trace_ids: TraceIds | None = None


def add_trace_ids(current_ids: TraceIds) -> None:
    global _trace_ids
    _trace_ids = current_ids


def log_access(
    *,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    request_id: str,
    sub: str | None,
    client_request_id: str | None = None,
) -> None:
    """Write the access line for one request."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    # Straight onto our queue while its handler is the only place the line would go
    # (checked inline: this runs on every request).
    handler, handlers = root_handler(), logging.root.handlers
    if (
        len(handlers) == 1
        and handlers[0] is handler
        and not (access_logger.handlers or access_logger.filters or handler.filters)
        and access_logger.propagate
        and access_logger.parent is logging.root
    ):
        line = AccessLine(
            ts=int(time.time() * 1000) / 1000,  # to the millisecond; round() costs more
            method=method,
            path=path,
            status=status,
            duration_ms=duration_ms,
            request_id=request_id,
            client_request_id=client_request_id,
            sub=sub,
        )
        # The traced line is built from the plain one: passing the trace ids as a `**` splat
        # on every request cost 1.1 µs of the event loop's time per line.
        if _trace_ids is not None and (current := _trace_ids()) is not None:
            line = TracedAccessLine(
                **msgspec.structs.asdict(line), trace_id=current[0], span_id=current[1]
            )
        handler.put(line)
        return
    extra = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
    ids = {"request_id": request_id, "client_request_id": client_request_id}
    access_logger.info("request", extra={**extra, **ids, "sub": sub})


def new_request_id() -> tuple[str, RequestIdHeader]:
    """A new, unique request id, with its X-Request-ID response header."""
    # 128 random bits as 32 hex characters, like a uuid4. Unique, not secret (it names a
    # request in logs; it guards nothing), so the random module's generator serves: seeded
    # from the OS, re-seeded in a forked child, and no system call per request, unlike
    # os.urandom (strace of a loaded API showed that getrandom as its one extra system call
    # per request). `python -m timeit -s "from random import getrandbits"
    # "getrandbits(128).to_bytes(16).hex()"`: 0.12 µs, against 0.31 µs for the same bits
    # through f"{…:032x}" and 1.36 µs for secrets.token_hex(16).
    request_id = getrandbits(128).to_bytes(16).hex()
    return request_id, (_HEADER, request_id.encode())


def client_request_id(client_value: bytes | None) -> str | None:
    """The client's own X-Request-ID when it is a sane token (it is logged, never echoed)."""
    if client_value is None:
        return None
    candidate = client_value.decode("latin-1")
    return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
