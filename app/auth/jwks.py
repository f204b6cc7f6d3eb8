"""Signing keys from the issuer's JWKS, fetched without blocking the event loop.

Keys are cached. A token whose `kid` is not cached triggers a refetch, but at most once
per cooldown, so a flood of made-up kids cannot hammer Keycloak; when the JWKS endpoint
is down, the keys already cached keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

__all__ = ["ALLOWED_ALGORITHMS", "JwksCache"]

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: `none` and HMAC (which would let a public key act as a
# shared secret) are never accepted.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        refetch_cooldown_s: float,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._cooldown = refetch_cooldown_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_attempt = float("-inf")
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this `kid`, refetching the JWKS when allowed; None if unknown."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            # Another request may have refreshed the keys while this one waited.
            key = self._keys.get(kid)
            if key is not None or time.monotonic() - self._last_attempt < self._cooldown:
                return key
            await self._refresh()
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._last_attempt = time.monotonic()
        self.fetch_count += 1
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Keep serving the keys already cached; only unknown kids are refused.
            logger.warning("JWKS fetch from %s failed: %s", self._url, type(exc).__name__)
            return
        self._keys = self._parse(document) or self._keys

    @staticmethod
    def _parse(document: Any) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        entries = document.get("keys") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                logger.warning("ignoring unusable JWKS key %s", entry["kid"])
        return keys
