"""The dev issuer's browser sign-in, driven over HTTP as an OIDC client library does:
discovery, the login form, authorization code with PKCE (S256, required), the token
endpoint's authorization_code and refresh_token grants, the SSO cookie, logout.

Tokens are verified with PyJWT against the published JWKS, and the API itself accepts
the access token a browser sign-in yields.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from devstack import DEV_ISSUER_HEADERS, IssuerInfo, dev_issuer
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.processes import REPO_ROOT

SPA = "http://localhost:5173"
REDIRECT = f"{SPA}/callback"
DOCS = "http://127.0.0.1:8000"
CLIENT_ID = "app-spa"


@pytest.fixture(scope="module")
def oidc() -> Iterator[IssuerInfo]:
    """An issuer of this module's own, which also lets the docs on DOCS sign in."""
    redirects = [f"{SPA}/*", f"{DOCS}/docs/*"]
    with dev_issuer(redirect_uris=redirects) as info:
        yield info


@pytest.fixture(scope="module")
def discovery(oidc: IssuerInfo) -> dict[str, Any]:
    response = httpx.get(f"{oidc.issuer}/.well-known/openid-configuration")
    assert response.status_code == 200
    config: dict[str, Any] = response.json()
    return config


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


class Browser:
    """A cookie jar that follows the sign-in by hand, as a browser would."""

    def __init__(self, issuer: IssuerInfo, discovery: dict[str, Any]) -> None:
        self.issuer = issuer
        self.discovery = discovery
        self.http = httpx.Client(follow_redirects=False)

    def authorize(self, **overrides: str | None) -> httpx.Response:
        params: dict[str, str | None] = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        sent = {name: value for name, value in params.items() if value is not None}
        return self.http.get(self.discovery["authorization_endpoint"], params=sent)

    def submit(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        form = _Form()
        form.feed(page.text)
        assert form.action, "the login page has no form"
        fields = {**form.fields, "username": username, "password": password}
        return self.http.post(self.issuer.base_url + form.action, data=fields)

    def sign_in(self, username: str = "alice") -> tuple[dict[str, list[str]], str]:
        """Returns the redirect's query and the code verifier."""
        verifier, challenge = pkce_pair()
        page = self.authorize(code_challenge=challenge)
        assert page.status_code == 200, page.text
        answer = self.submit(page, username, username)
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        return parse_qs(urlsplit(location).query), verifier

    def exchange(self, code: str, verifier: str | None, **extra: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            **extra,
        }
        if verifier is not None:
            form["code_verifier"] = verifier
        return httpx.post(self.discovery["token_endpoint"], data=form)


@pytest.fixture
def browser(oidc: IssuerInfo, discovery: dict[str, Any]) -> Iterator[Browser]:
    b = Browser(oidc, discovery)
    yield b
    b.http.close()


def verify(issuer: IssuerInfo, token: str, audience: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(issuer.jwks())
    key = next(k for k in jwks.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=issuer.issuer
    )
    return claims


def _error(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert "code" not in query
    return query


def test_discovery_names_keycloaks_paths(oidc: IssuerInfo, discovery: dict[str, Any]) -> None:
    base = f"{oidc.issuer}/protocol/openid-connect"
    assert discovery["issuer"] == oidc.issuer
    assert discovery["authorization_endpoint"] == f"{base}/auth"
    assert discovery["token_endpoint"] == f"{base}/token"
    assert discovery["end_session_endpoint"] == f"{base}/logout"
    assert discovery["jwks_uri"] == f"{base}/certs"
    assert discovery["userinfo_endpoint"] == f"{base}/userinfo"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token"} <= set(discovery["grant_types_supported"])
    assert discovery["response_types_supported"] == ["code"]


def test_the_authorization_endpoint_shows_a_login_form(browser: Browser) -> None:
    _, challenge = pkce_pair()
    page = browser.authorize(code_challenge=challenge)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for element in ("id='username'", "id='password'", "id='kc-login'"):
        assert element in page.text
    form = _Form()
    form.feed(page.text)
    assert form.fields["code_challenge"] == challenge
    assert form.fields["state"] == "st-1"


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_challenge_method": None}, "Missing parameter: code_challenge_method"),
        ({"code_challenge_method": "plain"}, "Invalid parameter: code_challenge_method"),
        ({}, "Missing parameter: code_challenge"),
        ({"code_challenge": "too-short"}, "Invalid parameter: code_challenge"),
    ],
)
def test_pkce_s256_is_required(
    browser: Browser, overrides: dict[str, str | None], description: str
) -> None:
    query = _error(browser.authorize(**overrides))
    assert query["error"] == ["invalid_request"]
    assert query["error_description"] == [description]
    assert query["state"] == ["st-1"]


def test_only_the_code_flow_is_offered(browser: Browser) -> None:
    _, challenge = pkce_pair()
    query = _error(browser.authorize(code_challenge=challenge, response_type="token"))
    assert query["error"] == ["unsupported_response_type"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "http://localhost:5173.evil.example/"},
        {"redirect_uri": "http://127.0.0.1:8000/v1/me"},
        # Issue 19: under /docs/* only before `..` is resolved, as the browser will.
        {"redirect_uri": f"{DOCS}/docs/../v1/me"},
        {"redirect_uri": f"{DOCS}/docs/%2e%2e/v1/me"},
        {"redirect_uri": f"{DOCS}/docs/.%2E%2Fv1/me"},
        {"redirect_uri": f"{DOCS}/docs\\..\\v1/me"},
        {"redirect_uri": None},
        {"client_id": "someone-else"},
    ],
)
def test_no_redirect_to_an_unlisted_uri_or_for_an_unknown_client(
    browser: Browser, overrides: dict[str, str | None]
) -> None:
    _, challenge = pkce_pair()
    response = browser.authorize(code_challenge=challenge, **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers


def test_the_api_docs_may_receive_a_code(browser: Browser) -> None:
    _, challenge = pkce_pair()
    page = browser.authorize(
        code_challenge=challenge, redirect_uri=f"{DOCS}/docs/oauth2-redirect.html"
    )
    answer = browser.submit(page, "bob", "bob")
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(f"{DOCS}/docs/oauth2-redirect.html?code=")


def test_a_wrong_password_shows_the_form_again(browser: Browser) -> None:
    _, challenge = pkce_pair()
    page = browser.authorize(code_challenge=challenge)
    again = browser.submit(page, "alice", "bob")
    assert again.status_code == 200
    assert "Invalid username or password." in again.text
    assert "location" not in again.headers
    assert "DEV_ISSUER_SESSION" not in again.headers.get("set-cookie", "")


def test_code_with_pkce_gives_keycloak_shaped_tokens(
    issuer: IssuerInfo, client: TestClient[Litestar]
) -> None:
    # The session's issuer, the one the API trusts (its redirects: the SPA's default).
    config = httpx.get(f"{issuer.issuer}/.well-known/openid-configuration").json()
    browser = Browser(issuer, config)
    query, verifier = browser.sign_in("alice")
    assert query["state"] == ["st-1"]
    assert query["iss"] == [issuer.issuer]
    response = browser.exchange(query["code"][0], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    assert body["refresh_expires_in"] > body["expires_in"] > 0
    access = verify(issuer, body["access_token"], "app-api")
    assert access["azp"] == CLIENT_ID
    assert access["preferred_username"] == "alice"
    assert access["tenant_id"] == "acme"
    assert access["exp"] - access["iat"] == body["expires_in"]
    identity = verify(issuer, body["id_token"], CLIENT_ID)
    assert identity["nonce"] == "n-1"
    assert identity["sub"] == access["sub"]
    assert identity["sid"] == access["sid"] == body["session_state"]
    # The API takes the browser's token like any other.
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


def test_a_wrong_verifier_is_refused_and_burns_the_code(browser: Browser) -> None:
    query, verifier = browser.sign_in()
    other, _ = pkce_pair()
    refused = browser.exchange(query["code"][0], other)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed: Code mismatch",
    }
    # The right verifier cannot rescue a code that has been tried.
    assert browser.exchange(query["code"][0], verifier).status_code == 400


@pytest.mark.parametrize(
    ("verifier", "description"),
    [(None, "PKCE code verifier not specified"), ("short", "PKCE invalid code verifier")],
)
def test_a_missing_or_malformed_verifier_is_refused(
    browser: Browser, verifier: str | None, description: str
) -> None:
    query, _ = browser.sign_in()
    refused = browser.exchange(query["code"][0], verifier)
    assert refused.status_code == 400
    assert refused.json()["error_description"] == description


def test_a_code_works_once(browser: Browser) -> None:
    query, verifier = browser.sign_in()
    assert browser.exchange(query["code"][0], verifier).status_code == 200
    again = browser.exchange(query["code"][0], verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "extra", [{"redirect_uri": f"{SPA}/elsewhere"}, {"client_id": "someone-else"}]
)
def test_a_code_is_bound_to_its_client_and_redirect(
    browser: Browser, extra: dict[str, str]
) -> None:
    query, verifier = browser.sign_in()
    refused = browser.exchange(query["code"][0], verifier, **extra)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def _refresh(discovery: dict[str, Any], token: str, client_id: str = CLIENT_ID) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return httpx.post(discovery["token_endpoint"], data=form)


def test_refresh_gives_fresh_tokens_for_the_same_user(
    browser: Browser, oidc: IssuerInfo, discovery: dict[str, Any]
) -> None:
    issuer = oidc
    query, verifier = browser.sign_in("carol")
    first = browser.exchange(query["code"][0], verifier).json()
    refreshed = _refresh(discovery, first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    claims = verify(issuer, body["access_token"], "app-api")
    assert claims["preferred_username"] == "carol"
    assert claims["jti"] != verify(issuer, first["access_token"], "app-api")["jti"]
    assert body["refresh_token"]
    assert body["id_token"]
    assert _refresh(discovery, body["refresh_token"]).status_code == 200


def test_refresh_refuses_unknown_tokens_and_other_clients(
    browser: Browser, discovery: dict[str, Any]
) -> None:
    assert _refresh(discovery, "made-up").json()["error"] == "invalid_grant"
    query, verifier = browser.sign_in()
    token = browser.exchange(query["code"][0], verifier).json()["refresh_token"]
    assert _refresh(discovery, token, client_id="someone-else").status_code == 400


def test_the_sso_cookie_skips_the_form_until_logout(
    browser: Browser, discovery: dict[str, Any]
) -> None:
    query, verifier = browser.sign_in("dave")
    tokens = browser.exchange(query["code"][0], verifier).json()
    _, challenge = pkce_pair()
    silent = browser.authorize(code_challenge=challenge, prompt="none")
    assert silent.status_code == 302
    assert "code=" in silent.headers["location"]

    logout = browser.http.get(
        discovery["end_session_endpoint"],
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": f"{SPA}/",
            "state": "bye",
        },
    )
    assert logout.status_code == 302
    assert logout.headers["location"] == f"{SPA}/?state=bye"
    # Signed out: the form again, prompt=none says so, and the refresh token is dead.
    assert browser.authorize(code_challenge=challenge).status_code == 200
    after = _error(browser.authorize(code_challenge=challenge, prompt="none"))
    assert after["error"] == ["login_required"]
    assert _refresh(discovery, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_prompt_login_shows_the_form_despite_a_session(browser: Browser) -> None:
    browser.sign_in("alice")
    _, challenge = pkce_pair()
    assert browser.authorize(code_challenge=challenge, prompt="login").status_code == 200


@pytest.mark.parametrize(
    # The second one is under /docs/* only until `..` is resolved (issue 19).
    "redirect",
    ["https://evil.example/", f"{DOCS}/docs/../v1/me"],
)
def test_logout_refuses_an_unlisted_redirect(
    browser: Browser, discovery: dict[str, Any], redirect: str
) -> None:
    query, verifier = browser.sign_in()
    tokens = browser.exchange(query["code"][0], verifier).json()
    response = browser.http.get(
        discovery["end_session_endpoint"],
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": redirect},
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    # Nothing was ended by the refused request.
    assert _refresh(discovery, tokens["refresh_token"]).status_code == 200


def test_logout_with_a_refresh_token_ends_the_session(
    browser: Browser, discovery: dict[str, Any]
) -> None:
    query, verifier = browser.sign_in()
    tokens = browser.exchange(query["code"][0], verifier).json()
    ended = httpx.post(
        discovery["end_session_endpoint"],
        data={"client_id": CLIENT_ID, "refresh_token": tokens["refresh_token"]},
    )
    assert ended.status_code == 204
    assert _refresh(discovery, tokens["refresh_token"]).status_code == 400


def test_userinfo_answers_for_a_valid_token_only(
    browser: Browser, discovery: dict[str, Any], oidc: IssuerInfo
) -> None:
    query, verifier = browser.sign_in("bob")
    access = browser.exchange(query["code"][0], verifier).json()["access_token"]
    info = httpx.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {access}"})
    assert info.status_code == 200
    assert info.json()["preferred_username"] == "bob"
    forged = oidc.mint(alg="HS256")
    refused = httpx.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401


def test_the_login_page_escapes_what_it_echoes(browser: Browser) -> None:
    _, challenge = pkce_pair()
    page = browser.authorize(code_challenge=challenge, state="'><script>alert(1)</script>")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text


# --- the same client in compose's Keycloak realm ------------------------------------


def test_the_dev_issuer_and_the_keycloak_realm_describe_the_same_client() -> None:
    realm = json.loads((REPO_ROOT / "scripts" / "keycloak" / "realm-app.json").read_text())
    (keycloak,) = [c for c in realm["clients"] if c["clientId"] == CLIENT_ID]
    # The dev issuer as compose's defaults would configure it: SPA on 5173, API on 8000.
    with dev_issuer(redirect_uris=[f"{SPA}/*", "http://localhost:8000/docs/*"]) as local:
        (described,) = httpx.get(f"{local.base_url}/dev/clients", headers=DEV_ISSUER_HEADERS).json()
    for key in ("clientId", "publicClient", "standardFlowEnabled", "implicitFlowEnabled"):
        assert described[key] == keycloak[key], key
    assert set(described["redirectUris"]) == set(keycloak["redirectUris"])
    assert set(described["webOrigins"]) == set(keycloak["webOrigins"])
    # Both refuse a refresh token used before (the dev issuer: test_a_refresh_token_works_once).
    assert realm["revokeRefreshToken"] is True
    assert realm["refreshTokenMaxReuse"] == 0
    for attribute in ("pkce.code.challenge.method", "post.logout.redirect.uris"):
        wanted = set(keycloak["attributes"][attribute].split("##"))
        assert set(described["attributes"][attribute].split("##")) == wanted, attribute


def test_login_form_fields_match_keycloaks_ids(browser: Browser) -> None:
    # Browser tests fill #username, #password and click #kc-login on either server.
    _, challenge = pkce_pair()
    page = browser.authorize(code_challenge=challenge).text
    assert re.search(r"<input id='username' name='username'", page)
    assert re.search(r"<input id='password' name='password' type='password'", page)


def test_the_issuers_log_holds_no_credential(tmp_path: Path) -> None:
    """Its request lines name method and path only: a logout's `id_token_hint`, a code or a
    token in a query string never reach the log (the log is shown under scripts/dev)."""
    log_file = tmp_path / "issuer.log"
    with (
        log_file.open("wb") as sink,
        dev_issuer(redirect_uris=[f"{SPA}/*"], quiet=False, stderr=sink) as issuer,
    ):
        response = httpx.get(f"{issuer.issuer}/.well-known/openid-configuration", timeout=10)
        found = response.json()
        browser = Browser(issuer, found)
        query, verifier = browser.sign_in("carol")
        tokens = browser.exchange(query["code"][0], verifier).json()
        logout = browser.http.get(
            found["end_session_endpoint"],
            params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{SPA}/"},
        )
        assert logout.status_code == 302
        browser.http.get(f"{issuer.jwks_url}?access_token={tokens['access_token']}")
    log = log_file.read_text()
    assert "/protocol/openid-connect/logout" in log  # the lines are there, cleaned
    for secret in (tokens["id_token"], tokens["access_token"], query["code"][0]):
        assert secret not in log
        assert secret.rsplit(".", 1)[-1] not in log


# --- hardening (issue 19, finding 6) ------------------------------------------------


def _claim_values(token: str) -> set[str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {str(value) for value in claims.values()}


def test_the_sso_cookie_is_a_secret_of_its_own_never_a_claim(
    browser: Browser, oidc: IssuerInfo, discovery: dict[str, Any]
) -> None:
    query, verifier = browser.sign_in("alice")
    tokens = browser.exchange(query["code"][0], verifier).json()
    cookie = browser.http.cookies["DEV_ISSUER_SESSION"]
    assert len(cookie) >= 43
    for name in ("access_token", "id_token"):
        assert cookie not in _claim_values(tokens[name]), name
    assert cookie != tokens["session_state"]
    # A leaked token's `sid`, set as the cookie, signs no one in.
    sid = verify(oidc, tokens["access_token"], "app-api")["sid"]
    thief = Browser(oidc, discovery)
    thief.http.cookies.set("DEV_ISSUER_SESSION", sid)
    _, challenge = pkce_pair()
    assert _error(thief.authorize(code_challenge=challenge, prompt="none"))["error"] == [
        "login_required"
    ]
    # The real cookie does.
    silent = browser.authorize(code_challenge=challenge, prompt="none")
    assert "code=" in silent.headers["location"]


def test_the_login_form_has_a_csrf_token_and_may_not_be_framed(
    browser: Browser, oidc: IssuerInfo, discovery: dict[str, Any]
) -> None:
    _, challenge = pkce_pair()
    page = browser.authorize(code_challenge=challenge)
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in page.headers
    form = _Form()
    form.feed(page.text)
    assert form.fields["csrf_token"]
    fields = {**form.fields, "username": "alice", "password": "alice"}
    # Another site's page posting the same fields: its browser has no CSRF cookie here
    # (SameSite=Strict), or the token it guessed is not the one for that cookie.
    for cookies in ({}, dict(browser.http.cookies)):
        forged = {**fields, "csrf_token": "0" * 64} if cookies else fields
        with httpx.Client(cookies=cookies) as elsewhere:
            answer = elsewhere.post(oidc.base_url + form.action, data=forged)
        assert answer.status_code == 403, answer.text
        assert "location" not in answer.headers
    assert browser.submit(page, "alice", "alice").status_code == 302


def test_logout_by_get_ends_only_the_session_its_hint_names(
    oidc: IssuerInfo, discovery: dict[str, Any]
) -> None:
    alice, bob = Browser(oidc, discovery), Browser(oidc, discovery)
    query, verifier = alice.sign_in("alice")
    alices = alice.exchange(query["code"][0], verifier).json()
    query, verifier = bob.sign_in("bob")
    bob.exchange(query["code"][0], verifier)
    _, challenge = pkce_pair()
    endpoint = discovery["end_session_endpoint"]
    # Bob's browser is sent to a logout link carrying Alice's hint: he is asked first,
    # and nobody is signed out.
    asked = bob.http.get(endpoint, params={"id_token_hint": alices["id_token"]})
    assert asked.status_code == 200
    assert asked.headers["x-frame-options"] == "DENY"
    for who in (alice, bob):
        assert "code=" in who.authorize(code_challenge=challenge, prompt="none").headers["location"]
    # A cross-site POST of that form (no CSRF cookie) ends nothing either.
    confirm = _Form()
    confirm.feed(asked.text)
    assert confirm.action.endswith("/logout")
    with httpx.Client() as elsewhere:
        refused = elsewhere.post(oidc.base_url + confirm.action, data=confirm.fields)
    assert refused.status_code == 403
    # Bob confirms on the issuer's own page: he is signed out, Alice is not.
    assert bob.http.post(oidc.base_url + confirm.action, data=confirm.fields).status_code == 200
    assert bob.authorize(code_challenge=challenge).status_code == 200  # the form again
    assert "code=" in alice.authorize(code_challenge=challenge, prompt="none").headers["location"]
    # Alice's own hint in her own browser signs her out at once.
    done = alice.http.get(endpoint, params={"id_token_hint": alices["id_token"]})
    assert done.status_code == 200
    assert "You are logged out" in done.text
    assert _error(alice.authorize(code_challenge=challenge, prompt="none"))["error"] == [
        "login_required"
    ]


def test_a_refresh_token_works_once(browser: Browser, discovery: dict[str, Any]) -> None:
    query, verifier = browser.sign_in("bob")
    first = browser.exchange(query["code"][0], verifier).json()["refresh_token"]
    renewed = _refresh(discovery, first)
    assert renewed.status_code == 200
    second = renewed.json()["refresh_token"]
    assert second != first
    reused = _refresh(discovery, first)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert _refresh(discovery, second).status_code == 200
