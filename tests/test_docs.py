"""The OpenAPI document and the documentation pages, which must work offline."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.testing import TestClient


def test_openapi_document_at_the_root(client: TestClient[Litestar]) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document == client.get("/docs/openapi.json").json()
    assert document["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"


def test_every_operation_has_a_short_unique_id(client: TestClient[Litestar]) -> None:
    document = client.get("/openapi.json").json()
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", operation_id) for operation_id in ids)


def test_legacy_aliases_are_deprecated(client: TestClient[Litestar]) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    legacy = [path for path in paths if not path.startswith("/v1/") and f"/v1{path}" in paths]
    assert "/me" in legacy
    for path in legacy:
        for operation in paths[path].values():
            assert operation["deprecated"] is True
            assert operation["operationId"].endswith("Legacy")
    assert paths["/v1/me"]["get"].get("deprecated") is not True


def test_swagger_ui_loads_every_asset_from_the_app(client: TestClient[Litestar]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert not urlsplit(asset).netloc, f"external asset {asset}"
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100


def test_redoc_and_scalar_pages(client: TestClient[Litestar]) -> None:
    for path in ("/docs/redoc", "/docs/scalar"):
        response = client.get(path)
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]


def test_docs_need_no_token(client: TestClient[Litestar]) -> None:
    for path in ("/docs", "/openapi.json", "/docs/openapi.json"):
        assert client.get(path).status_code == 200


def test_the_document_offers_sign_in_through_the_issuer(client: TestClient[Litestar]) -> None:
    document = client.get("/openapi.json").json()
    issuer = os.environ["KEYCLOAK_ISSUER"]
    scheme = document["components"]["securitySchemes"]["KeycloakLogin"]
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{issuer}/protocol/openid-connect/auth"
    assert flow["tokenUrl"] == f"{issuer}/protocol/openid-connect/token"
    assert flow["refreshUrl"] == flow["tokenUrl"]
    assert set(flow["scopes"]) == {"openid", "profile", "email"}
    # Either way of authenticating is enough: a pasted token or a sign-in.
    assert document["security"] == [
        {"BearerAuth": []},
        {"KeycloakLogin": ["openid", "profile", "email"]},
    ]


def _init_oauth(page: str) -> dict[str, object]:
    match = re.search(r"ui\.initOAuth\((\{.*?\})\)", page)
    assert match, "Swagger UI's page does not call initOAuth"
    options: dict[str, object] = json.loads(match.group(1))
    return options


def test_swagger_signs_in_with_pkce_as_the_spa_client(client: TestClient[Litestar]) -> None:
    page = client.get("/docs").text
    assert _init_oauth(page) == {
        "clientId": "app-spa",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid profile email",
    }
    assert "persistAuthorization: true" in page
    redirect = "/docs/assets/swagger-ui/oauth2-redirect.html"
    assert f'oauth2RedirectUrl: location.origin + "{redirect}"' in page
    assert client.get(redirect).status_code == 200


def test_the_spa_client_id_is_a_setting(database_url: str) -> None:
    from app.config import load_settings
    from app.main import create_app

    settings = load_settings({**os.environ, "KEYCLOAK_SPA_CLIENT_ID": "docs-client"})
    with TestClient(create_app(settings)) as other:
        assert _init_oauth(other.get("/docs").text)["clientId"] == "docs-client"
        scalar = other.get("/docs/scalar").text
        assert '"x-scalar-client-id": "docs-client"' in scalar
        assert '"x-usePkce": "SHA-256"' in scalar
        assert '"persistAuth": true' in scalar
