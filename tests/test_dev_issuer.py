"""The development token issuer, checked as a client (and the API) would use it.

Every token is verified with PyJWT against the JWKS fetched over HTTP, so these tests
prove the issuer is a usable stand-in for Keycloak, not just that it answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from devstack import DEV_ISSUER_HEADERS, IssuerInfo, dev_issuer

DEV_USERS: dict[str, dict[str, Any]] = {
    "alice": {"roles": ["user", "admin"], "tenant": "acme", "name": "Alice Anderson"},
    "bob": {"roles": ["user"], "tenant": "acme", "name": "Bob Brown"},
    "carol": {"roles": ["user"], "tenant": "globex", "name": "Carol Clark"},
    "dave": {"roles": ["user"], "tenant": None, "name": "Dave Davis"},
}


@pytest.fixture(scope="module")
def issuer() -> Iterator[IssuerInfo]:
    with dev_issuer() as info:
        yield info


def _header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jwt.get_unverified_header(token)
    return header


def _unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def verify(issuer: IssuerInfo, token: str) -> dict[str, Any]:
    """Verify like the API does: key by kid from the published JWKS, RS256 only, iss+aud+exp."""
    jwks = jwt.PyJWKSet.from_dict(issuer.jwks())
    kid = _header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=issuer.audience,
        issuer=issuer.issuer,
        options={"require": ["exp", "iat", "sub"]},
    )
    return claims


def test_ready_info_and_discovery_document_agree(issuer: IssuerInfo) -> None:
    assert issuer.issuer == f"{issuer.base_url}/realms/app"
    assert issuer.jwks_url == f"{issuer.issuer}/protocol/openid-connect/certs"
    assert issuer.token_url == f"{issuer.issuer}/protocol/openid-connect/token"
    assert issuer.audience == "app-api"
    config = httpx.get(f"{issuer.issuer}/.well-known/openid-configuration").json()
    assert config["issuer"] == issuer.issuer
    assert config["jwks_uri"] == issuer.jwks_url
    assert config["token_endpoint"] == issuer.token_url


def test_jwks_publishes_rsa_signing_keys(issuer: IssuerInfo) -> None:
    keys = issuer.jwks()["keys"]
    assert len(keys) >= 1
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert key["kid"]
        assert key["e"] == "AQAB"
        # 2048-bit modulus: 256 bytes, base64url without padding.
        assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256


@pytest.mark.parametrize("username", sorted(DEV_USERS))
def test_dev_token_carries_keycloak_shaped_claims(issuer: IssuerInfo, username: str) -> None:
    expected = DEV_USERS[username]
    token = issuer.token(username)

    claims = verify(issuer, token)
    header = _header(token)

    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert header["kid"] in {key["kid"] for key in issuer.jwks()["keys"]}
    assert claims["iss"] == issuer.issuer
    assert claims["aud"] == ["app-api", "account"]
    assert claims["azp"] == "app-spa"
    assert claims["typ"] == "Bearer"
    assert claims["scope"] == "openid profile email"
    assert claims["preferred_username"] == username
    assert claims["email"] == f"{username}@example.com"
    assert claims["email_verified"] is True
    assert claims["name"] == expected["name"]
    assert [claims["given_name"], claims["family_name"]] == expected["name"].split()
    assert claims["realm_access"] == {"roles": expected["roles"]}
    assert "account" in claims["resource_access"]
    assert uuid.UUID(claims["sub"])
    assert uuid.UUID(claims["jti"])
    assert claims["nbf"] <= time.time() + 1
    assert claims["exp"] > time.time() + 60
    if expected["tenant"] is None:
        assert "tenant_id" not in claims
    else:
        assert claims["tenant_id"] == expected["tenant"]


def test_subjects_are_stable_and_distinct(issuer: IssuerInfo) -> None:
    subjects = {name: _unverified_claims(issuer.token(name))["sub"] for name in DEV_USERS}
    again = {name: _unverified_claims(issuer.token(name))["sub"] for name in DEV_USERS}
    assert subjects == again
    assert len(set(subjects.values())) == len(DEV_USERS)


def test_only_alice_has_client_roles_for_the_api(issuer: IssuerInfo) -> None:
    alice = _unverified_claims(issuer.token("alice"))["resource_access"]
    bob = _unverified_claims(issuer.token("bob"))["resource_access"]
    assert alice["app-api"]["roles"] == ["projects:write"]
    assert "app-api" not in bob


def test_dev_token_ttl_sets_lifetime_and_negative_ttl_is_already_expired(
    issuer: IssuerInfo,
) -> None:
    short = verify(issuer, issuer.token("bob", ttl=60))
    assert short["exp"] - short["iat"] == 60

    expired = issuer.token("bob", ttl=-120)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(issuer, expired)


def test_dev_token_for_unknown_user_is_404(issuer: IssuerInfo) -> None:
    response = httpx.get(f"{issuer.base_url}/dev/token/mallory", headers=DEV_ISSUER_HEADERS)
    assert response.status_code == 404
    assert "alice" in response.text


def test_password_grant_returns_keycloak_token_response(issuer: IssuerInfo) -> None:
    response = issuer.password_grant("carol", "carol")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_expires_in"] == 0
    assert body["scope"] == "openid profile email"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    claims = verify(issuer, body["access_token"])
    assert claims["preferred_username"] == "carol"
    assert claims["tenant_id"] == "globex"
    assert claims["exp"] - claims["iat"] == body["expires_in"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("alice", ""), ("mallory", "mallory"), ("", "")],
)
def test_password_grant_rejects_bad_credentials(
    issuer: IssuerInfo, username: str, password: str
) -> None:
    response = issuer.password_grant(username, password)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"


def test_token_endpoint_rejects_other_grant_types(issuer: IssuerInfo) -> None:
    response = httpx.post(issuer.token_url, data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_mint_overrides_and_removes_claims(issuer: IssuerInfo) -> None:
    token = issuer.mint(
        username="bob",
        claims={
            "realm_access": {"roles": ["user", "auditor"]},
            "tenant_id": "initech",
            "email": None,
            "custom": {"nested": True},
        },
    )
    claims = verify(issuer, token)
    assert claims["preferred_username"] == "bob"
    assert claims["realm_access"]["roles"] == ["user", "auditor"]
    assert claims["tenant_id"] == "initech"
    assert claims["custom"] == {"nested": True}
    assert "email" not in claims


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"iss": "http://evil.example/realms/app"}, jwt.InvalidIssuerError),
        ({"aud": "someone-else"}, jwt.InvalidAudienceError),
        ({"exp": 1_000_000_000}, jwt.ExpiredSignatureError),
        ({"nbf": 4_000_000_000}, jwt.ImmatureSignatureError),
        ({"exp": None}, jwt.MissingRequiredClaimError),
        ({"sub": None}, jwt.MissingRequiredClaimError),
    ],
)
def test_minted_bad_tokens_fail_verification_for_the_right_reason(
    issuer: IssuerInfo, claims: dict[str, Any], error: type[Exception]
) -> None:
    token = issuer.mint(claims=claims)
    # The signature is genuine: only the overridden claim is wrong.
    assert jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(error):
        verify(issuer, token)


def test_mint_for_an_ad_hoc_user_and_with_ttl(issuer: IssuerInfo) -> None:
    claims = verify(issuer, issuer.mint(username="erin", ttl=30))
    assert claims["preferred_username"] == "erin"
    assert claims["realm_access"] == {"roles": ["user"]}
    assert "tenant_id" not in claims
    assert claims["exp"] - claims["iat"] == 30


def test_mint_header_overrides(issuer: IssuerInfo) -> None:
    unknown_kid = issuer.mint(headers={"kid": "no-such-key"})
    assert _header(unknown_kid)["kid"] == "no-such-key"

    no_kid = issuer.mint(headers={"kid": None, "x-extra": "1"})
    assert "kid" not in _header(no_kid)
    assert _header(no_kid)["x-extra"] == "1"


def test_mint_alg_none_has_no_signature(issuer: IssuerInfo) -> None:
    token = issuer.mint(alg="none")
    assert _header(token)["alg"] == "none"
    assert token.endswith(".")
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(issuer, token)


def test_mint_hs256_is_keyed_with_the_public_key_pem(issuer: IssuerInfo) -> None:
    token = issuer.mint(alg="HS256")
    header_b64, payload_b64, signature_b64 = token.split(".")
    assert _header(token)["alg"] == "HS256"

    jwks = jwt.PyJWKSet.from_dict(issuer.jwks())
    public_key = next(k for k in jwks.keys if k.key_id == _header(token)["kid"]).key
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hmac.new(pem, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature_b64 + "==") == expected
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(issuer, token)


@pytest.mark.parametrize(
    "body",
    [{"claims": []}, {"ttl": "soon"}, {"alg": "ES256"}, {"username": ""}, {"headers": "x"}],
)
def test_mint_rejects_malformed_requests(issuer: IssuerInfo, body: dict[str, Any]) -> None:
    response = httpx.post(f"{issuer.base_url}/dev/mint", json=body, headers=DEV_ISSUER_HEADERS)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_stats_count_every_jwks_fetch_and_nothing_else(issuer: IssuerInfo) -> None:
    before = issuer.jwks_requests()
    for _ in range(3):
        issuer.jwks()
    issuer.token("alice")
    issuer.password_grant("alice", "alice")
    httpx.get(f"{issuer.issuer}/.well-known/openid-configuration")
    assert issuer.jwks_requests() == before + 3


def test_jwks_fault_injection_and_recovery(issuer: IssuerInfo) -> None:
    issuer.set_jwks_fault(503)
    try:
        assert httpx.get(issuer.jwks_url).status_code == 503
    finally:
        issuer.set_jwks_fault(None)
    assert httpx.get(issuer.jwks_url).status_code == 200

    issuer.set_jwks_fault(None, delay_ms=300)
    try:
        started = time.monotonic()
        assert httpx.get(issuer.jwks_url).status_code == 200
        assert time.monotonic() - started >= 0.3
    finally:
        issuer.set_jwks_fault(None)


def test_users_listing_matches_the_tokens(issuer: IssuerInfo) -> None:
    listed = {user["username"]: user for user in issuer.users()}
    assert set(listed) == set(DEV_USERS)
    for name, user in listed.items():
        assert user["password"] == name
        assert user["tenant_id"] == DEV_USERS[name]["tenant"]
        assert user["sub"] == _unverified_claims(issuer.token(name))["sub"]


def test_rotation_publishes_a_second_key_and_signs_with_it() -> None:
    with dev_issuer() as issuer:
        old_token = issuer.token("alice")
        old_kid = _header(old_token)["kid"]

        new_kid = issuer.rotate()

        assert new_kid != old_kid
        assert {key["kid"] for key in issuer.jwks()["keys"]} == {old_kid, new_kid}
        new_token = issuer.token("alice")
        assert _header(new_token)["kid"] == new_kid
        assert verify(issuer, new_token)["preferred_username"] == "alice"
        # Tokens signed before the rotation stay valid while the old key is published.
        assert verify(issuer, old_token)["preferred_username"] == "alice"


def test_key_file_keeps_tokens_valid_across_a_restart(tmp_path: Path) -> None:
    key_file = tmp_path / "issuer-key.json"
    with dev_issuer(key_file=key_file) as first:
        token = first.token("bob")
        first_kids = [key["kid"] for key in first.jwks()["keys"]]
    assert os.stat(key_file).st_mode & 0o077 == 0, "private keys must not be world-readable"
    assert json.loads(key_file.read_text())["keys"][0]["kid"] == first_kids[0]

    with dev_issuer(key_file=key_file) as second:
        assert [key["kid"] for key in second.jwks()["keys"]] == first_kids
        # Same issuer URL only if the port is the same; compare everything but `iss`.
        jwks = jwt.PyJWKSet.from_dict(second.jwks())
        claims = jwt.decode(
            token,
            jwks.keys[0],
            algorithms=["RS256"],
            audience="app-api",
            options={"verify_iss": False},
        )
        assert claims["preferred_username"] == "bob"


def test_issuer_process_is_gone_after_the_block() -> None:
    with dev_issuer() as issuer:
        pid = issuer.pid
        stats = httpx.get(f"{issuer.base_url}/dev/stats", headers=DEV_ISSUER_HEADERS)
        assert stats.status_code == 200
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- /dev/* is not for web pages; malformed requests (issue 19, finding 6) -----------


def test_dev_endpoints_refuse_what_a_page_on_another_origin_can_send(
    issuer: IssuerInfo,
) -> None:
    page = {"Origin": "https://evil.example"}
    # What a page can send without a preflight: a "simple" POST (text/plain body).
    simple = httpx.post(
        f"{issuer.base_url}/dev/mint",
        content=json.dumps({"username": "mallory", "claims": {"tenant_id": "globex"}}),
        headers={**page, "Content-Type": "text/plain"},
    )
    assert simple.status_code == 403
    assert "access-control-allow-origin" not in simple.headers
    assert "X-Dev-Issuer" in simple.json()["error_description"]
    for method, path in [("POST", "/dev/rotate"), ("GET", "/dev/token/alice")]:
        assert httpx.request(method, f"{issuer.base_url}{path}", headers=page).status_code == 403
    # The preflight that sending the header would need is never granted.
    preflight = httpx.options(
        f"{issuer.base_url}/dev/mint",
        headers={
            **page,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-dev-issuer",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-headers" not in preflight.headers
    # A page whose own name was rebound to 127.0.0.1 is same-origin: its Host gives it away.
    rebound = httpx.get(
        f"{issuer.base_url}/dev/token/alice",
        headers={**DEV_ISSUER_HEADERS, "Host": "evil.example"},
    )
    assert rebound.status_code == 403
    # Tools and tests send the header, and get no CORS headers either.
    token = httpx.get(f"{issuer.base_url}/dev/token/alice", headers=DEV_ISSUER_HEADERS)
    assert token.status_code == 200
    assert "access-control-allow-origin" not in token.headers
    # The OIDC endpoints an SPA calls keep their CORS.
    well_known = httpx.get(f"{issuer.issuer}/.well-known/openid-configuration", headers=page)
    assert well_known.headers["access-control-allow-origin"] == "*"


def _raw_exchange(base_url: str, request: bytes) -> bytes:
    import socket

    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_request_line_is_a_400_that_logs_nothing_of_it(tmp_path: Path) -> None:
    secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsZWFrIn0.c2lnbmF0dXJl"
    log_file = tmp_path / "issuer.log"
    with log_file.open("wb") as sink, dev_issuer(quiet=False, stderr=sink) as issuer:
        for line in (
            f"GET /dev/token/alice?token={secret} extra HTTP/1.1",
            f"GET /realms/app?id_token_hint={secret} HTTP/9",
            f"GET /?token={secret} HTTP/1.1 junk",
        ):
            answer = _raw_exchange(issuer.base_url, f"{line}\r\nHost: x\r\n\r\n".encode())
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
            assert secret.encode() not in answer
        # Still serving.
        assert httpx.get(issuer.jwks_url).status_code == 200
    log = log_file.read_text()
    assert "malformed request line" in log
    assert secret not in log
    assert secret.split(".")[1] not in log
    assert "Traceback" not in log
