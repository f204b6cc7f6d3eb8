"""Legacy aliases: the unversioned paths (`/jobs`, `/projects`) kept beside `/v1/...`.

A legacy alias is an unversioned path of a handler that also has a /v1 path; its
operation id ends in `Legacy` (app/docs/operation_ids.py) and the document marks it
deprecated.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import OpenAPI, Operation

__all__ = ["API_PREFIX", "is_legacy", "mark_legacy_aliases"]

API_PREFIX = "/v1/"


def is_legacy(path: str, handler_paths: set[str]) -> bool:
    """Whether `path` is a legacy alias of a handler with these paths."""
    return not path.startswith(API_PREFIX) and any(p.startswith(API_PREFIX) for p in handler_paths)


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
