"""OpenAPI document and the documentation pages.

Swagger UI's files come from the `swagger-ui-bundle-v2` wheel, Redoc's and Scalar's from the
`star-openapi-redoc` / `star-openapi-scalar` wheels; the app serves them itself, so `/docs`,
`/docs/redoc` and `/docs/scalar` work with no internet access. Operation ids are short
camelCase names taken from the handler, which is what generated TypeScript clients expose.
"""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Router, get
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import Method
from swagger_ui_bundle import swagger_ui_path

from app.auth.plugin import BEARER_SCHEME
from app.http_input import refuse_control_characters_in_path

__all__ = [
    "build_openapi_config",
    "document_error_responses",
    "finished_response_is",
    "mark_legacy_aliases",
    "openapi_json",
]

DOCS_PATH = "/docs"
SWAGGER_ASSETS = f"{DOCS_PATH}/assets/swagger-ui"
REDOC_ASSETS = f"{DOCS_PATH}/assets/redoc"
SCALAR_ASSETS = f"{DOCS_PATH}/assets/scalar"
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
            _assets_router("/assets/swagger-ui", Path(swagger_ui_path), "swagger_ui_assets")
        )


def _package_dir(package: str, *parts: str) -> Path:
    """A data folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package} package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not folder.is_dir():
        raise RuntimeError(f"{package} has no {'/'.join(parts)} folder")
    return folder


def _assets_router(url_path: str, folder: Path, name: str) -> Router:
    return create_static_files_router(
        path=url_path,
        directories=[folder],
        name=name,
        include_in_schema=False,
        # A NUL in the file path made the file system lookup raise (500).
        guards=[refuse_control_characters_in_path],
    )


def _page(title: str, head: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>"
    ).encode()


class OfflineRedocRenderPlugin(RedocRenderPlugin):
    """Redoc from the packaged standalone bundle (an ES module since Redoc 3)."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{REDOC_ASSETS}/js/redoc.standalone.js",
            google_fonts=False,
            path="/redoc",
            favicon=_FAVICON,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # The page asks for the document by URL rather than inlining it, and telemetry
        # stays off: the docs must not try to call anyone.
        script = (
            f"import {{ init }} from {json.dumps(self.js_url)};"
            f"init({json.dumps(self.get_openapi_json_route(request))},"
            " { disableTelemetry: true }, document.getElementById('redoc'));"
        )
        return _page(
            openapi_schema["info"]["title"],
            self.favicon + self.style,
            f"<div id='redoc'></div><script type='module'>{script}</script>",
        )

    def receive_router(self, router: Router) -> None:
        folder = _package_dir("star_openapi_redoc", "templates", "redoc")
        router.register(_assets_router("/assets/redoc", folder, "redoc_assets"))


class OfflineScalarRenderPlugin(ScalarRenderPlugin):
    """Scalar from the packaged standalone bundle, without its web fonts or CDN stylesheet."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{SCALAR_ASSETS}/js/scalar.standalone.js",
            path="/scalar",
            favicon=_FAVICON,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        options = {
            "url": self.get_openapi_json_route(request),
            # Nothing that calls Scalar's servers: no web fonts, telemetry, AI agent or
            # "open in client" links; the page stays about this API.
            "withDefaultFonts": False,
            "telemetry": False,
            "agent": {"disabled": True},
            "hideClientButton": True,
            "showDeveloperTools": "never",
        }
        script = f"Scalar.createApiReference('#scalar', {json.dumps(options)});"
        return _page(
            openapi_schema["info"]["title"],
            self.favicon + self.style,
            f"<div id='scalar'></div><script src={json.dumps(self.js_url)}></script>"
            f"<script>{script}</script>",
        )

    def receive_router(self, router: Router) -> None:
        folder = _package_dir("star_openapi_scalar", "templates", "scalar")
        router.register(_assets_router("/assets/scalar", folder, "scalar_assets"))


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


ERROR_SCHEMA_NAME = "Error"
_OPERATION_METHODS = ("get", "put", "post", "patch", "delete")

# The one error body of app/errors.py, as a named schema so generated clients get one type.
_ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING, description="A sentence for humans."),
        "extra": Schema(
            description="Details; for validation errors, the offending fields.",
            one_of=[
                Schema(
                    type=OpenAPIType.ARRAY,
                    items=Schema(type=OpenAPIType.OBJECT, additional_properties=Schema()),
                ),
                Schema(type=OpenAPIType.OBJECT, additional_properties=Schema()),
                Schema(type=OpenAPIType.NULL),
            ],
        ),
    },
    title=ERROR_SCHEMA_NAME,
)


def _error_response(
    description: str, headers: dict[str, OpenAPIHeader | Reference] | None = None
) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        headers=headers,
        content={
            MediaType.JSON: OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{ERROR_SCHEMA_NAME}")
            )
        },
    )


_UNAUTHORIZED = _error_response(
    "The bearer token is missing, expired or invalid",
    {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), required=True)},
)
_FORBIDDEN = _error_response("The caller lacks a required role")
_NOT_FOUND = _error_response("No such resource, or it belongs to someone else")
_UNAVAILABLE = _error_response(
    "A backing service (database, Redis) is not answering; retry after a moment",
    {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), required=True)},
)


def document_error_responses(app: Litestar) -> None:
    """Document the errors every operation can answer because of how the app is wired.

    The gateway answers 401 before any handler runs, role guards answer 403, a
    path naming a resource can answer 404 and any handler that reaches PostgreSQL or
    Redis can answer 503 during an outage. Handlers document their own other errors.
    """
    document: OpenAPI = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas[ERROR_SCHEMA_NAME] = _ERROR_SCHEMA
    handlers = {
        (route.path_format, method.lower()): handler
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        for method in handler.http_methods
    }
    for path, item in (document.paths or {}).items():
        for method in _OPERATION_METHODS:
            operation: Operation | None = getattr(item, method)
            handler = handlers.get((path, method))
            if operation is None or handler is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            if not handler.opt.get("exclude_from_auth"):
                responses.setdefault("401", _UNAUTHORIZED)
                responses.setdefault("503", _UNAVAILABLE)
            if handler.resolve_guards():
                responses.setdefault("403", _FORBIDDEN)
            if "{" in path:
                responses.setdefault("404", _NOT_FOUND)
            for status, response in responses.items():
                if status[:1] in {"4", "5"} and isinstance(response, OpenAPIResponse):
                    _use_error_schema(response)
            operation.responses = responses


def _is_error_shape(schema: Schema | Reference | None) -> bool:
    """Litestar's own inline schema for an HTTPException body (one per `raises=`)."""
    if isinstance(schema, Schema) and schema.one_of:
        return all(_is_error_shape(member) for member in schema.one_of)
    return (
        isinstance(schema, Schema)
        and schema.properties is not None
        and {"status_code", "detail"} <= set(schema.properties)
        and set(schema.properties) <= {"status_code", "detail", "extra"}
    )


def _use_error_schema(response: OpenAPIResponse) -> None:
    """Every error answer carries the Error body (app/errors.py): say so where a handler
    documented the status without a body, and replace inline copies of the schema."""
    error_ref = Reference(ref=f"#/components/schemas/{ERROR_SCHEMA_NAME}")
    if not response.content:
        response.content = {MediaType.JSON: OpenAPIMediaType(schema=error_ref)}
        return
    media = response.content.get(MediaType.JSON)
    if media is not None and _is_error_shape(media.schema):
        media.schema = error_ref


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


def finished_response_is(schema: type[Any]) -> dict[int, ResponseSpec]:
    """`responses=` for a handler that returns a finished ASGIResponse: document its 200
    as Litestar documents a handler annotated with `schema`."""
    return {
        200: ResponseSpec(
            schema, description="Request fulfilled, document follows", generate_examples=False
        )
    }


def build_openapi_config(components: Components) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Litestar SPA backend",
        version="1.0.0",
        description=(
            "Children, child-aware learning content, projects and background jobs for a "
            "single-page app. Authenticate with a Keycloak access token: "
            "`Authorization: Bearer <token>` (WebSockets: `?token=`)."
        ),
        # The docs pages and their assets are public: the opt is inherited by every handler
        # Litestar and the render plugins put on this router.
        openapi_router=Router(
            path=DOCS_PATH,
            route_handlers=[],
            opt={"exclude_from_auth": True},
            include_in_schema=False,
        ),
        render_plugins=[
            OfflineSwaggerRenderPlugin(),
            OfflineRedocRenderPlugin(),
            OfflineScalarRenderPlugin(),
        ],
        components=components,
        security=[{BEARER_SCHEME: []}],
        operation_id_creator=operation_id,
        use_handler_docstrings=True,
    )
