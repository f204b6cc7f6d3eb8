"""Every way a token can be wrong is a 401 with a Bearer challenge; roles give 403."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

import devstack
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from litestar.testing import TestClient

from app.auth.jwks import JwksCache
from app.auth.plugin import KeycloakAuthPlugin
from app.config import load_settings
from app.gateway import Gateway
from app.main import create_app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(issuer: devstack.IssuerInfo) -> dict[str, Any]:
    jwks = issuer.jwks()
    return dict(jwks["keys"][-1])


def _assert_refused(client: TestClient[Litestar], token: str, reason: str) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status_code"] == 401
    assert reason in body["detail"]


def test_valid_token_is_accepted(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    assert client.get("/v1/me", headers=auth("alice")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer"}, "missing bearer token"),
        ({"Authorization": "Basic YWxpY2U6YWxpY2U="}, "missing bearer token"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed token"),
        ({"Authorization": "Bearer a.b.c"}, "malformed token"),
    ],
)
def test_missing_or_malformed_header(
    client: TestClient[Litestar], headers: dict[str, str], reason: str
) -> None:
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    ("claims", "ttl", "reason"),
    [
        ({}, -120, "expired"),
        ({"nbf": int(time.time()) + 3600}, None, "not valid yet"),
        ({"iss": "http://127.0.0.1:1/realms/other"}, None, "issuer"),
        ({"aud": ["someone-else"]}, None, "audience"),
        ({"aud": None}, None, "'aud'"),
        ({"sub": None}, None, "'sub'"),
        ({"exp": None}, None, "'exp'"),
        ({"sub": ""}, None, "'sub'"),
    ],
)
def test_bad_claims_are_refused(
    client: TestClient[Litestar],
    issuer: devstack.IssuerInfo,
    claims: dict[str, Any],
    ttl: int | None,
    reason: str,
) -> None:
    _assert_refused(client, issuer.mint(claims=claims, ttl=ttl), reason)


def test_alg_none_is_refused(client: TestClient[Litestar], issuer: devstack.IssuerInfo) -> None:
    _, payload, _ = issuer.mint().split(".")
    forged_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "x"}).encode())
    _assert_refused(client, f"{forged_header}.{payload}.", "algorithm not allowed")


def test_hs256_signed_with_the_public_key_is_refused(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    jwk = _public_jwk(issuer)
    public_pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(issuer.mint(), options={"verify_signature": False})
    # PyJWT itself refuses to HMAC-sign with a PEM key, so build the signature by hand.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    _assert_refused(client, f"{header}.{body}.{signature}", "algorithm not allowed")


def test_tampered_payload_is_refused(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    header, payload, signature = issuer.mint(username="bob").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["realm_access"] = {"roles": ["user", "admin"]}
    _assert_refused(
        client, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}", "signature"
    )


def test_token_signed_by_a_foreign_key_with_a_known_kid_is_refused(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    kid = _public_jwk(issuer)["kid"]
    claims = jwt.decode(issuer.mint(), options={"verify_signature": False})
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": kid})
    _assert_refused(client, forged, "signature")


def test_unknown_kid_is_refused(client: TestClient[Litestar], issuer: devstack.IssuerInfo) -> None:
    claims = jwt.decode(issuer.mint(), options={"verify_signature": False})
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": "made-up"})
    _assert_refused(client, forged, "unknown key")


def test_rotated_key_is_accepted_without_restart() -> None:
    # A private issuer: rotating the shared one would make the session app refuse new
    # tokens until its own refetch cooldown passed. The cooldown is shortened here so the
    # test need not wait the production 10 s.
    with devstack.dev_issuer() as private:
        settings = load_settings({**os.environ, **private.env()}).model_copy(
            update={"jwks_refetch_cooldown_s": 0.2}
        )
        with TestClient(create_app(settings)) as client:
            old = private.mint(username="carol")
            assert client.get("/v1/me", headers=_bearer(old)).status_code == 200
            private.rotate()
            time.sleep(0.3)
            new = private.mint(username="carol")
            assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
            response = client.get("/v1/me", headers=_bearer(new))
            assert response.status_code == 200, response.text
            # Keys published before the rotation keep working.
            assert client.get("/v1/me", headers=_bearer(old)).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_many_requests_fetch_the_jwks_once(
    fresh_client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    tokens = [issuer.mint(username=name) for name in ("alice", "bob", "carol", "dave")]
    before = issuer.jwks_requests()
    for number in range(200):
        token = tokens[number % len(tokens)]
        response = fresh_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    assert issuer.jwks_requests() - before == 1


def test_flood_of_unknown_kids_fetches_at_most_once_per_cooldown(
    fresh_client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    claims = jwt.decode(issuer.mint(), options={"verify_signature": False})
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before = issuer.jwks_requests()
    for number in range(50):
        forged = jwt.encode(
            claims, attacker_key, algorithm="RS256", headers={"kid": f"kid-{number}"}
        )
        response = fresh_client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert issuer.jwks_requests() - before == 1


async def test_cached_keys_survive_a_jwks_outage(issuer: devstack.IssuerInfo) -> None:
    settings = load_settings()
    cache = JwksCache(settings.keycloak_jwks_url, refetch_cooldown_s=0, timeout_s=1)
    try:
        kid = jwt.get_unverified_header(issuer.mint())["kid"]
        assert await cache.get_key(kid) is not None
        issuer.set_jwks_fault(503)
        assert await cache.get_key(kid) is not None
        assert await cache.get_key("never-published") is None
    finally:
        issuer.set_jwks_fault(None)
        await cache.aclose()


def test_websocket_authenticates_with_the_token_query_parameter(
    issuer: devstack.IssuerInfo,
) -> None:
    from litestar import websocket
    from litestar.connection import WebSocket
    from litestar.exceptions import WebSocketDisconnect

    @websocket("/ws/whoami")
    async def whoami(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        await socket.send_json({"sub": socket.user.sub})
        await socket.close()

    auth = KeycloakAuthPlugin(load_settings())
    gateway = Gateway(auth.authenticator, None)
    with TestClient(Litestar([whoami], plugins=[auth], middleware=[gateway])) as ws_client:
        for query in ("", "?token=garbage"):
            with ws_client.websocket_connect(f"/ws/whoami{query}") as socket:
                with pytest.raises(WebSocketDisconnect) as closed:
                    socket.receive_json()
                assert closed.value.code == 4401
        with ws_client.websocket_connect(f"/ws/whoami?token={issuer.token('bob')}") as socket:
            assert socket.receive_json()["sub"] == issuer.users()[1]["sub"]


# --- an access token of an accepted client, with sane times and size (issue 19, 7) -----


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"typ": "Refresh"}, "not an access token"),
        ({"typ": "ID"}, "not an access token"),
        ({"typ": None}, "not an access token"),
        ({"azp": "admin-cli"}, "client that is not accepted"),
        ({"azp": None}, "client that is not accepted"),
        # Hours ahead: these values are computed when the suite is collected, not run.
        ({"exp": str(int(time.time()) + 6 * 3600)}, "'exp' claim is not a number"),
        ({"iat": str(int(time.time()))}, "'iat' claim is not a number"),
        ({"nbf": str(int(time.time()))}, "'nbf' claim is not a number"),
        ({"iat": True}, "'iat' claim is not a number"),
        ({"exp": int(time.time()) + 100 * 365 * 86400}, "lifetime too long"),
        ({"iat": None, "exp": int(time.time()) + 2 * 86400}, "lifetime too long"),
    ],
)
def test_only_numeric_short_lived_access_tokens_of_allowed_clients(
    client: TestClient[Litestar],
    issuer: devstack.IssuerInfo,
    claims: dict[str, Any],
    reason: str,
) -> None:
    _assert_refused(client, issuer.mint(claims=claims), reason)


def test_a_day_long_token_is_still_accepted(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    day = issuer.mint(ttl=24 * 3600)
    assert client.get("/v1/me", headers=_bearer(day)).status_code == 200


def test_a_password_grant_for_another_client_is_refused(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    granted = issuer.password_grant("alice", "alice", client_id="admin-cli")
    assert granted.status_code == 200
    _assert_refused(client, granted.json()["access_token"], "client that is not accepted")
    spa = issuer.password_grant("alice", "alice").json()["access_token"]
    assert client.get("/v1/me", headers=_bearer(spa)).status_code == 200


def test_allowed_clients_is_a_setting(issuer: devstack.IssuerInfo) -> None:
    settings = load_settings({**os.environ, "KEYCLOAK_ALLOWED_CLIENTS": "app-spa, mobile"})
    assert settings.keycloak_allowed_clients == ("app-spa", "mobile")
    with TestClient(create_app(settings)) as other:
        mobile = issuer.mint(claims={"azp": "mobile"})
        assert other.get("/v1/me", headers=_bearer(mobile)).status_code == 200
        _assert_refused(other, issuer.mint(claims={"azp": "web"}), "client")


def test_an_oversized_token_is_refused_before_it_is_parsed(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    # Validly signed, 100 kB of `sub`: only its size is wrong.
    big = issuer.mint(claims={"sub": "x" * 100_000})
    _assert_refused(client, big, "token too large")
    _assert_refused(client, "a" * 1_000_000, "token too large")
    from litestar.exceptions import WebSocketDisconnect

    job_id = "00000000-0000-4000-8000-000000000000"
    over = issuer.mint(claims={"sub": "x" * 20_000})  # the test client's URLs stop at 64 kB
    with (
        client.websocket_connect(f"/ws/jobs/{job_id}?token={over}") as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_text()
    assert closed.value.code == 4401
    assert "too large" in str(closed.value.detail)
