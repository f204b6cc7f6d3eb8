"""Development token issuer: a tiny stand-in for a Keycloak realm.

It runs as its own process (``scripts/dev`` and the test suite start it); the API never
imports it and trusts it only because ``KEYCLOAK_*`` point at it. Standard library HTTP
server plus ``cryptography`` for RS256 signatures, nothing else.

Run::

    python scripts/dev_issuer.py --host 127.0.0.1 --port 0 --realm app --audience app-api \
        [--key-file .devdata/issuer-key.json] [--ready-file PATH] [--quiet]

Once listening it prints one JSON line on stdout (and writes it to ``--ready-file``)::

    {"issuer": "http://127.0.0.1:PORT/realms/app", "jwks_url": ..., "token_url": ...,
     "audience": "app-api", "base_url": "http://127.0.0.1:PORT", "realm": "app"}

Keycloak-shaped endpoints (``{issuer}`` = ``{base_url}/realms/{realm}``):

- ``GET  {issuer}/.well-known/openid-configuration``
- ``GET  {issuer}/protocol/openid-connect/certs`` - the JWKS, every published key
- ``GET  {issuer}/protocol/openid-connect/auth`` - the browser sign-in of a public client
  (``app-spa``, or ``--client-id``): authorization code flow with PKCE ``S256``, which is
  required. Shows a login form (a dev user's password is its username) and redirects to
  ``redirect_uri?code=...&state=...``. ``redirect_uri`` must match a ``--redirect-uri``
  pattern (Keycloak's rule: exact, or a prefix ending in ``*``) once normalised (``.``
  and ``..`` segments resolved, percent-encoding decoded: ``/docs/../v1/me`` is not under
  ``/docs/*``). The form carries a CSRF token bound to a cookie, and may not be framed
  (``frame-ancestors 'none'``, ``X-Frame-Options: DENY``). A signed-in browser keeps an
  SSO cookie (a random value of its own, never a claim of any token), so a second sign-in
  skips the form until logout (``prompt=login`` forces it, ``prompt=none`` never shows
  it).
- ``POST {issuer}/protocol/openid-connect/token`` - grants ``authorization_code`` (with
  ``code_verifier``; a code works once, for 60 s), ``refresh_token`` (single use: each
  answer carries a new refresh token and the one sent is dead, as Keycloak's "revoke
  refresh token") and, for curl, ``password``
  (``grant_type=password&username=alice&password=alice&client_id=app-spa``; a wrong
  password is ``401 invalid_grant``).
- ``GET|POST {issuer}/protocol/openid-connect/logout`` - ends the SSO session. A GET does
  so only when its ``id_token_hint`` names the session of the browser's SSO cookie;
  otherwise it shows a confirmation form (POST, with a CSRF token). A POSTed
  ``refresh_token`` (an SPA's back-channel logout) ends that token's session.
  ``post_logout_redirect_uri`` and ``state`` as in Keycloak.
- ``GET  {issuer}/protocol/openid-connect/userinfo`` - the signed-in user's claims.

Dev users: alice (realm roles user+admin, tenant acme), bob (user, acme),
carol (user, globex), dave (user, no tenant claim).

Conveniences for development and tests, under ``{base_url}/dev/`` (always on - this
program exists only for development). Every one but ``GET /dev`` needs the header
``X-Dev-Issuer: 1`` and a loopback ``Host``: a web page on another origin cannot send that
header without a CORS preflight, which ``/dev/*`` never grants (no
``Access-Control-Allow-Origin`` there), so no page a developer visits can mint, rotate
or withdraw anything (``curl -H 'X-Dev-Issuer: 1' ...``):

- ``GET  /dev`` - this help as plain text.
- ``GET  /dev/users`` - the dev users and their roles/tenant as JSON.
- ``GET  /dev/token/{username}?ttl=SECONDS`` - a dev user's access token as plain text,
  e.g. ``TOKEN=$(curl -s -H 'X-Dev-Issuer: 1' http://127.0.0.1:8081/dev/token/alice)``.
  A negative ttl gives an already expired token.
- ``POST /dev/mint`` - JSON ``{"username": "alice", "claims": {...}, "headers": {...},
  "ttl": 300, "alg": "RS256"}``, every field optional. ``claims``/``headers`` override the
  usual ones and a ``null`` value removes that claim/header field. ``username`` may also
  name a user that is not built in (roles ["user"], no tenant). ``alg`` picks how the
  token is signed: ``RS256`` (current key, the default), ``none`` (no signature) or
  ``HS256`` (HMAC keyed with the current public key's PEM - the classic key-confusion
  forgery). Answers ``{"access_token": ..., "kid": ...}``.
- ``POST /dev/rotate`` - makes a new signing key, publishes it beside the old ones and
  answers ``{"kid": ...}``.
- ``POST /dev/withdraw`` - JSON ``{"kid": ...}`` removes that key from the JWKS (as an
  operator does with a leaked key); the newest remaining key signs. The last key stays.
- ``POST /dev/jwks-fault`` - JSON ``{"status": 503, "delay_ms": 0}`` makes the JWKS
  endpoint answer that status and/or wait that long; ``{"status": null}`` restores it.
- ``GET  /dev/stats`` - ``{"jwks_requests": N, "tokens_issued": M}``.
- ``GET  /dev/clients`` - the public client as Keycloak's realm export describes one
  (``clientId``, ``redirectUris``, ``webOrigins``, PKCE attribute), to compare with
  ``scripts/keycloak/realm-app.json``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_TTL_SECONDS = 3600
# Browser sign-in: a code lives 60 s (as in Keycloak); a refresh token and the SSO session
# as long as the realm file's maximum session (10 h).
CODE_TTL_SECONDS = 60
SESSION_TTL_SECONDS = 36_000
SSO_COOKIE = "DEV_ISSUER_SESSION"
CSRF_COOKIE = "DEV_ISSUER_CSRF"
CSRF_FIELD = "csrf_token"
# /dev/* answers only requests that carry this header (see the module docstring).
DEV_HEADER = "X-Dev-Issuer"
# /dev/* answers only to these Host names (besides the one it advertises): a page that
# rebinds its own DNS name to 127.0.0.1 is same-origin, but its Host is its own name.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
# The login form and the other pages may not be framed (clickjacking).
NO_FRAMING = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}
DEFAULT_REDIRECT_URIS = ("http://localhost:5173/*",)
# RFC 7636: a verifier is 43-128 unreserved characters; an S256 challenge is 43 base64url.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CLIENT_ID = "app-spa"
SCOPE = "openid profile email"
# Keycloak puts these on every account; keeping them makes client-role parsing realistic.
ACCOUNT_CLIENT_ROLES = ["manage-account", "manage-account-links", "view-profile"]
# Fixed namespace so a user's `sub` is the same on every run and every machine.
SUB_NAMESPACE = uuid.UUID("5b0e7c1e-6f0a-4d8e-9a51-3c2f1d0b9e47")


@dataclass(frozen=True)
class DevUser:
    username: str
    given_name: str
    family_name: str
    realm_roles: list[str]
    tenant_id: str | None
    client_roles: dict[str, list[str]] = field(default_factory=dict)

    @property
    def sub(self) -> str:
        return str(uuid.uuid5(SUB_NAMESPACE, self.username))

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"

    def describe(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.username,
            "sub": self.sub,
            "name": f"{self.given_name} {self.family_name}",
            "realm_roles": self.realm_roles,
            "client_roles": self.client_roles,
            "tenant_id": self.tenant_id,
        }


def _dev_users(audience: str) -> dict[str, DevUser]:
    users = [
        DevUser(
            "alice", "Alice", "Anderson", ["user", "admin"], "acme", {audience: ["projects:write"]}
        ),
        DevUser("bob", "Bob", "Brown", ["user"], "acme"),
        DevUser("carol", "Carol", "Clark", ["user"], "globex"),
        DevUser("dave", "Dave", "Davis", ["user"], None),
    ]
    return {user.username: user for user in users}


def _ad_hoc_user(username: str) -> DevUser:
    """A user that is not built in, for /dev/mint: plain "user" role, no tenant."""
    return DevUser(username, username.capitalize(), "Tester", ["user"], None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=False).encode()


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey

    @property
    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}

    @property
    def kid(self) -> str:
        # RFC 7638 thumbprint: stable for a key, different for every new key.
        jwk = self.public_jwk
        canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
        return _b64url(hashlib.sha256(canonical.encode()).digest())

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the key file holds a key that is not RSA")
        return cls(key)


class KeyRing:
    """Published keys; the last one signs. Optionally persisted so tokens outlive a restart."""

    def __init__(self, key_file: Path | None) -> None:
        self._key_file = key_file
        self._keys: list[SigningKey] = []
        if key_file is not None and key_file.exists():
            stored = json.loads(key_file.read_text())
            self._keys = [SigningKey.from_pem(entry["private_key_pem"]) for entry in stored["keys"]]
        if not self._keys:
            self._keys.append(SigningKey.generate())
            self._save()

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def all(self) -> list[SigningKey]:
        return list(self._keys)

    def rotate(self) -> SigningKey:
        self._keys.append(SigningKey.generate())
        self._save()
        return self.current

    def withdraw(self, kid: str) -> None:
        remaining = [key for key in self._keys if key.kid != kid]
        if len(remaining) == len(self._keys):
            raise BadRequest(f"no published key has kid {kid!r}")
        if not remaining:
            raise BadRequest("the last signing key cannot be withdrawn")
        self._keys = remaining
        self._save()

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**key.public_jwk, "kid": key.kid, "use": "sig", "alg": "RS256"}
                for key in self._keys
            ]
        }

    def _save(self) -> None:
        if self._key_file is None:
            return
        self._key_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "keys": [{"kid": key.kid, "private_key_pem": key.private_pem()} for key in self._keys]
        }
        temporary = self._key_file.with_name(self._key_file.name + ".tmp")
        # Private keys: readable by the owner only, written atomically.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
        temporary.replace(self._key_file)


class BadRequest(Exception):
    """A /dev request the issuer cannot honour; the message goes back to the caller."""


class OAuthError(Exception):
    """An OAuth error answer: `error` code, a description, and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def pkce_s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def normalised_uri(uri: str) -> str | None:
    """`uri` as a browser resolves it: scheme and host lower-cased, percent-encoding of
    the path decoded and its `.`/`..` segments resolved (RFC 3986 5.2.4); None for what
    no redirect should be (a fragment, a backslash, spaces or control characters)."""
    if not uri or any(char in uri for char in "#\\") or not uri.isprintable() or " " in uri:
        return None
    parts = urlsplit(uri)
    path = unquote(parts.path)
    if "\\" in path or not path.isprintable():
        return None
    resolved: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    if path.endswith(("/.", "/..")):
        resolved.append("")
    clean_path = "/" + "/".join(resolved) if parts.netloc or path.startswith("/") else path
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), clean_path, parts.query, ""))


def redirect_allowed(uri: str, patterns: tuple[str, ...]) -> bool:
    """Keycloak's matching: a pattern is an exact URI or a prefix ending in `*`, compared
    with `uri` normalised, so `/docs/../v1/me` does not pass for `/docs/*`."""
    normal = normalised_uri(uri)
    if normal is None:
        return False
    for pattern in patterns:
        wildcard = pattern.endswith("*")
        wanted = normalised_uri(pattern[:-1] if wildcard else pattern)
        if wanted is not None and (normal.startswith(wanted) if wildcard else normal == wanted):
            return True
    return False


@dataclass(frozen=True)
class AuthCode:
    username: str
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    session_id: str
    expires_at: float


@dataclass(frozen=True)
class RefreshGrant:
    session_id: str
    client_id: str
    expires_at: float


@dataclass
class SsoSession:
    username: str
    started: int
    expires_at: float


class Issuer:
    """Realm state shared by all request threads."""

    def __init__(
        self,
        base_url: str,
        realm: str,
        audience: str,
        key_file: Path | None,
        client_id: str = CLIENT_ID,
        redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self.audience = audience
        self.issuer = f"{self.base_url}/realms/{realm}"
        self.users = _dev_users(audience)
        self.keys = KeyRing(key_file)
        self.lock = threading.Lock()
        self.jwks_requests = 0
        self.tokens_issued = 0
        self.jwks_fault_status: int | None = None
        self.jwks_delay_seconds = 0.0
        self.client_id = client_id
        self.redirect_uris = redirect_uris
        self.codes: dict[str, AuthCode] = {}
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.sessions: dict[str, SsoSession] = {}
        # SSO cookie value -> session id: the cookie is a secret of its own, so a token
        # (whose `sid` names the session) never doubles as a browser's sign-in.
        self.cookies: dict[str, str] = {}
        # Keys the CSRF token of a form from the browser's CSRF cookie.
        self.csrf_key = secrets.token_bytes(32)
        self.token_ttl = DEFAULT_TTL_SECONDS

    @property
    def info(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "jwks_url": f"{self.issuer}/protocol/openid-connect/certs",
            "token_url": f"{self.issuer}/protocol/openid-connect/token",
            "audience": self.audience,
            "base_url": self.base_url,
            "realm": self.realm,
        }

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/protocol/openid-connect/{name}"

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("auth"),
            "token_endpoint": self.info["token_url"],
            "userinfo_endpoint": self.endpoint("userinfo"),
            "end_session_endpoint": self.endpoint("logout"),
            "jwks_uri": self.info["jwks_url"],
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": SCOPE.split(),
            "claims_parameter_supported": False,
        }

    def client_description(self) -> dict[str, Any]:
        """The public client, in the shape of a Keycloak realm export."""
        origins = sorted({_origin(p.rstrip("*")) for p in self.redirect_uris})
        return {
            "clientId": self.client_id,
            "publicClient": True,
            "standardFlowEnabled": True,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": True,
            "redirectUris": list(self.redirect_uris),
            "webOrigins": origins,
            "attributes": {
                "pkce.code.challenge.method": "S256",
                "post.logout.redirect.uris": "##".join(self.redirect_uris),
            },
        }

    # --- browser sign-in: sessions, codes, refresh tokens -----------------------------
    def start_session(self, username: str) -> tuple[str, str]:
        """A new SSO session: its id (the tokens' `sid`) and the browser's cookie value."""
        session_id = str(uuid.uuid4())
        cookie = secrets.token_urlsafe(32)
        now = time.time()
        with self.lock:
            self.sessions[session_id] = SsoSession(username, int(now), now + SESSION_TTL_SECONDS)
            self.cookies[cookie] = session_id
        return session_id, cookie

    def session_of_cookie(self, cookie: str | None) -> str | None:
        """The live session an SSO cookie belongs to, if any."""
        with self.lock:
            session_id = self.cookies.get(cookie or "")
        return session_id if self.live_session(session_id) is not None else None

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), token)

    def live_session(self, session_id: str | None) -> SsoSession | None:
        if not session_id:
            return None
        with self.lock:
            session = self.sessions.get(session_id)
            if session is not None and session.expires_at < time.time():
                del self.sessions[session_id]
                return None
            return session

    def end_session(self, session_id: str) -> None:
        with self.lock:
            self.sessions.pop(session_id, None)
            for cookie, owner in list(self.cookies.items()):
                if owner == session_id:
                    del self.cookies[cookie]
            for token, grant in list(self.refresh_grants.items()):
                if grant.session_id == session_id:
                    del self.refresh_grants[token]

    def issue_code(
        self, session_id: str, redirect_uri: str, challenge: str, nonce: str | None
    ) -> str:
        session = self.live_session(session_id)
        assert session is not None
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = AuthCode(
                username=session.username,
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=challenge,
                nonce=nonce,
                session_id=session_id,
                expires_at=time.time() + CODE_TTL_SECONDS,
            )
        return code

    def exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            # Taken out on any attempt, good or bad: a code is used once (RFC 6749 4.1.2).
            grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time():
            raise OAuthError("invalid_grant", "Code not valid")
        if form.get("client_id") != grant.client_id:
            raise OAuthError("invalid_grant", "Code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "Incorrect redirect_uri")
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthError("invalid_grant", "PKCE code verifier not specified")
        if not _VERIFIER.match(verifier):
            raise OAuthError("invalid_grant", "PKCE invalid code verifier")
        if not hmac.compare_digest(pkce_s256(verifier), grant.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed: Code mismatch")
        if self.live_session(grant.session_id) is None:
            raise OAuthError("invalid_grant", "Session not active")
        return self.token_response(grant.username, grant.session_id, grant.nonce)

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            # Single use (rotation): taken out on any attempt; the answer carries the next.
            grant = self.refresh_grants.pop(form.get("refresh_token", ""), None)
        if grant is None or grant.expires_at < time.time():
            raise OAuthError("invalid_grant", "Invalid refresh token")
        if form.get("client_id") != grant.client_id:
            raise OAuthError("invalid_grant", "Token client and authorized client don't match")
        session = self.live_session(grant.session_id)
        if session is None:
            raise OAuthError("invalid_grant", "Session not active")
        return self.token_response(session.username, grant.session_id, None)

    def token_response(self, username: str, session_id: str, nonce: str | None) -> dict[str, Any]:
        user = self.users[username]
        ttl = self.token_ttl
        access = self.claims_for(user, ttl, self.client_id)
        access["sid"] = session_id
        session = self.live_session(session_id)
        auth_time = session.started if session is not None else access["iat"]
        identity: dict[str, Any] = {
            "exp": access["exp"],
            "iat": access["iat"],
            "auth_time": auth_time,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": user.sub,
            "typ": "ID",
            "azp": self.client_id,
            "sid": session_id,
            **{
                name: access[name]
                for name in (
                    "email_verified",
                    "name",
                    "preferred_username",
                    "given_name",
                    "family_name",
                    "email",
                )
            },
        }
        if nonce:
            identity["nonce"] = nonce
        if user.tenant_id is not None:
            identity["tenant_id"] = user.tenant_id
        refresh_token = secrets.token_urlsafe(32)
        # A refresh token lives as long as its session.
        refresh_expires = max(int((session.expires_at if session else 0) - time.time()), 0)
        with self.lock:
            self.refresh_grants[refresh_token] = RefreshGrant(
                session_id, self.client_id, time.time() + refresh_expires
            )
        return {
            "access_token": self.sign(access)[0],
            "expires_in": ttl,
            "refresh_expires_in": refresh_expires,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "id_token": self.sign(identity)[0],
            "not-before-policy": 0,
            "session_state": session_id,
            "scope": SCOPE,
        }

    def verified_claims(self, token: str) -> dict[str, Any] | None:
        """Claims of an unexpired RS256 token signed by one of our keys, else None."""
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            header = json.loads(_b64decode(header_b64))
            claims: dict[str, Any] = json.loads(_b64decode(payload_b64))
            signature = _b64decode(signature_b64)
        except (ValueError, TypeError):
            return None
        if header.get("alg") != "RS256":
            return None
        with self.lock:
            key = next((k for k in self.keys.all() if k.kid == header.get("kid")), None)
        if key is None:
            return None
        try:
            key.private_key.public_key().verify(
                signature,
                f"{header_b64}.{payload_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return None
        return claims

    def claims_for(self, user: DevUser, ttl: int, client_id: str = CLIENT_ID) -> dict[str, Any]:
        now = int(time.time())
        resource_access: dict[str, Any] = {
            client: {"roles": list(roles)} for client, roles in user.client_roles.items()
        }
        resource_access["account"] = {"roles": list(ACCOUNT_CLIENT_ROLES)}
        claims: dict[str, Any] = {
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": [self.audience, "account"],
            "sub": user.sub,
            "typ": "Bearer",
            "azp": client_id,
            "scope": SCOPE,
            "email_verified": True,
            "name": f"{user.given_name} {user.family_name}",
            "preferred_username": user.username,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "email": user.email,
            "realm_access": {"roles": list(user.realm_roles)},
            "resource_access": resource_access,
        }
        if user.tenant_id is not None:
            claims["tenant_id"] = user.tenant_id
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        extra_headers: dict[str, Any] | None = None,
        alg: str = "RS256",
    ) -> tuple[str, str]:
        """Build a compact JWS by hand so tests can also forge `none`/HS256 tokens."""
        with self.lock:
            key = self.keys.current
            self.tokens_issued += 1
        header: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": key.kid}
        _apply_overrides(header, extra_headers or {})
        signing_input = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}"
        if alg == "RS256":
            signature = key.private_key.sign(
                signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        elif alg == "HS256":
            signature = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
        elif alg == "none":
            signature = b""
        else:
            raise BadRequest(f"alg must be RS256, HS256 or none, not {alg!r}")
        return f"{signing_input}.{_b64url(signature)}", key.kid

    def token_for(self, username: str, ttl: int, client_id: str = CLIENT_ID) -> str:
        token, _ = self.sign(self.claims_for(self.users[username], ttl, client_id))
        return token

    def mint(self, request: dict[str, Any]) -> dict[str, str]:
        username = request.get("username", "alice")
        ttl = request.get("ttl", DEFAULT_TTL_SECONDS)
        claims_overrides = request.get("claims", {})
        header_overrides = request.get("headers", {})
        alg = request.get("alg", "RS256")
        if not isinstance(username, str) or not username:
            raise BadRequest("username must be a non-empty string")
        if not isinstance(ttl, int) or isinstance(ttl, bool):
            raise BadRequest("ttl must be an integer number of seconds")
        if not isinstance(claims_overrides, dict):
            raise BadRequest("claims must be an object")
        if not isinstance(header_overrides, dict):
            raise BadRequest("headers must be an object")
        if not isinstance(alg, str):
            raise BadRequest("alg must be a string")
        user = self.users.get(username) or _ad_hoc_user(username)
        claims = self.claims_for(user, ttl)
        _apply_overrides(claims, claims_overrides)
        token, kid = self.sign(claims, header_overrides, alg)
        return {"access_token": token, "kid": kid}


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_params(uri: str, params: dict[str, str], mode: str = "query") -> str:
    """`uri` with `params` added to its query (or put in its fragment)."""
    encoded = urlencode(params)
    if mode == "fragment":
        return f"{uri}#{encoded}"
    return f"{uri}{'&' if '?' in uri else '?'}{encoded}"


def _hidden_inputs(fields: dict[str, str]) -> str:
    return "".join(
        f"<input type='hidden' name='{html.escape(name)}' value='{html.escape(value)}'>"
        for name, value in fields.items()
    )


def _apply_overrides(target: dict[str, Any], overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


class IssuerHandler(BaseHTTPRequestHandler):
    server: IssuerServer
    protocol_version = "HTTP/1.1"

    # --- plumbing -------------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The method and path only: query strings carry credentials here (the logout's
        # `id_token_hint`, a redirect's `code`), and no log line may hold one.
        if not self.command or not hasattr(self, "path"):
            # A request line that did not parse: nothing of it is trustworthy to log.
            self.log_message('"<malformed request line>" %s', str(code))
            return
        path = urlsplit(self.path).path
        self.log_message('"%s %s" %s', self.command, path, str(code))

    def log_error(self, format: str, *args: Any) -> None:
        # The standard message quotes the raw request line (and a token in it); the status
        # line that log_request writes says enough.
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A short JSON answer that quotes nothing the client sent, then close."""
        self.close_connection = True
        # An unparsable version leaves "HTTP/0.9", which would send the body bare.
        self.request_version = self.protocol_version
        status = HTTPStatus(code)
        body = json.dumps({"error": status.phrase}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"dev-issuer: {self.address_string()} {format % args}\n")

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self._cross_origin_allowed and not content_type.startswith("text/html"):
            # A browser SPA on another port may call the token endpoint directly; never
            # /dev/* (anyone could mint) nor a page (its CSRF token would be readable).
            self.send_header("Access-Control-Allow-Origin", "*")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_json(self) -> dict[str, Any]:
        raw = self._read_body()
        if not raw:
            return {}
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise BadRequest("body must be a JSON object")
        return payload

    @property
    def _issuer_path(self) -> str:
        return f"/realms/{self.server.issuer.realm}"

    @property
    def _cross_origin_allowed(self) -> bool:
        """The OIDC endpoints (Keycloak answers CORS there too); not /dev/*."""
        return urlsplit(self.path).path.startswith(f"{self._issuer_path}/")

    def _dev_request_refused(self) -> str | None:
        """Why a /dev/* request is refused: the page that sent it may be on another origin."""
        if self.headers.get(DEV_HEADER) != "1":
            return f"send the header {DEV_HEADER}: 1 (a page on another origin cannot)"
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        advertised = urlsplit(self.server.issuer.base_url).hostname or ""
        if host not in LOOPBACK_HOSTS and host != advertised and host != f"[{advertised}]":
            return "the Host header must name this machine (127.0.0.1 or localhost)"
        return None

    # --- routing --------------------------------------------------------------------
    def do_OPTIONS(self) -> None:
        if not self._cross_origin_allowed:
            # No preflight is ever granted outside the OIDC endpoints: a page on another
            # origin can then send /dev/* neither its header nor a JSON body.
            self._json(HTTPStatus.FORBIDDEN, {"error": "no cross-origin requests here"})
            return
        self._send(
            HTTPStatus.NO_CONTENT,
            b"",
            "text/plain",
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                # Whatever the page asks to send (Swagger UI adds X-Requested-With).
                "Access-Control-Allow-Headers": self.headers.get(
                    "Access-Control-Request-Headers", "Content-Type, Authorization"
                ),
                "Access-Control-Max-Age": "600",
            },
        )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query)
        base = self._issuer_path
        routes = {
            ("GET", f"{base}/.well-known/openid-configuration"): self._openid_configuration,
            ("GET", f"{base}/protocol/openid-connect/certs"): self._certs,
            ("POST", f"{base}/protocol/openid-connect/token"): self._token,
            ("GET", f"{base}/protocol/openid-connect/auth"): lambda: self._authorize(query),
            ("POST", f"{base}/protocol/openid-connect/auth"): self._login,
            ("GET", f"{base}/protocol/openid-connect/logout"): lambda: self._logout(
                {name: values[0] for name, values in query.items()}
            ),
            ("POST", f"{base}/protocol/openid-connect/logout"): self._logout_post,
            ("GET", f"{base}/protocol/openid-connect/userinfo"): self._userinfo,
            ("POST", f"{base}/protocol/openid-connect/userinfo"): self._userinfo,
            ("GET", "/dev/clients"): self._clients,
            ("GET", "/dev"): self._help,
            ("GET", "/dev/users"): self._users,
            ("POST", "/dev/mint"): self._mint,
            ("POST", "/dev/rotate"): self._rotate,
            ("POST", "/dev/withdraw"): self._withdraw,
            ("POST", "/dev/jwks-fault"): self._jwks_fault,
            ("GET", "/dev/stats"): self._stats,
        }
        try:
            refused = self._dev_request_refused() if path.startswith("/dev/") else None
            handler = routes.get((method, path))
            if refused is not None:
                self._json(
                    HTTPStatus.FORBIDDEN, {"error": "forbidden", "error_description": refused}
                )
            elif handler is not None:
                handler()
            elif method == "GET" and path.startswith("/dev/token/"):
                self._dev_token(path.removeprefix("/dev/token/"), query)
            elif any(route_path == path for _, route_path in routes):
                self._json(
                    HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed on {path}"}
                )
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found", "help": "GET /dev"})
        except BadRequest as exc:
            self._json(
                HTTPStatus.BAD_REQUEST, {"error": "bad_request", "error_description": str(exc)}
            )
        except OAuthError as exc:
            self._json(exc.status, {"error": exc.error, "error_description": exc.description})

    # --- Keycloak-shaped endpoints ----------------------------------------------------
    def _openid_configuration(self) -> None:
        self._json(HTTPStatus.OK, self.server.issuer.openid_configuration())

    def _certs(self) -> None:
        issuer = self.server.issuer
        with issuer.lock:
            issuer.jwks_requests += 1
            fault_status = issuer.jwks_fault_status
            delay = issuer.jwks_delay_seconds
            jwks = issuer.keys.jwks()
        if delay > 0:
            time.sleep(delay)
        if fault_status is not None:
            self._json(fault_status, {"error": "jwks fault injected through /dev/jwks-fault"})
        else:
            self._json(HTTPStatus.OK, jwks)

    def _form(self) -> dict[str, str]:
        body = self._read_body().decode("utf-8", "replace")
        return {name: values[0] for name, values in parse_qs(body).items()}

    def _token(self) -> None:
        issuer = self.server.issuer
        form = self._form()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            self._json(HTTPStatus.OK, issuer.exchange_code(form))
            return
        if grant_type == "refresh_token":
            self._json(HTTPStatus.OK, issuer.refresh(form))
            return
        if grant_type != "password":
            raise OAuthError(
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or password",
            )
        username = form.get("username", "")
        user = issuer.users.get(username)
        if user is None or not hmac.compare_digest(form.get("password", ""), username):
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "invalid_grant", "error_description": "Invalid user credentials"},
            )
            return
        ttl = self.server.token_ttl
        token = issuer.token_for(username, ttl, form.get("client_id") or CLIENT_ID)
        self._json(
            HTTPStatus.OK,
            {
                "access_token": token,
                "expires_in": ttl,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": SCOPE,
            },
        )

    # --- browser sign-in ----------------------------------------------------------------
    def _html(
        self, status: int, title: str, body: str, extra: dict[str, str] | None = None
    ) -> None:
        page = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_LOGIN_CSS}</style></head>"
            f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
        )
        self._send(
            status, page.encode(), "text/html; charset=utf-8", {**NO_FRAMING, **(extra or {})}
        )

    def _redirect(self, location: str, extra: dict[str, str] | None = None) -> None:
        self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": location, **(extra or {})})

    def _cookie(self, wanted: str) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == wanted:
                return value
        return None

    def _sso_session_id(self) -> str | None:
        """The session of the browser's SSO cookie, when it is a live one."""
        return self.server.issuer.session_of_cookie(self._cookie(SSO_COOKIE))

    def _sso_cookie(self, value: str, max_age: int | None = None) -> dict[str, str]:
        age = "" if max_age is None else f"; Max-Age={max_age}"
        path = f"{self._issuer_path}/"
        return {"Set-Cookie": f"{SSO_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Lax{age}"}

    def _csrf(self) -> tuple[str, dict[str, str]]:
        """The CSRF token for a form this browser gets, and the cookie it is bound to (a
        Set-Cookie header when the browser has none yet)."""
        cookie = self._cookie(CSRF_COOKIE)
        headers: dict[str, str] = {}
        if not cookie or not re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie):
            cookie = secrets.token_urlsafe(32)
            path = f"{self._issuer_path}/"
            # Strict: sent only with requests from the issuer's own pages.
            headers["Set-Cookie"] = (
                f"{CSRF_COOKIE}={cookie}; Path={path}; HttpOnly; SameSite=Strict"
            )
        return self.server.issuer.csrf_token(cookie), headers

    def _csrf_checked(self, form: dict[str, str]) -> bool:
        """Whether a POSTed form came from a page the issuer served this browser; if not,
        the refusal has been sent."""
        if self.server.issuer.csrf_valid(self._cookie(CSRF_COOKIE), form.get(CSRF_FIELD)):
            return True
        self._html(
            HTTPStatus.FORBIDDEN,
            "We are sorry...",
            "<p>Invalid or missing CSRF token: sign in from the issuer's own page.</p>",
        )
        return False

    def _checked_request(self, params: dict[str, str]) -> dict[str, str] | None:
        """The authorization request when it may go on; else the answer was sent."""
        issuer = self.server.issuer
        # Without a known client and an allowed redirect_uri there is nowhere safe to send
        # an error: the browser gets a page, as from Keycloak.
        if params.get("client_id") != issuer.client_id:
            self._html(HTTPStatus.BAD_REQUEST, "We are sorry...", "<p>Client not found.</p>")
            return None
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_allowed(redirect_uri, issuer.redirect_uris):
            self._html(
                HTTPStatus.BAD_REQUEST,
                "We are sorry...",
                "<p>Invalid parameter: redirect_uri</p>",
            )
            return None
        mode = params.get("response_mode") or "query"
        problem: tuple[str, str] | None = None
        if mode not in {"query", "fragment"}:
            mode, problem = "query", ("invalid_request", "Invalid parameter: response_mode")
        elif params.get("response_type") != "code":
            problem = ("unsupported_response_type", "Only response_type=code is supported")
        elif not params.get("code_challenge_method"):
            problem = ("invalid_request", "Missing parameter: code_challenge_method")
        elif params["code_challenge_method"] != "S256":
            problem = ("invalid_request", "Invalid parameter: code_challenge_method")
        elif not params.get("code_challenge"):
            problem = ("invalid_request", "Missing parameter: code_challenge")
        elif not _CHALLENGE.match(params["code_challenge"]):
            problem = ("invalid_request", "Invalid parameter: code_challenge")
        if problem is not None:
            answer = {"error": problem[0], "error_description": problem[1]}
            if params.get("state"):
                answer["state"] = params["state"]
            self._redirect(_with_params(redirect_uri, answer, mode))
            return None
        return params

    def _finish_sign_in(
        self, params: dict[str, str], session_id: str, cookie: str | None = None
    ) -> None:
        issuer = self.server.issuer
        code = issuer.issue_code(
            session_id, params["redirect_uri"], params["code_challenge"], params.get("nonce")
        )
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = params["state"]
        answer |= {"session_state": session_id, "iss": issuer.issuer}
        location = _with_params(
            params["redirect_uri"], answer, params.get("response_mode") or "query"
        )
        # A new session sets its cookie; one already signed in keeps the cookie it has.
        self._redirect(location, self._sso_cookie(cookie) if cookie else None)

    def _authorize(self, query: dict[str, list[str]]) -> None:
        params = self._checked_request({name: values[0] for name, values in query.items()})
        if params is None:
            return
        session_id = self._sso_session_id()
        prompt = params.get("prompt", "")
        if session_id is not None and prompt != "login":
            self._finish_sign_in(params, session_id)
        elif prompt == "none":
            answer = {"error": "login_required", "error_description": "Not signed in"}
            if params.get("state"):
                answer["state"] = params["state"]
            mode = params.get("response_mode") or "query"
            self._redirect(_with_params(params["redirect_uri"], answer, mode))
        else:
            self._login_form(params, HTTPStatus.OK, "")

    def _login_form(self, params: dict[str, str], status: int, error: str) -> None:
        csrf, cookie = self._csrf()
        fields = {
            **{k: v for k, v in params.items() if k not in {"username", "password", CSRF_FIELD}},
            CSRF_FIELD: csrf,
        }
        hidden = _hidden_inputs(fields)
        users = ", ".join(html.escape(name) for name in self.server.issuer.users)
        message = f"<p id='input-error' role='alert'>{html.escape(error)}</p>" if error else ""
        body = (
            f"{message}<form id='kc-form-login' method='post' "
            f"action='{self._issuer_path}/protocol/openid-connect/auth'>{hidden}"
            "<label for='username'>Username</label>"
            "<input id='username' name='username' autocomplete='username' autofocus>"
            "<label for='password'>Password</label>"
            "<input id='password' name='password' type='password' "
            "autocomplete='current-password'>"
            "<button id='kc-login' type='submit'>Sign In</button></form>"
            f"<p class='hint'>Development users: {users}. The password is the user name.</p>"
        )
        self._html(status, f"Sign in to {self.server.issuer.realm} (development)", body, cookie)

    def _login(self) -> None:
        form = self._form()
        params = self._checked_request(form)
        if params is None or not self._csrf_checked(form):
            return
        issuer = self.server.issuer
        username = params.get("username", "")
        user = issuer.users.get(username)
        if user is None or not hmac.compare_digest(params.get("password", ""), username):
            self._login_form(params, HTTPStatus.OK, "Invalid username or password.")
            return
        session_id, cookie = issuer.start_session(username)
        self._finish_sign_in(params, session_id, cookie)

    def _logout(self, params: dict[str, str], *, confirmed: bool = False) -> None:
        """End the browser's SSO session: at once when `confirmed` (a POSTed form whose CSRF
        token was checked) or when the `id_token_hint` names that very session; otherwise
        ask first, so a link or image on another site cannot sign a developer out."""
        issuer = self.server.issuer
        hint = (
            issuer.verified_claims(params["id_token_hint"]) if params.get("id_token_hint") else None
        )
        if params.get("id_token_hint") and hint is None:
            self._html(HTTPStatus.BAD_REQUEST, "We are sorry...", "<p>Invalid id_token_hint</p>")
            return
        redirect = params.get("post_logout_redirect_uri", "")
        if redirect:
            if hint is None and params.get("client_id") != issuer.client_id:
                self._html(
                    HTTPStatus.BAD_REQUEST,
                    "We are sorry...",
                    "<p>Missing parameters: id_token_hint</p>",
                )
                return
            if not redirect_allowed(redirect, issuer.redirect_uris):
                self._html(
                    HTTPStatus.BAD_REQUEST,
                    "We are sorry...",
                    "<p>Invalid redirect uri</p>",
                )
                return
        session_id = self._sso_session_id()
        if session_id is not None and not confirmed and (hint or {}).get("sid") != session_id:
            self._logout_confirmation(params)
            return
        if session_id is not None:
            issuer.end_session(session_id)
        clear = self._sso_cookie("", max_age=0)
        if redirect:
            state = {"state": params["state"]} if params.get("state") else {}
            self._redirect(_with_params(redirect, state) if state else redirect, clear)
        else:
            self._html(HTTPStatus.OK, "You are logged out", "", clear)

    def _logout_confirmation(self, params: dict[str, str]) -> None:
        csrf, cookie = self._csrf()
        kept = ("post_logout_redirect_uri", "state", "client_id", "id_token_hint")
        fields = {name: params[name] for name in kept if params.get(name)}
        body = (
            f"<form id='kc-logout' method='post' "
            f"action='{self._issuer_path}/protocol/openid-connect/logout'>"
            f"{_hidden_inputs({**fields, CSRF_FIELD: csrf})}"
            "<p>Do you want to log out?</p>"
            "<button id='kc-logout-button' type='submit'>Logout</button></form>"
        )
        self._html(HTTPStatus.OK, "Logging out", body, cookie)

    def _logout_post(self) -> None:
        form = self._form()
        if "refresh_token" not in form:
            if self._csrf_checked(form):
                self._logout(form, confirmed=True)
            return
        # An SPA's back-channel logout: the refresh token names the session to end.
        issuer = self.server.issuer
        with issuer.lock:
            grant = issuer.refresh_grants.get(form["refresh_token"])
        if grant is None or grant.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", "Invalid refresh token")
        issuer.end_session(grant.session_id)
        self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")

    def _userinfo(self) -> None:
        authorization = self.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        claims = (
            self.server.issuer.verified_claims(token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if claims is None:
            self._send(
                HTTPStatus.UNAUTHORIZED,
                json.dumps({"error": "invalid_token"}).encode(),
                "application/json",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        wanted = [
            *("sub", "email_verified", "name", "preferred_username", "given_name"),
            *("family_name", "email", "tenant_id"),
        ]
        self._json(HTTPStatus.OK, {name: claims[name] for name in wanted if name in claims})

    def _clients(self) -> None:
        self._json(HTTPStatus.OK, [self.server.issuer.client_description()])

    # --- /dev conveniences ------------------------------------------------------------
    def _help(self) -> None:
        self._text(HTTPStatus.OK, __doc__ or "")

    def _users(self) -> None:
        self._json(HTTPStatus.OK, [user.describe() for user in self.server.issuer.users.values()])

    def _dev_token(self, username: str, query: dict[str, list[str]]) -> None:
        issuer = self.server.issuer
        if username not in issuer.users:
            known = ", ".join(issuer.users)
            self._text(HTTPStatus.NOT_FOUND, f"unknown dev user {username!r}; known: {known}\n")
            return
        raw_ttl = query.get("ttl", [str(self.server.token_ttl)])[0]
        try:
            ttl = int(raw_ttl)
        except ValueError as exc:
            raise BadRequest("ttl must be an integer number of seconds") from exc
        self._text(HTTPStatus.OK, issuer.token_for(username, ttl))

    def _mint(self) -> None:
        self._json(HTTPStatus.OK, self.server.issuer.mint(self._read_json()))

    def _rotate(self) -> None:
        issuer = self.server.issuer
        with issuer.lock:
            key = issuer.keys.rotate()
        self._json(HTTPStatus.OK, {"kid": key.kid})

    def _withdraw(self) -> None:
        kid = self._read_json().get("kid")
        if not isinstance(kid, str) or not kid:
            raise BadRequest("kid must be a key id")
        issuer = self.server.issuer
        with issuer.lock:
            issuer.keys.withdraw(kid)
            current = issuer.keys.current.kid
        self._json(HTTPStatus.OK, {"withdrawn": kid, "signing_kid": current})

    def _jwks_fault(self) -> None:
        request = self._read_json()
        status = request.get("status")
        delay_ms = request.get("delay_ms", 0)
        if status is not None and (not isinstance(status, int) or not 200 <= status <= 599):
            raise BadRequest("status must be an HTTP status code or null")
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise BadRequest("delay_ms must be a non-negative integer")
        issuer = self.server.issuer
        with issuer.lock:
            issuer.jwks_fault_status = None if status in (None, 200) else status
            issuer.jwks_delay_seconds = delay_ms / 1000
        self._json(HTTPStatus.OK, {"status": status, "delay_ms": delay_ms})

    def _stats(self) -> None:
        issuer = self.server.issuer
        with issuer.lock:
            stats = {"jwks_requests": issuer.jwks_requests, "tokens_issued": issuer.tokens_issued}
        self._json(HTTPStatus.OK, stats)


_LOGIN_CSS = (
    "body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}"
    "main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;"
    "box-shadow:0 1px 4px #0002}h1{font-size:1.2rem}label{display:block;margin-top:1rem}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem}"
    "button{margin-top:1.5rem;width:100%;padding:.6rem;background:#2563eb;color:#fff;"
    "border:0;border-radius:4px;font-size:1rem}#input-error{color:#b91c1c}"
    ".hint{color:#6b7280;font-size:.85rem}"
)


class IssuerServer(ThreadingHTTPServer):
    daemon_threads = True
    issuer: Issuer
    quiet: bool
    token_ttl: int


def _advertised_host(host: str) -> str:
    # A wildcard bind address is not something a client can connect to.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Development token issuer (a Keycloak realm look-alike)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--realm", default="app")
    parser.add_argument("--audience", default="app-api")
    parser.add_argument("--key-file", type=Path, help="persist signing keys here (JSON with PEMs)")
    parser.add_argument("--ready-file", type=Path, help="also write the ready line to this file")
    parser.add_argument("--public-url", help="base URL to put in `iss` (default: from host/port)")
    parser.add_argument("--token-ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    parser.add_argument("--client-id", default=CLIENT_ID, help="the public browser client")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        help="an allowed redirect URI: exact, or a prefix ending in * (repeatable; "
        f"default {' '.join(DEFAULT_REDIRECT_URIS)})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    server = IssuerServer((args.host, args.port), IssuerHandler)
    port = server.server_address[1]
    base_url = args.public_url or f"http://{_advertised_host(args.host)}:{port}"
    redirect_uris = tuple(args.redirect_uris or DEFAULT_REDIRECT_URIS)
    server.issuer = Issuer(
        base_url, args.realm, args.audience, args.key_file, args.client_id, redirect_uris
    )
    server.issuer.token_ttl = args.token_ttl
    server.quiet = args.quiet
    server.token_ttl = args.token_ttl

    ready_line = json.dumps(server.issuer.info)
    if args.ready_file is not None:
        temporary = args.ready_file.with_name(args.ready_file.name + ".tmp")
        temporary.write_text(ready_line + "\n")
        temporary.replace(args.ready_file)
    sys.stdout.write(ready_line + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    # SIGTERM (how scripts/dev and the tests stop it) should end it as quietly as Ctrl-C.
    import signal

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    raise SystemExit(main())
