"""Everything that touches OpenTelemetry; imported only when tracing is on (app/tracing).

- The SDK reads the standard variables itself: the exporter (OTLP over HTTP/protobuf)
  `OTEL_EXPORTER_OTLP_ENDPOINT`, the sampler `OTEL_TRACES_SAMPLER`/`_ARG`, the resource
  `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES` (service name `app-api` / `app-worker`
  when neither names one), the batching `OTEL_BSP_*`.
- HTTP and WebSocket spans come from Litestar's OpenTelemetry middleware (the ASGI
  instrumentation). It is shown a copy of the request's scope that holds only the method,
  the path, the host and the trace headers: no query string (a WebSocket's `?token=`),
  no other header, no client address. The span is renamed to method + route template
  once Litestar has routed the request, so a raw path never names a span.
- PostgreSQL (asyncpg: the statement with `$n` placeholders, never the values) and Redis
  (`COMMAND ? ?`, never the arguments) come from their instrumentation packages. A
  database or Redis call made outside any request or job (the worker's polling, the
  sweep, liveness) starts no trace of its own.
- An error is recorded by its exception's type, never its text (`ErrorTypesOnly`).
- Log lines written inside a span carry `trace_id` and `span_id` (a log record factory,
  and the access line's own hook); HTTP responses carry `X-Trace-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.plugins import InitPlugin, PluginProtocol
from litestar.plugins.opentelemetry import (
    OpenTelemetryConfig,
    OpenTelemetryInstrumentationMiddleware,
)
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar_saq import SAQPlugin
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import (
    Link,
    SpanKind,
    Status,
    StatusCode,
    TraceState,
    format_span_id,
    format_trace_id,
)
from opentelemetry.util.types import Attributes
from redis.exceptions import RedisError

from app.access_log import add_trace_ids

__all__ = [
    "api_plugins",
    "current_context_carrier",
    "current_trace_ids",
    "internal_span",
    "link_socket_to_job",
    "start",
    "traced_job",
]

logger = logging.getLogger(__name__)

JobFunction = TypeVar("JobFunction", bound=Callable[..., Awaitable[Any]])

TRACE_ID_HEADER = b"x-trace-id"
# All a span learns of a request's headers: where it was sent, and the caller's trace.
_HEADERS_SHOWN = frozenset({b"host", b"traceparent", b"tracestate"})
_REAL_SCOPE = "app.tracing.scope"
# How long a socket waits for its job's trace context before following without a link.
_LINK_LOOKUP_TIMEOUT_S = 1.0

_started = False


# --- the provider -------------------------------------------------------------------------


class NoLoneClientSpans(Sampler):
    """The configured sampler, except that a client call (SQL, Redis) outside any request
    or job is not recorded: the worker polls Redis every second, and each poll would
    otherwise be a trace of one span."""

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and not (
            trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoLoneClientSpans{{{self._sampler.get_description()}}}"


class ErrorTypesOnly(trace.TracerProvider):
    """Hands out tracers whose spans name an exception's type and never quote it.

    An exception's text can hold data: PostgreSQL's messages quote input values, and
    SQLAlchemy's add the statement's parameters. The SDK would put that text in the span
    (an exception event, and the error status's description); the instrumentation
    packages, Litestar's middleware and this module all take their tracers from here.
    """

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _ErrorTypesOnlyTracer(self._provider.get_tracer(*args, **kwargs))


class _ErrorTypesOnlyTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        # An unended span is the caller's to close; it records nothing by itself.
        kwargs.update(record_exception=False, set_status_on_exception=False)
        return self._tracer.start_span(*args, **kwargs)

    @contextlib.contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:  # type: ignore[override]
        kwargs.update(record_exception=False, set_status_on_exception=False)
        with self._tracer.start_as_current_span(*args, **kwargs) as span:
            try:
                yield span
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise


_tracer: trace.Tracer = trace.NoOpTracer()


def current_trace_ids() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format_trace_id(context.trace_id), format_span_id(context.span_id)


def with_trace_ids(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A log record factory that adds `trace_id` and `span_id` inside a span.

    A record factory rather than a handler filter: it works whatever the handlers are,
    and leaves the access line's fast path (app/access_log.py) on, which a filter on the
    root handler turns off (that path through `logging` cost /health 90 µs a request).
    """

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        ids = current_trace_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return record

    return make_record


def start(default_service_name: str) -> None:
    """Set up this process's tracing once: provider, exporter, instrumentation, log ids."""
    global _started, _tracer
    if _started:
        return
    _started = True
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    provider.sampler = NoLoneClientSpans(provider.sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    private = ErrorTypesOnly(provider)
    _tracer = private.get_tracer("app")
    AsyncPGInstrumentor().instrument(  # type: ignore[no-untyped-call]
        tracer_provider=private
    )
    RedisInstrumentor().instrument(tracer_provider=private)
    logging.setLogRecordFactory(with_trace_ids(logging.getLogRecordFactory()))
    add_trace_ids(current_trace_ids)
    logger.info("tracing on: %s", resource.attributes.get(SERVICE_NAME))


# --- the API ------------------------------------------------------------------------------


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The name a request's span starts with: its method; the route is known later."""
    return str(scope.get("method", "WS")), {}


class PrivateRequestSpans(OpenTelemetryInstrumentationMiddleware):
    """Litestar's OpenTelemetry middleware, shown only what a span may hold (see above);
    names the span after the route template and adds `X-Trace-Id` to every response."""

    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        async def with_real_scope(view: Scope, receive: Receive, send: Send) -> None:
            await app(cast("Scope", view.get(_REAL_SCOPE, view)), receive, send)

        super().__init__(app=with_real_scope, config=config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        view: dict[str, Any] = {
            **scope,
            "query_string": b"",
            "client": None,
            "headers": [item for item in scope["headers"] if item[0] in _HEADERS_SHOWN],
            _REAL_SCOPE: scope,
        }

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                span = trace.get_current_span()
                template = scope.get("path_template")
                if template:
                    method = scope.get("method", "WS")
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                context = span.get_span_context()
                if message["type"] == "http.response.start" and context.is_valid:
                    trace_id = format_trace_id(context.trace_id).encode()
                    headers = [*message.get("headers", ()), (TRACE_ID_HEADER, trace_id)]
                    message = {**message, "headers": headers}
            await send(message)

        await self.open_telemetry_middleware(view, receive, send_with_trace_id)  # type: ignore[arg-type]


class TracingPlugin(InitPlugin):
    """Starts the API's tracing and puts the request middleware outermost.

    Through `middleware=`, not `OpenTelemetryPlugin(config)`: Litestar 2.25's plugin
    builds the stock middleware and ignores `config.middleware_class`, while a config's
    middleware found in `middleware=` becomes the plugin with that class.
    """

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        start("app-api")
        config = OpenTelemetryConfig(
            tracer_provider=ErrorTypesOnly(trace.get_tracer_provider()),
            middleware_class=PrivateRequestSpans,
            scope_span_details_extractor=_span_details,
            # One span per request, not one more per ASGI message.
            exclude_spans=["receive", "send"],
        )
        app_config.middleware.append(config.middleware)
        return app_config


def api_plugins() -> list[PluginProtocol]:
    return [TracingPlugin()]


async def link_socket_to_job(
    connection: ASGIConnection[Any, Any, Any, Any], job_id: uuid.UUID
) -> None:
    """Link the socket's span to the request that queued the job (its SAQ job's meta)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    try:
        settings = connection.app.state["job_settings"]
        queue = connection.app.plugins.get(SAQPlugin).get_queues().get(settings.saq_queue)
        async with asyncio.timeout(_LINK_LOOKUP_TIMEOUT_S):
            job = await queue.job(str(job_id))
    except (RedisError, TimeoutError, KeyError) as exc:
        logger.debug("no trace link for job %s: %r", job_id, exc)
        return
    if job is None or not job.meta:
        return
    queued_by = trace.get_current_span(propagate.extract(job.meta)).get_span_context()
    if queued_by.is_valid:
        span.add_link(queued_by, {"job.id": str(job_id)})


# --- the worker ---------------------------------------------------------------------------


def current_context_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def traced_job(function: JobFunction) -> JobFunction:
    name = function.__name__

    @functools.wraps(function)
    async def run(ctx: Any, **kwargs: Any) -> Any:
        job = ctx.get("job")
        carrier = job.meta if job is not None and job.meta else {}
        attributes: dict[str, str | int] = {"messaging.system": "saq", "job.kind": name}
        if job is not None:
            attributes["job.id"] = job.key
            attributes["job.attempt"] = job.attempts
            if job.queue is not None:
                attributes["messaging.destination.name"] = job.queue.name
        # A job queued by a request continues its trace; a cron run starts its own.
        with _tracer.start_as_current_span(
            f"job {name}",
            context=propagate.extract(carrier, context=Context()),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            return await function(ctx, **kwargs)

    return run  # type: ignore[return-value]


def internal_span(
    name: str, attributes: Mapping[str, str | int] | None
) -> contextlib.AbstractContextManager[Any]:
    return _tracer.start_as_current_span(name, attributes=attributes)
