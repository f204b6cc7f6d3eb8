"""Builds the ASGI application: `uvicorn app.main:app`.

Wiring only: plugins, controllers and configuration come from their own modules.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.config.cors import CORSConfig

from app.auth.plugin import KeycloakAuthPlugin
from app.children.controller import ChildrenController
from app.config import ConfigError, Settings, get_settings
from app.content.controller import ContentController
from app.db import build_sqlalchemy_plugin
from app.docs import (
    build_openapi_config,
    document_error_responses,
    mark_legacy_aliases,
    openapi_json,
)
from app.errors import exception_handlers
from app.gateway import with_gateway
from app.health.controller import HealthController
from app.jobs.controller import JobController, watch_job
from app.jobs.deps import JobsPlugin
from app.lifecycle import freeze_startup_objects, limit_malloc_arenas
from app.logging import configure_logging
from app.projects.controller import ProjectController
from app.realtime import RealtimePlugin
from app.redis import RedisPlugin
from app.users.controller import CurrentUserController

__all__ = ["app", "create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    limit_malloc_arenas()  # before the log writer, the first thread, starts
    configure_logging(settings.log_level)
    auth = KeycloakAuthPlugin(settings)
    application = Litestar(
        route_handlers=[
            HealthController,
            CurrentUserController,
            ChildrenController,
            ContentController,
            ProjectController,
            JobController,
            watch_job,
            openapi_json,
        ],
        plugins=[
            build_sqlalchemy_plugin(settings),
            RedisPlugin(settings.redis_url),
            RealtimePlugin(settings),
            JobsPlugin(settings),
            auth,
        ],
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
            max_age=600,
        ),
        exception_handlers=exception_handlers,
        openapi_config=build_openapi_config(auth.openapi_components()),
        on_startup=[mark_legacy_aliases, document_error_responses, freeze_startup_objects],
        # Logging is configured above, as JSON; Litestar's own setup would replace it.
        logging_config=None,
        debug=False,
    )
    return with_gateway(application, auth.authenticator)


try:
    app = create_app()
except ConfigError as error:
    # One clear line instead of a traceback: the message names the variable.
    raise SystemExit(f"configuration error: {error}") from None
