"""The request pipeline reaches Litestar through its public API only (issue 12): nothing in
app/ imports a private Litestar module or swaps the app's ASGI handler or router."""

from __future__ import annotations

import re

from tests.support.processes import REPO_ROOT

FORBIDDEN = {
    "a private Litestar module": re.compile(r"^\s*(from|import)\s+litestar(\.\w+)*\._", re.M),
    "Litestar's router internals": re.compile(r"\.asgi_router\b|\.handle_routing\b"),
    "replacing the app's ASGI handler": re.compile(r"\.asgi_handler\b"),
    "Litestar's internal CORS middleware": re.compile(r"\bCORSMiddleware\b"),
}


def test_app_uses_only_public_litestar_api() -> None:
    found = []
    sources = sorted((REPO_ROOT / "app").rglob("*.py"))
    assert len(sources) > 20
    for path in sources:
        text = path.read_text()
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(REPO_ROOT)}:{line}: {what}")
    assert found == []
