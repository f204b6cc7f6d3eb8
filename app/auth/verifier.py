"""Access-token verification with a bounded cache of already-verified tokens.

Checking an RS256 signature costs far more than the rest of a small request, and an SPA
sends the same token many times, so verified principals are remembered by the exact token
string until the token expires (or is pushed out by newer ones), and only while the key
that signed it is still published: a key withdrawn from the JWKS takes the tokens it
verified with it, within the JWKS cache's TTL.

Beyond the signature, `iss`, `aud` and `exp`, a token must be an access token (`typ`
`Bearer`: Keycloak's ID and refresh tokens are signed by the same key), issued to one of
`KEYCLOAK_ALLOWED_CLIENTS` (`azp`: a password grant for any other client of the realm
is not a token for this API), carry its times as JSON numbers (PyJWT takes `"exp":
"9999999999"`), and live at most `MAX_TOKEN_LIFETIME_S`. A token over `MAX_TOKEN_BYTES`
is refused before anything parses it.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import jwt

from app.auth.jwks import ALLOWED_ALGORITHMS, JwksCache
from app.auth.principal import Principal, principal_from_claims
from app.config import Settings

__all__ = ["MAX_TOKEN_BYTES", "MAX_TOKEN_LIFETIME_S", "InvalidTokenError", "TokenVerifier"]

# A Keycloak access token with many roles is 1-3 KB; 16 KB leaves room for big realms
# while a megabyte sent as a token is refused before it is decoded or hashed.
MAX_TOKEN_BYTES = 16 * 1024
# A constant, not a setting: Keycloak's access tokens live minutes (its maximum session
# is 10 h); a token made to live longer than a day is not one the API should honour.
MAX_TOKEN_LIFETIME_S = 24 * 3600
_TIME_CLAIMS = ("exp", "iat", "nbf")


class InvalidTokenError(Exception):
    """The token was refused; the message is safe to show to the client."""


class TokenVerifier:
    def __init__(self, settings: Settings, jwks: JwksCache) -> None:
        self._jwks = jwks
        self._issuer = settings.keycloak_issuer
        self._audience = settings.keycloak_audience
        self._leeway = settings.token_leeway_s
        self._tenant_claim = settings.tenant_claim
        self._allowed_clients = frozenset(settings.keycloak_allowed_clients)
        # token -> (principal, kid of the key that verified it)
        self._cache: OrderedDict[str, tuple[Principal, str]] = OrderedDict()
        self._cache_size = settings.token_cache_size

    @property
    def jwks(self) -> JwksCache:
        return self._jwks

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before and not yet expired, without awaiting."""
        entry = self._cache.get(token)
        if entry is None:
            return None
        principal, kid = entry
        if principal.expires_at + self._leeway <= time.time():
            self._cache.pop(token, None)
            return None
        # A withdrawn key, or keys too old to trust unasked: `verify` decides again.
        return principal if self._jwks.trusts(kid) else None

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("token too large")
        cached = self.cached(token)
        if cached is not None:
            return cached
        self._cache.pop(token, None)
        principal, kid = await self._verify_uncached(token)
        self._remember(token, principal, kid)
        return principal

    def _remember(self, token: str, principal: Principal, kid: str) -> None:
        self._cache[token] = (principal, kid)
        if len(self._cache) > self._cache_size:
            # Oldest first: dict order is insertion order, which is good enough here.
            self._cache.popitem(last=False)

    async def _verify_uncached(self, token: str) -> tuple[Principal, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError("token algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("token has no key id")
        key = await self._jwks.get_key(kid)
        if key is None:
            raise InvalidTokenError("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=sorted(ALLOWED_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidTokenError("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidTokenError("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("token signature or claims invalid") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidTokenError("token lacks the 'sub' claim")
        self._check_access_token(claims)
        return principal_from_claims(claims, self._tenant_claim), kid

    async def signing_key_published(self, token: str) -> bool:
        """Whether the key that signed `token` is still in the JWKS (re-read when due).

        For a socket that outlives many requests: its token was verified once, at connect.
        """
        entry = self._cache.get(token)
        kid = entry[1] if entry is not None else _kid_of(token)
        return kid is not None and await self._jwks.get_key(kid) is not None

    def _check_access_token(self, claims: dict[str, object]) -> None:
        if claims.get("typ") != "Bearer":
            raise InvalidTokenError("token is not an access token (typ must be Bearer)")
        if claims.get("azp") not in self._allowed_clients:
            raise InvalidTokenError("token issued to a client that is not accepted (azp)")
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            # bool is an int subclass: `true` is not a time.
            if name in claims and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise InvalidTokenError(f"token's {name!r} claim is not a number")
        expires = float(claims["exp"])  # type: ignore[arg-type]
        issued = claims.get("iat")
        start = float(issued) if isinstance(issued, int | float) else time.time()
        if expires - start > MAX_TOKEN_LIFETIME_S:
            raise InvalidTokenError("token lifetime too long")


def _kid_of(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None
