"""Swagger UI's "Authorize" in a real browser: sign in through the issuer with PKCE.

Headless Chromium (Debian's package, driven by playwright-core from tests/e2e) opens
/docs on a live API, clicks Authorize, signs in as alice on the dev issuer's login form
in the popup, runs "Try it out" on GET /v1/me and must see a 200 with alice's profile,
also after a reload (the sign-in is kept); Scalar's auth panel signs in the same way.
Screenshots go to .devdata/screenshots/docs-login*/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import devstack
import pytest

from tests.support.browser import (
    E2E_DIR,
    chromium_or_reason,
    node_or_reason,
    npm_ci,
    run_node_script,
    screenshot_dir,
)
from tests.support.processes import running_api

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = chromium_or_reason()
    if path is None:
        pytest.skip(reason)
    node, why = node_or_reason()
    if node is None:
        pytest.skip(why)
    npm_ci(E2E_DIR)
    return path


@pytest.fixture(scope="module")
def docs_stack() -> Iterator[str]:
    """An issuer that lets this API's docs sign in, and the API trusting it."""
    port = devstack.free_port()
    api = f"http://127.0.0.1:{port}"
    cors = os.environ.get("CORS_ORIGINS", "http://localhost:5173")
    redirects = devstack.browser_redirect_uris(cors, api)
    with (
        devstack.dev_issuer(redirect_uris=redirects) as issuer,
        running_api(issuer.env(), port=port),
    ):
        yield api


def test_swagger_authorize_signs_in_with_pkce_and_try_it_out_works(
    chromium: str, docs_stack: str
) -> None:
    shots = screenshot_dir("docs-login")
    result = run_node_script(
        "swagger-login.mjs",
        {
            "docs": f"{docs_stack}/docs",
            "username": "alice",
            "password": "alice",
            "shots": str(shots),
        },
        chromium,
    )
    print(f"screenshots in {shots}")
    assert "error" not in result, result.get("error")
    assert result["clientId"] == "app-spa"
    assert "/protocol/openid-connect/auth?" in result["loginUrl"]
    assert "code_challenge_method=S256" in result["loginUrl"]
    assert result["authorized"] is True
    assert result["status"] == "200"
    assert result["body"]["username"] == "alice"
    assert result["body"]["tenant_id"] == "acme"
    assert result["statusAfterReload"] == "200"


def test_scalar_signs_in_with_pkce(chromium: str, docs_stack: str) -> None:
    shots = screenshot_dir("docs-login-scalar")
    result = run_node_script(
        "scalar-login.mjs",
        {
            "docs": f"{docs_stack}/docs/scalar",
            "username": "alice",
            "password": "alice",
            "shots": str(shots),
        },
        chromium,
    )
    assert "error" not in result, result.get("error")
    assert result["panel"] is True, "Scalar's auth panel does not name the client app-spa"
    assert "code_challenge_method=S256" in result["loginUrl"]
    assert "client_id=app-spa" in result["loginUrl"]
    assert result["claims"]["preferred_username"] == "alice"
    assert result["claims"]["azp"] == "app-spa"
