"""CORS from Litestar's CORSConfig, applied by the gateway: nothing added without `Origin`,
its answers everywhere else (refusals and unmatched paths included)."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.testing import TestClient

ORIGIN = "http://localhost:5173"


def test_no_origin_means_no_cors_headers(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    response = client.get("/v1/me", headers=auth("alice"))
    assert response.status_code == 200
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_origin_requests_are_still_decorated_everywhere(client: TestClient[Litestar]) -> None:
    # Outside any route (404) and refused by auth (401): the CORS layer wraps the whole app.
    for path in ("/no/such/route", "/v1/me"):
        response = client.get(path, headers={"Origin": ORIGIN})
        assert response.status_code in (401, 404)
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_preflight_with_a_foreign_origin_is_refused(client: TestClient[Litestar]) -> None:
    response = client.options(
        "/v1/me",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_preflight_from_an_allowed_origin(client: TestClient[Litestar]) -> None:
    response = client.options(
        "/v1/children",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert response.headers["access-control-max-age"] == "600"


def test_preflight_asking_for_a_header_not_allowed_is_refused(
    client: TestClient[Litestar],
) -> None:
    response = client.options(
        "/v1/me",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-Secret-Sauce",
        },
    )
    assert response.status_code == 400
    assert "headers" in response.text


def test_a_foreign_origin_is_never_allowed(client: TestClient[Litestar]) -> None:
    # Refusals go out with CORS headers, but never an allow-origin for a foreign origin.
    foreign = client.get("/v1/me", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 401
    assert "access-control-allow-origin" not in foreign.headers
