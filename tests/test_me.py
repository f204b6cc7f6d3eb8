from __future__ import annotations

from collections.abc import Callable

import devstack
from litestar import Litestar
from litestar.testing import TestClient


def _user(issuer: devstack.IssuerInfo, username: str) -> dict[str, object]:
    return next(user for user in issuer.users() if user["username"] == username)


def test_me_describes_the_caller(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], issuer: devstack.IssuerInfo
) -> None:
    response = client.get("/v1/me", headers=auth("alice"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "sub",
        "username",
        "email",
        "name",
        "realm_roles",
        "client_roles",
        "tenant_id",
    }
    assert body["sub"] == _user(issuer, "alice")["sub"]
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert {"user", "admin"} <= set(body["realm_roles"])
    assert body["tenant_id"] == "acme"
    for client_name, entry in body["client_roles"].items():
        assert isinstance(client_name, str)
        assert isinstance(entry["roles"], list)


def test_caller_without_tenant_claim(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    body = client.get("/v1/me", headers=auth("dave")).json()
    assert body["username"] == "dave"
    assert body["tenant_id"] is None
    assert "admin" not in body["realm_roles"]


def test_legacy_me_answers_like_v1(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    assert (
        client.get("/me", headers=auth("bob")).json()
        == client.get("/v1/me", headers=auth("bob")).json()
    )
    assert client.get("/me").status_code == 401


def test_custom_tenant_claim_and_client_roles(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    token = issuer.mint(
        username="bob",
        claims={
            "tenant_id": ["initech"],
            "resource_access": {"app-api": {"roles": ["projects:write"]}},
        },
    )
    body = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    # A single-valued Keycloak attribute may arrive as a one-element list.
    assert body["tenant_id"] == "initech"
    assert body["client_roles"] == {"app-api": {"roles": ["projects:write"]}}
