"""OpenTelemetry traces, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (API.md, Tracing).

This module is the switch and the hooks the rest of the app calls; it imports nothing
of OpenTelemetry. Everything that does is in `app/tracing/otel.py`, imported only when
tracing is on. Off, each hook is a flag check (the request path pays nothing else).

Off also means not loaded by anyone else: with the `tracing` extra installed, redis-py
7.4 imports the OpenTelemetry SDK's metrics at import time, Litestar imports its
OpenTelemetry plugin (and the ASGI instrumentation) in every `Litestar()`, and
litestar-saq imports the OpenTelemetry API. Together that was 95 modules, 3 MiB of
every API process (`import app.main`: RSS 102.9 MiB, 99.8 with this gate) and 0.3-0.5 s
of its start-up on the 2-core reference machine (`python -X importtime`); checked by
tests/test_process_footprint.py. `keep_opentelemetry_unloaded`, called first thing by
`app/__init__.py`, makes `opentelemetry` unimportable in such a process (a `None` in
`sys.modules`, which the import system answers with ModuleNotFoundError), so those
libraries take their "not installed" branch. A process that loaded OpenTelemetry before
the app (a test runner, `opentelemetry-instrument`) is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.plugins import PluginProtocol

__all__ = [
    "ENABLED",
    "ENDPOINT_VARIABLE",
    "api_plugins",
    "job_trace_context",
    "keep_opentelemetry_unloaded",
    "link_socket_to_job",
    "span",
    "start_worker_tracing",
    "traced_job",
]

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
# Decided once per process: the gate below and every hook agree on it.
ENABLED = bool(os.environ.get(ENDPOINT_VARIABLE, "").strip())

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()

JobFunction = TypeVar("JobFunction", bound=Callable[..., Awaitable[Any]])


def keep_opentelemetry_unloaded() -> None:
    """Tracing off: no library may load OpenTelemetry into this process (see above)."""
    if not ENABLED and "opentelemetry" not in sys.modules:
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]


def api_plugins() -> list[PluginProtocol]:
    """For `Litestar(plugins=...)`: Litestar's OpenTelemetry plugin and ours, or nothing."""
    if not ENABLED:
        return []
    from app.tracing import otel

    return otel.api_plugins()


def start_worker_tracing() -> None:
    """The worker's exporter, DB and Redis instrumentation and log fields (when on)."""
    if ENABLED:
        from app.tracing import otel

        otel.start("app-worker")


def job_trace_context() -> dict[str, str]:
    """The current trace context (W3C `traceparent`) to carry in a job's `meta`."""
    if not ENABLED:
        return {}
    from app.tracing import otel

    return otel.current_context_carrier()


def traced_job(function: JobFunction) -> JobFunction:
    """A SAQ function whose run is a span: a child of the request that queued the job
    (its `meta` carries the context), or the root of its own trace (cron)."""
    if not ENABLED:
        return function
    from app.tracing import otel

    return otel.traced_job(function)


def span(
    name: str, attributes: Mapping[str, str | int] | None = None
) -> AbstractContextManager[Any]:
    """A span around a piece of work (a job's step), current inside the block."""
    if not ENABLED:
        return _NOTHING
    from app.tracing import otel

    return otel.internal_span(name, attributes)


async def link_socket_to_job(
    connection: ASGIConnection[Any, Any, Any, Any], job_id: uuid.UUID
) -> None:
    """Link the socket's span to the trace of the job it follows (best effort)."""
    if ENABLED:
        from app.tracing import otel

        await otel.link_socket_to_job(connection, job_id)
