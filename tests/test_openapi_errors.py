"""The OpenAPI document names the errors the wiring can answer, with the one Error schema,
and the Redoc/Scalar pages get their scripts from the app (app/docs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.live import operations

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/openapi.json").json()
    return result


def test_every_operation_behind_auth_documents_401_and_503(document: dict[str, Any]) -> None:
    protected = [op for op in operations(document) if op.spec.get("security") != [{}]]
    assert protected
    for op in protected:
        unauthorized = op.spec["responses"]["401"]
        assert unauthorized["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, op
        assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True
        assert "Retry-After" in op.spec["responses"]["503"]["headers"], op


def test_paths_with_ids_document_404(document: dict[str, Any]) -> None:
    for op in operations(document):
        if "{" in op.path:
            assert "404" in op.spec["responses"], op


def test_error_bodies_all_use_the_error_schema(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Error"]
    assert set(schema["required"]) == {"status_code", "detail"}
    for op in operations(document):
        for status, response in op.spec["responses"].items():
            if status[0] in "45" and op.path != "/health/ready":
                body = response.get("content", {}).get("application/json", {}).get("schema")
                assert body == {"$ref": ERROR_REF}, f"{op} {status}: {body}"


def test_public_operations_do_not_claim_401(document: dict[str, Any]) -> None:
    public = [op for op in operations(document) if op.spec.get("security") == [{}]]
    assert public
    assert all("401" not in op.spec["responses"] for op in public)


@pytest.mark.parametrize(
    ("page", "script"),
    [
        ("/docs/redoc", "/docs/assets/redoc/js/redoc.standalone.js"),
        ("/docs/scalar", "/docs/assets/scalar/js/scalar.standalone.js"),
    ],
)
def test_redoc_and_scalar_scripts_come_from_the_app(
    client: TestClient[Litestar], page: str, script: str
) -> None:
    html = client.get(page).text
    assert script in html
    response = client.get(script)
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert len(response.content) > 100_000  # the whole bundle, not a stub
