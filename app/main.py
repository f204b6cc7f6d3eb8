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
from app.docs import build_openapi_config, mark_legacy_aliases, openapi_json
from app.errors import exception_handlers
from app.health.controller import HealthController
from app.logging import RequestLoggingMiddleware, configure_logging
from app.projects.controller import ProjectController
from app.redis import RedisPlugin
from app.users.controller import CurrentUserController

__all__ = ["app", "create_app"]

# Unauthenticated path prefixes whose handlers are not ours to mark (the docs pages).
PUBLIC_PREFIXES = ("/docs",)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    auth = KeycloakAuthPlugin(settings, public_prefixes=PUBLIC_PREFIXES)
    return Litestar(
        route_handlers=[
            HealthController,
            CurrentUserController,
            ChildrenController,
            ContentController,
            ProjectController,
            openapi_json,
        ],
        plugins=[
            build_sqlalchemy_plugin(settings),
            RedisPlugin(settings.redis_url),
            auth,
        ],
        middleware=[RequestLoggingMiddleware()],
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
            max_age=600,
        ),
        exception_handlers=exception_handlers,
        openapi_config=build_openapi_config(auth.openapi_components()),
        on_startup=[mark_legacy_aliases],
        # Logging is configured above, as JSON; Litestar's own setup would replace it.
        logging_config=None,
        debug=False,
    )


try:
    app = create_app()
except ConfigError as error:
    # One clear line instead of a traceback: the message names the variable.
    raise SystemExit(f"configuration error: {error}") from None
