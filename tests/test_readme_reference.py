"""The README's API reference is checked against the live OpenAPI document.

Every row of its operation table must be an operation of `/openapi.json` with that
success status, and every operation must have a row (legacy aliases, which the document
marks deprecated, are covered by their /v1 twin). A new endpoint without a line in the
README fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.processes import REPO_ROOT

README = REPO_ROOT / "README.md"
_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`]*)` \| `(\d{3})` \|")
_METHODS = ("get", "put", "post", "patch", "delete")


def reference_rows() -> dict[tuple[str, str], str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## API reference\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], str] = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            method, path, status = match.groups()
            assert (method, path) not in rows, f"{method} {path} is listed twice"
            rows[(method, path)] = status
    return rows


@pytest.fixture(scope="module")
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_reference_table_is_found() -> None:
    # Guards the parser: a reformatted table must not make the other checks vacuous.
    assert len(reference_rows()) >= 15


def test_every_row_is_a_documented_operation_with_that_status(document: dict[str, Any]) -> None:
    paths = document["paths"]
    wrong = []
    for (method, path), status in reference_rows().items():
        operation = paths.get(path, {}).get(method.lower())
        if operation is None:
            wrong.append(f"{method} {path}: not in /openapi.json")
        elif status not in operation["responses"]:
            known = sorted(operation["responses"])
            wrong.append(f"{method} {path}: no {status} response (has {known})")
    assert not wrong, "README's API reference disagrees with /openapi.json:\n" + "\n".join(wrong)


def test_every_current_operation_has_a_row(document: dict[str, Any]) -> None:
    rows = reference_rows()
    missing = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in _METHODS
        if method in item
        and not item[method].get("deprecated")
        and (method.upper(), path) not in rows
    ]
    assert not missing, f"operations missing from README's API reference: {missing}"


def test_legacy_aliases_are_deprecated_twins_of_listed_operations(
    document: dict[str, Any],
) -> None:
    rows = reference_rows()
    for path, item in document["paths"].items():
        for method in _METHODS:
            if method in item and item[method].get("deprecated"):
                assert (method.upper(), f"/v1{path}") in rows, f"{method} {path} has no /v1 row"
