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
- ``POST {issuer}/protocol/openid-connect/token`` - form
  ``grant_type=password&username=alice&password=alice&client_id=app-spa``;
  a dev user's password is its username; anything else is ``401 invalid_grant``.

Dev users: alice (realm roles user+admin, tenant acme), bob (user, acme),
carol (user, globex), dave (user, no tenant claim).

Conveniences for development and tests, under ``{base_url}/dev/`` (always on - this
program exists only for development):

- ``GET  /dev`` - this help as plain text.
- ``GET  /dev/users`` - the dev users and their roles/tenant as JSON.
- ``GET  /dev/token/{username}?ttl=SECONDS`` - a dev user's access token as plain text,
  e.g. ``TOKEN=$(curl -s http://127.0.0.1:8081/dev/token/alice)``. A negative ttl gives
  an already expired token.
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
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_TTL_SECONDS = 3600
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


class Issuer:
    """Realm state shared by all request threads."""

    def __init__(self, base_url: str, realm: str, audience: str, key_file: Path | None) -> None:
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

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.info["jwks_url"],
            "token_endpoint": self.info["token_url"],
            "grant_types_supported": ["password"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": SCOPE.split(),
        }

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
        # A browser SPA on another port may call the token endpoint directly.
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

    # --- routing --------------------------------------------------------------------
    def do_OPTIONS(self) -> None:
        self._send(
            HTTPStatus.NO_CONTENT,
            b"",
            "text/plain",
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization",
            },
        )

    def do_GET(self) -> None:
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
            ("GET", "/dev"): self._help,
            ("GET", "/dev/users"): self._users,
            ("POST", "/dev/mint"): self._mint,
            ("POST", "/dev/rotate"): self._rotate,
            ("POST", "/dev/withdraw"): self._withdraw,
            ("POST", "/dev/jwks-fault"): self._jwks_fault,
            ("GET", "/dev/stats"): self._stats,
        }
        try:
            handler = routes.get((method, path))
            if handler is not None:
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

    def _token(self) -> None:
        issuer = self.server.issuer
        form = {name: values[0] for name, values in parse_qs(self._read_body().decode()).items()}
        if form.get("grant_type") != "password":
            self._json(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "only grant_type=password",
                },
            )
            return
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    server = IssuerServer((args.host, args.port), IssuerHandler)
    port = server.server_address[1]
    base_url = args.public_url or f"http://{_advertised_host(args.host)}:{port}"
    server.issuer = Issuer(base_url, args.realm, args.audience, args.key_file)
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
