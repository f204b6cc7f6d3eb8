"""Signing keys from the issuer's JWKS, fetched without blocking the event loop.

The fetch itself is PyJWT's `PyJWKClient.fetch_data` (standard-library HTTP, redirects
refused, a non-object body refused) run in a worker thread; the caching rules are ours.

Keys are cached and re-read at least every `ttl_s` seconds, so a key the issuer withdraws
stops being trusted within that time (app/auth/verifier.py also drops tokens it verified
with such a key). The re-read starts in the background at 80 % of the TTL, so requests
rarely wait for it; only once the TTL has passed does a request wait for a fresh copy.

A token whose `kid` is not cached triggers a refetch, but at most once per cooldown, so a
flood of made-up kids cannot hammer Keycloak. When the JWKS endpoint is down, the keys
already cached keep working (until it answers again and says otherwise), and it is
retried at most once per cooldown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import jwt

from app.background import cancel_and_wait

__all__ = ["ALLOWED_ALGORITHMS", "JwksCache"]

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: `none` and HMAC (which would let a public key act as a
# shared secret) are never accepted.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

# A background re-read starts once this share of the TTL has passed.
_SOFT_SHARE = 0.8


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        refetch_cooldown_s: float,
        timeout_s: float,
    ) -> None:
        self._url = url
        self._ttl = ttl_s
        self._cooldown = refetch_cooldown_s
        # Only its fetch is used: its own key caches are off, ours decide when to re-read.
        self._fetcher = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_s)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._last_attempt = float("-inf")
        # Keys may be trusted without a re-read until `_expires_at`; a background re-read
        # starts at `_refresh_at`. While the endpoint fails, `_outage` keeps known keys.
        self._expires_at = float("-inf")
        self._refresh_at = float("-inf")
        self._outage = False
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    @property
    def ttl_s(self) -> float:
        """Keys are re-read at least this often."""
        return self._ttl

    async def aclose(self) -> None:
        await cancel_and_wait(self._background)

    def trusts(self, kid: str) -> bool:
        """Whether `kid` is a published key, as far as a copy within its TTL knows.

        Cheap and synchronous, for the verified-token cache's hot path. False also when
        the copy is older than the TTL: the caller then awaits `get_key`, which re-reads.
        """
        if kid not in self._keys:
            return False
        now = time.monotonic()
        if now >= self._refresh_at:
            self._refresh_soon(now)
        return now < self._expires_at or self._outage

    async def get_key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this `kid`, re-reading the JWKS when due; None if unknown."""
        now = time.monotonic()
        if now >= self._refresh_at:
            self._refresh_soon(now)
        if now >= self._expires_at and not self._outage:
            # Too old to trust without asking: wait for the re-read (one for everyone).
            await self._refresh_once(due=now)
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

    def _refresh_soon(self, now: float) -> None:
        if self._background is not None and not self._background.done():
            return
        # Not again before the cooldown, whatever the outcome.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (a synchronous caller): `get_key` re-reads instead
        self._refresh_at = now + self._cooldown
        self._background = loop.create_task(self._refresh_once(due=now))

    async def _refresh_once(self, *, due: float) -> None:
        async with self._lock:
            if self._last_attempt >= due:
                return  # someone re-read (or tried to) while this one waited
            await self._refresh()

    async def _refresh(self) -> None:
        started = self._last_attempt = time.monotonic()
        try:
            document = await asyncio.to_thread(self._fetcher.fetch_data)
        except (jwt.PyJWKClientError, ValueError) as exc:
            # Keep serving the keys already cached; only unknown kids are refused.
            logger.warning("JWKS fetch from %s failed: %s", self._url, type(exc).__name__)
            self._outage = True
            self._refresh_at = time.monotonic() + self._cooldown
            return
        keys = self._parse(document)
        if keys is None:
            logger.warning("JWKS from %s is not a key set; keeping the cached keys", self._url)
            self._outage = True
            self._refresh_at = time.monotonic() + self._cooldown
            return
        withdrawn = self._keys.keys() - keys.keys()
        if withdrawn:
            logger.info("JWKS no longer publishes %s", ", ".join(sorted(withdrawn)))
        self._keys = keys
        self._outage = False
        self._expires_at = started + self._ttl
        self._refresh_at = started + self._ttl * _SOFT_SHARE

    @staticmethod
    def _parse(document: Any) -> dict[str, jwt.PyJWK] | None:
        """The usable signing keys, or None when `document` is not a JWKS at all."""
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            return None
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                logger.warning("ignoring unusable JWKS key %s", entry["kid"])
        return keys
