"""Builds the ASGI application: `uvicorn app.main:app`.

Wiring only: plugins, controllers and configuration come from their own modules.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State

from app.auth.plugin import KeycloakAuthPlugin
from app.config import SETTINGS_STATE_KEY, ConfigError, Settings, get_settings
from app.cors import Cors
from app.db import build_sqlalchemy_plugin
from app.docs import (
    build_openapi_config,
    document_error_responses,
    mark_legacy_aliases,
    openapi_json,
)
from app.domains import domain_route_handlers
from app.errors import exception_handlers
from app.gateway import Gateway, unrouted_exception_handlers
from app.health.controller import HealthController
from app.http_input import BoundedRequest
from app.jobs.plugin import build_jobs_plugins
from app.lifecycle import freeze_startup_objects, limit_malloc_arenas
from app.limits import LimitsPlugin
from app.logging import configure_logging
from app.metrics import metrics_routes
from app.realtime import RealtimePlugin
from app.redis import RedisPlugin
from app.scaffold import ScaffoldPlugin
from app.tracing import api_plugins as tracing_plugins
from app.users.controller import CurrentUserController
from app.users.erase import EraseController

__all__ = ["app", "create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    limit_malloc_arenas()  # before the log writer, the first thread, starts
    configure_logging(settings.log_level)
    auth = KeycloakAuthPlugin(settings)
    redis = RedisPlugin(settings.redis_url)
    limits = LimitsPlugin(settings, redis.client)
    # Applied by the gateway (app/cors.py), not by Litestar's cors_config.
    cors = Cors(
        CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "X-Trace-Id", "Retry-After"],
            max_age=600,
        )
    )
    return Litestar(
        route_handlers=[
            HealthController,
            CurrentUserController,
            EraseController,
            # Each package under app/ with a models.py (app/domains.py).
            *domain_route_handlers(),
            openapi_json,
            *metrics_routes(settings),
        ],
        plugins=[
            build_sqlalchemy_plugin(settings),
            redis,
            RealtimePlugin(settings),
            *build_jobs_plugins(settings),
            auth,
            limits,  # after redis: its shutdown flush runs before the client closes
            ScaffoldPlugin(),  # the `litestar domain new` command
            *tracing_plugins(),  # none unless OTEL_EXPORTER_OTLP_ENDPOINT is set
        ],
        middleware=[Gateway(auth.authenticator, limits.requests, cors)],
        exception_handlers={**exception_handlers, **unrouted_exception_handlers(cors)},
        # Bodies are bounded before they are decoded (app/http_input.py).
        request_class=BoundedRequest,
        request_max_body_size=settings.max_request_body_bytes,
        openapi_config=build_openapi_config(auth.openapi_components(), settings),
        on_startup=[mark_legacy_aliases, document_error_responses, freeze_startup_objects],
        state=State({SETTINGS_STATE_KEY: settings}),
        # Logging is configured above, as JSON; Litestar's own setup would replace it.
        logging_config=None,
        debug=False,
    )


try:
    app = create_app()
except ConfigError as error:
    # One clear line instead of a traceback: the message names the variable.
    raise SystemExit(f"configuration error: {error}") from None
