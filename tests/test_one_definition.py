"""Each rule, constant and clock is defined once, and the layers import downwards only.

Found when adopting the project (issue 24): three clocks (app/clock.py,
`soft_delete.utc_now`, the jobs repository's `_now`), the 4401 close code defined twice,
control characters checked in three places, app/auth importing the request layer
(app/gateway.py, app/errors.py) and app/jobs/runtime.py <-> app/jobs/sweep.py importing
each other. These checks read the source; nothing runs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
# The request layer: what turns requests into responses. Lower layers never import it.
REQUEST_LAYER = {"app.gateway", "app.errors", "app.main", "app.http_input", "app.access_log"}


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(APP.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _sources() -> dict[str, str]:
    return {_module_name(path): path.read_text() for path in sorted(APP.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Module -> the app modules it imports, anywhere in the file (function-level too)."""
    sources = _sources()
    graph: dict[str, set[str]] = {}
    for name, source in sources.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    found.add(submodule if submodule in sources else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {module for module in found if module in sources and module != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return groups


def test_no_two_app_modules_import_each_other() -> None:
    assert _cycles(import_graph()) == []


def test_auth_does_not_import_the_request_layer() -> None:
    graph = import_graph()
    for module, imports in graph.items():
        if module == "app.auth" or module.startswith("app.auth."):
            assert not imports & REQUEST_LAYER, (module, sorted(imports & REQUEST_LAYER))


def _defined_in(pattern: str) -> list[str]:
    return [name for name, source in _sources().items() if re.search(pattern, source, re.M)]


def test_one_clock() -> None:
    assert _defined_in(r"datetime\.now\(") == ["app.clock"]
    assert _defined_in(r"^def (utc_now|_now)\(") == ["app.clock"]


def test_one_definition_of_each_own_close_code() -> None:
    assert _defined_in(r"=\s*4401\b") == ["app.close_codes"]
    assert _defined_in(r"=\s*4404\b") == ["app.close_codes"]


def test_one_definition_of_a_control_character() -> None:
    assert _defined_in(r"re\.compile\(r\"\[\\x00-\\x1f\\x7f\]\"\)") == ["app.text"]
