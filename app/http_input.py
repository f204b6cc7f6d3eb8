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

Bodies are also decoded *strictly*, straight into the handler's `data` type: a boolean
is `true`/`false`, a number is a JSON number, else a 400 naming the field. Litestar
itself converts a handler's arguments with msgspec's lax mode (`strict=False`, meant for
query and path values, which arrive as strings), which took `{"steps": "3"}` as 3 and
`1` or `"true"` as `true`. Litestar 2.25 has no setting for this; its signature model
passes an already-typed value through unchanged, so decoding here is enough.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import SerializationException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.serialization import decode_json

from app.text import CONTROL_CHARACTER

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


def _body_error(message: str, key: str = "body") -> ValidationException:
    return ValidationException(
        f"Invalid request body: {message}",
        extra=[{"key": key, "message": message, "source": "body"}],
    )


# msgspec's message, then where: "Expected `int`, got `str` - at `$.params.steps`" (the
# last " - at" wins, so a client's value quoted in the message cannot move the key).
_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$\.?(?P<path>[^`]*)`$", re.DOTALL)
# A missing or unknown field is reported at the object around it; the text rules
# (app/text.py) raise from a schema's __post_init__, naming their field the same way.
_NAMED_FIELD = re.compile(r"(?:unknown|missing required|invalid text in) field `([^`]+)`")


def _body_field_error(error: msgspec.ValidationError) -> ValidationException:
    """A 400 whose key is the offending field (`params.steps`, `kind`), from msgspec's
    error for a body."""
    text = str(error)
    at_path = _AT_PATH.match(text)
    message, path = (at_path["message"], at_path["path"]) if at_path else (text, "")
    named = _NAMED_FIELD.search(message)
    if named:
        path = f"{path}.{named[1]}" if path else named[1]
    return _body_error(message, path or "body")


class BoundedRequest(Request[Any, Any, Any]):
    """Litestar's request, with a JSON body checked before it is decoded, then decoded
    strictly into the handler's `data` type (the value `json()` returns is that type)."""

    async def json(self) -> Any:
        body = await self.body()  # size-limited by Litestar: 413 past the limit
        if json_nesting_exceeds(body):
            raise _body_error(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if not body.isascii():
            # msgspec checks UTF-8 only in the strings it keeps, not in values it skips
            # (looking for a union's tag): check it all, before the schema names a field.
            try:
                body.decode()
            except UnicodeDecodeError:
                raise _body_error("not valid UTF-8") from None
        data_field = self.route_handler.parsed_data_field
        try:
            if data_field is None:
                return await super().json()
            return decode_json(
                body or b"null",
                target_type=data_field.annotation,
                type_decoders=self.route_handler.resolve_type_decoders(),
                strict=True,
            )
        except SerializationException as exc:
            if isinstance(exc.__cause__, msgspec.ValidationError):
                raise _body_field_error(exc.__cause__) from None
            raise  # not JSON at all: Litestar answers 400 itself
        except RecursionError:  # unreachable after the depth check; never a 500 anyway
            raise _body_error(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None


def refuse_control_characters_in_path(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Route guard: a path (as decoded from %XX) with a control character is a 400.

    A NUL in a path made the static file handler raise ValueError ("embedded null
    byte"); no route of ours has a use for any control character."""
    if CONTROL_CHARACTER.search(connection.scope["path"]):
        raise ValidationException(
            "Invalid request: the path contains a control character",
            extra=[{"key": "path", "message": "control characters are not allowed"}],
        )
