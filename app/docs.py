"""OpenAPI document and the documentation pages.

Swagger UI's files come from the `swagger-ui-bundle-v2` wheel and are served by the app,
so `/docs` works with no internet access. Operation ids are short camelCase names taken
from the handler, which is what generated TypeScript clients expose to developers.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, MediaType, Request, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, Operation
from litestar.static_files import create_static_files_router
from litestar.types import Method
from swagger_ui_bundle import swagger_ui_path

from app.auth.plugin import BEARER_SCHEME

__all__ = ["build_openapi_config", "mark_legacy_aliases", "openapi_json"]

DOCS_PATH = "/docs"
SWAGGER_ASSETS = f"{DOCS_PATH}/assets/swagger-ui"
API_PREFIX = "/v1/"

_FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>"


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI served from the packaged assets instead of a CDN."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
            path="/",
            favicon=_FAVICON,
        )

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path="/assets/swagger-ui",
                directories=[swagger_ui_path],
                name="swagger_ui_assets",
                opt={"exclude_from_auth": True},
                include_in_schema=False,
            )
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _is_legacy(path: str, handler_paths: set[str]) -> bool:
    """A legacy alias is an unversioned path of a handler that also has a /v1 path."""
    return not path.startswith(API_PREFIX) and any(p.startswith(API_PREFIX) for p in handler_paths)


def operation_id(route_handler: Any, http_method: Method, path_components: list[Any]) -> str:
    base = _camel(route_handler.handler_name)
    if len(route_handler.http_methods) > 1:
        base = http_method.lower() + base[:1].upper() + base[1:]
    path = "/" + "/".join(getattr(c, "name", c) for c in path_components)
    return base + "Legacy" if _is_legacy(path, route_handler.paths) else base


def mark_legacy_aliases(app: Litestar) -> None:
    """Flag every legacy alias operation as deprecated in the OpenAPI document."""
    document: OpenAPI = app.openapi_schema
    for path, item in (document.paths or {}).items():
        if path.startswith(API_PREFIX) or f"/v1{path}" not in (document.paths or {}):
            continue
        for method in ("get", "put", "post", "patch", "delete"):
            operation: Operation | None = getattr(item, method)
            if operation is not None:
                operation.deprecated = True


@get(
    "/openapi.json",
    opt={"exclude_from_auth": True},
    include_in_schema=False,
    media_type=MediaType.JSON,
    sync_to_thread=False,
)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The same document as /docs/openapi.json, at the root where tools look first."""
    return request.app.openapi_schema.to_schema()


def build_openapi_config(components: Components) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Litestar SPA backend",
        version="1.0.0",
        description=(
            "Children, child-aware learning content, projects and background jobs for a "
            "single-page app. Authenticate with a Keycloak access token: "
            "`Authorization: Bearer <token>` (WebSockets: `?token=`)."
        ),
        path=DOCS_PATH,
        render_plugins=[
            OfflineSwaggerRenderPlugin(),
            RedocRenderPlugin(path="/redoc", favicon=_FAVICON),
            ScalarRenderPlugin(path="/scalar", favicon=_FAVICON),
        ],
        components=components,
        security=[{BEARER_SCHEME: []}],
        operation_id_creator=operation_id,
        use_handler_docstrings=True,
    )
