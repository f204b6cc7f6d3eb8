"""The API's own WebSocket close codes (API.md): HTTP's 401 and 404 in the 4000 range
that RFC 6455 leaves to applications. The standard codes come from `litestar.status_codes`
(`WS_1008_POLICY_VIOLATION`, …)."""

from typing import Final

__all__ = ["WS_4401_UNAUTHORIZED", "WS_4404_NOT_FOUND"]

WS_4401_UNAUTHORIZED: Final = 4401
WS_4404_NOT_FOUND: Final = 4404
