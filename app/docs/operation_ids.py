"""Operation ids: short camelCase names from the handler (`listProjects`), which is what
generated TypeScript clients expose; a legacy alias's id ends in `Legacy`."""

from __future__ import annotations

from typing import Any

from litestar.types import Method

from app.docs.legacy import is_legacy

__all__ = ["operation_id"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def operation_id(route_handler: Any, http_method: Method, path_components: list[Any]) -> str:
    base = _camel(route_handler.handler_name)
    if len(route_handler.http_methods) > 1:
        base = http_method.lower() + base[:1].upper() + base[1:]
    path = "/" + "/".join(getattr(c, "name", c) for c in path_components)
    return base + "Legacy" if is_legacy(path, route_handler.paths) else base
