"""CORS from Litestar's public `CORSConfig`, answered by the gateway (app/gateway.py).

Why not `Litestar(cors_config=...)`: that puts a middleware in front of every request,
which builds a header mapping just to look for `Origin`; measured in process, it cost a
/health request about a quarter of its time. The gateway has already scanned the raw
headers, so it applies the same config only to requests that carry an `Origin`:

- a preflight (`OPTIONS` with `Origin`) gets 204 with the preflight headers, or 400
  naming what is not allowed (origin, method or headers);
- any other response to a request with an `Origin` (401, 404 and 429 included) gets the
  simple headers, and `Access-Control-Allow-Origin` when the origin is allowed.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.constants import DEFAULT_ALLOWED_CORS_HEADERS

__all__ = ["Cors", "HeaderList"]

HeaderList = list[tuple[bytes, bytes]]

# Distinct origins whose response headers are remembered (allowed ones are few; a
# stream of foreign origins must not grow memory).
_REMEMBERED_ORIGINS = 64


def _encoded(headers: dict[str, str]) -> HeaderList:
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


class Cors:
    def __init__(self, config: CORSConfig) -> None:
        self.config = config
        common = {
            **config.simple_headers,
            "Access-Control-Allow-Headers": ", ".join(sorted(set(config.allow_headers))),
            "Access-Control-Allow-Methods": ", ".join(sorted(set(config.allow_methods))),
        }
        self._common = _encoded(common)
        self._by_origin: dict[str, HeaderList] = {}
        self._allowed_headers = {header.lower() for header in config.allow_headers} | {
            header.lower() for header in DEFAULT_ALLOWED_CORS_HEADERS
        }

    def response_headers(self, origin: str) -> HeaderList:
        """What a response to a request from `origin` carries (computed once per origin)."""
        headers = self._by_origin.get(origin)
        if headers is None:
            headers = list(self._common)
            config = self.config
            allowed = config.is_origin_allowed(origin)
            # With "*", Access-Control-Allow-Origin is among the simple headers already.
            if allowed and not config.is_allow_all_origins:
                headers += [(b"access-control-allow-origin", origin.encode("latin-1"))]
                headers += [(b"vary", b"Origin")]
            if len(self._by_origin) >= _REMEMBERED_ORIGINS:
                self._by_origin.clear()
            self._by_origin[origin] = headers
        return headers

    def preflight(
        self, origin: str, method: str | None, requested_headers: str
    ) -> tuple[int, HeaderList, bytes]:
        """Status, headers and body of the answer to a preflight request."""
        config = self.config
        refused = []
        if not config.is_allow_all_methods and method and method not in config.allow_methods:
            refused.append("method")
        if not config.is_origin_allowed(origin):
            refused.append("Origin")
        requested = [name.strip() for name in requested_headers.split(",") if name.strip()]
        if (
            requested
            and not config.is_allow_all_headers
            and any(name.lower() not in self._allowed_headers for name in requested)
        ):
            refused.append("headers")
        if refused:
            body = f"Disallowed CORS {', '.join(refused)}".encode()
            return 400, [(b"content-type", b"text/plain; charset=utf-8")], body
        headers = dict(config.preflight_headers)
        if headers.get("Access-Control-Allow-Origin") != "*":
            headers["Access-Control-Allow-Origin"] = origin
        if requested and config.is_allow_all_headers:
            headers["Access-Control-Allow-Headers"] = ", ".join(
                sorted(set(requested) | DEFAULT_ALLOWED_CORS_HEADERS)
            )
        return 204, _encoded(headers), b""
