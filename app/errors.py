"""One JSON error shape for every failure: {"status_code", "detail", "extra"?}.

Clients get a human sentence and, for validation, the offending fields. Driver messages,
SQL and stack traces stay in the server log, tagged with the request id.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from advanced_alchemy.exceptions import (
    DuplicateKeyError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
    RepositoryError,
)
from asyncpg.exceptions import DataError as AsyncpgDataError
from asyncpg.exceptions import (
    InsufficientResourcesError,
    InternalClientError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError as SQLDataError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

__all__ = ["ServiceUnavailableError", "error_response", "exception_handlers"]

logger = logging.getLogger("app.errors")


class ServiceUnavailableError(HTTPException):
    """A backing service (PostgreSQL, Redis) is unreachable; worth retrying shortly."""

    status_code = HTTP_503_SERVICE_UNAVAILABLE


def _request_tag(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The request id the gateway gave this request (and the client's own, if it sent
    one), to find its access line."""
    state = request.scope.get("state", {})
    tag = {"request_id": state.get("request_id")}
    if "client_request_id" in state:
        tag["client_request_id"] = state["client_request_id"]
    return tag


def error_response(
    status_code: int,
    detail: str,
    extra: Any = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": status_code, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(body, status_code=status_code, headers=headers, media_type=MediaType.JSON)


def _is_outage(exc: BaseException) -> str | None:
    """Name the backing service whose outage caused `exc`, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RedisConnectionError | RedisTimeoutError):
            return "Redis"
        if isinstance(seen, PoolTimeoutError | OSError | asyncio.TimeoutError):
            return "the database"
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return "the database"
        # SQLSTATE classes 08 (connection), 53 (too many connections, out of memory or
        # disk) and 57 (starting up, shutting down, admin shutdown, statement cancelled):
        # the server cannot serve right now; a retry soon may succeed.
        if isinstance(
            seen, PostgresConnectionError | InsufficientResourcesError | OperatorInterventionError
        ):
            return "the database"
        if type(seen).__module__.startswith("asyncpg") and "Connection" in type(seen).__name__:
            return "the database"
        # The driver found its connection mid-way through an error it did not ask for: a
        # server shutting down notifies idle sessions, and the next statement (often the
        # request's COMMIT) meets that half-read notice. The connection is discarded.
        if isinstance(seen, InternalClientError):
            return "the database"
        seen = seen.__cause__ or seen.__context__
    return None


def _http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    detail = exc.detail
    extra = exc.extra
    if isinstance(exc, ValidationException) and isinstance(extra, list) and extra:
        # Name the offending fields in the sentence too, not only in `extra`.
        fields = [str(item["key"]) for item in extra if isinstance(item, dict) and item.get("key")]
        if fields:
            detail = f"Invalid request: check {', '.join(dict.fromkeys(fields))}"
    if (
        exc.status_code >= HTTP_500_INTERNAL_SERVER_ERROR
        and exc.status_code != HTTP_503_SERVICE_UNAVAILABLE
    ):
        logger.error(
            "server error on %s %s: %s",
            request.method,
            request.url.path,
            exc.detail,
            extra=_request_tag(request),
        )
        detail, extra = "Internal server error", None
    return error_response(exc.status_code, detail, extra, exc.headers)


def _repository_error(
    request: Request[Any, Any, Any], exc: RepositoryError
) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundError):
        return error_response(HTTP_404_NOT_FOUND, "Not found")
    if _is_bad_value(exc):  # Advanced-Alchemy reports these as integrity errors (409)
        return _bad_value(request, exc)
    if isinstance(exc, DuplicateKeyError):
        return error_response(HTTP_409_CONFLICT, "A record with the same key already exists")
    if isinstance(exc, ForeignKeyError):
        return error_response(HTTP_400_BAD_REQUEST, "A referenced record does not exist")
    if isinstance(exc, IntegrityError):
        return error_response(HTTP_409_CONFLICT, "The change conflicts with existing data")
    return _unexpected(request, exc)


def _is_bad_value(exc: BaseException) -> bool:
    """PostgreSQL (or the driver, before sending) refused a value as data: out of range for
    its column type, malformed for it, too long. Such values come from the request."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SQLDataError):
            return True
        if isinstance(seen, AsyncpgDataError):  # its subclasses are SQLSTATE class 22
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _bad_value(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # A safety net for input a handler did not validate (an offset beyond bigint, a NUL
    # character in text): the client sent it, so it is a 400, not a server error.
    logger.warning(
        "value refused by the database on %s %s: %r",
        request.method,
        request.url.path,
        exc,
        extra=_request_tag(request),
    )
    return error_response(
        HTTP_400_BAD_REQUEST, "A value in the request is out of range or malformed"
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    service = _is_outage(exc)
    if service is not None:
        logger.warning(
            "%s unavailable during %s %s: %r",
            service,
            request.method,
            request.url.path,
            exc,
            extra=_request_tag(request),
        )
        return error_response(
            HTTP_503_SERVICE_UNAVAILABLE,
            f"Service temporarily unavailable: {service} is not answering",
            headers={"Retry-After": "5"},
        )
    if _is_bad_value(exc):
        return _bad_value(request, exc)
    logger.exception(
        "unhandled error on %s %s", request.method, request.url.path, extra=_request_tag(request)
    )
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")


exception_handlers: ExceptionHandlersMap = {
    HTTPException: _http_exception,
    RepositoryError: _repository_error,
    Exception: _unexpected,
}
