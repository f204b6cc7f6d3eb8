"""Error responses in the document: the one error body of app/errors.py as a named
`Error` schema, and the errors every operation can answer because of how the app is
wired (401, 403, 404, 429, 503)."""

from __future__ import annotations

from litestar import Litestar, MediaType
from litestar.openapi.spec import (
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

from app.auth import PUBLIC_OPT
from app.limits import limit_job_creation

__all__ = ["ERROR_SCHEMA_NAME", "document_error_responses"]

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
_TOO_MANY = _error_response(
    "The caller is over a limit (requests per minute, or jobs); retry after Retry-After seconds",
    {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), required=True)},
)


def document_error_responses(app: Litestar) -> None:
    """Document the errors every operation can answer because of how the app is wired.

    The gateway answers 401 before any handler runs and 429 over the caller's request
    limit, role guards answer 403, a
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
            if not handler.opt.get(PUBLIC_OPT):
                responses.setdefault("401", _UNAUTHORIZED)
                responses.setdefault("429", _TOO_MANY)  # RATE_LIMIT_PER_MINUTE (app/limits.py)
                responses.setdefault("503", _UNAVAILABLE)
            if any(guard is not limit_job_creation for guard in handler.resolve_guards()):
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
