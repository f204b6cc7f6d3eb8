"""Guards on what a client sends before any of it is decoded: body size, JSON nesting,
UTF-8, and control characters in paths.

Litestar decodes a JSON body in one go into Python objects (then converts them to the
handler's schema). Without bounds a deeply nested body raised RecursionError, invalid
UTF-8 inside a string raised UnicodeDecodeError (both answered 500 with a traceback in the
log), and an 8 MB object held the event loop for ~285 ms. Here:

- the size limit is Litestar's own `request_max_body_size` (set on the app from
  `Settings.max_request_body_bytes`): a body announced or streamed past it is refused with
  413 before it is decoded;
- `BoundedRequest` (the app's `request_class`) checks the nesting depth of the raw bytes
  before decoding, and turns the decoder's own failures into a 400.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ValidationException
from litestar.handlers.base import BaseRouteHandler

__all__ = [
    "MAX_JSON_DEPTH",
    "BoundedRequest",
    "json_nesting_exceeds",
    "refuse_control_characters_in_path",
]

# Our deepest valid body is two levels (`{"params": {...}}`, `{"interests": [...]}`); 32
# leaves room for new schemas while keeping the decoder far from the recursion limit.
MAX_JSON_DEPTH = 32

# A JSON string literal (unrolled loop: no backtracking blow-up on long strings).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENERS = frozenset(b"[{")


def json_nesting_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the arrays/objects in `body` nest deeper than `limit` (strings ignored).

    Cheap for ordinary bodies: when the body holds no more opening brackets than `limit`,
    it cannot nest deeper, and no scan is needed.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        if bracket.group()[0] in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _body_error(message: str) -> ValidationException:
    return ValidationException(
        f"Invalid request body: {message}",
        extra=[{"key": "body", "message": message, "source": "body"}],
    )


class BoundedRequest(Request[Any, Any, Any]):
    """Litestar's request, with a JSON body checked before it is decoded."""

    async def json(self) -> Any:
        body = await self.body()  # size-limited by Litestar: 413 past the limit
        if json_nesting_exceeds(body):
            raise _body_error(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise _body_error("not valid UTF-8") from None
        except RecursionError:  # unreachable after the depth check; never a 500 anyway
            raise _body_error(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None


# C0 controls and DEL. A NUL in a path made the static file handler raise ValueError
# ("embedded null byte"); no route of ours has a use for any of these.
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters_in_path(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Route guard: a path (as decoded from %XX) with a control character is a 400."""
    if _PATH_CONTROL.search(connection.scope["path"]):
        raise ValidationException(
            "Invalid request: the path contains a control character",
            extra=[{"key": "path", "message": "control characters are not allowed"}],
        )
