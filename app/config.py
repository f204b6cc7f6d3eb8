"""Settings read once from the environment.

The API has no hidden defaults for its backing services or its token issuer: a missing or
malformed required variable stops startup with one line that names it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

__all__ = ["ConfigError", "Settings", "get_settings", "load_settings"]


class ConfigError(Exception):
    """A required setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    keycloak_issuer: str
    keycloak_audience: str
    keycloak_jwks_url: str
    tenant_claim: str = "tenant_id"
    cors_origins: tuple[str, ...] = ("http://localhost:5173",)
    # Database pool: sized for one API process under a few dozen concurrent requests,
    # and fixed by default: SQLAlchemy closes an overflow connection as soon as it is
    # returned, so any load above the pool size opened and closed a connection per request
    # (scripts/bench: a third of a /v1/children request's CPU). Above the pool size,
    # requests wait for a connection (at most db_pool_timeout_s) instead; fail fast when
    # the pool is exhausted or PostgreSQL is away instead of queueing requests for 30 s.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout_s: int = 5
    db_connect_timeout_s: float = 3.0
    # Token checks: allowed clock skew, how long an unknown `kid` must wait before it may
    # trigger another JWKS fetch, and how many verified tokens are remembered.
    token_leeway_s: int = 10
    jwks_refetch_cooldown_s: float = 10.0
    jwks_fetch_timeout_s: float = 3.0
    token_cache_size: int = 10_000
    job_state_ttl_s: int = 86_400
    purge_deleted_after_days: int = 30
    # SAQ queue name (tests use a unique one), how long POST /v1/jobs may wait for Redis
    # before answering 503, jobs one worker process runs at once, and how often the
    # worker's cron checks for jobs whose worker died.
    saq_queue: str = "default"
    job_enqueue_timeout_s: float = 1.5
    worker_concurrency: int = 10
    job_sweep_interval_s: int = 10
    # A worker that has not said "alive" for this long is dead: the sweep fails or
    # retries its active jobs.
    worker_liveness_ttl_s: int = 15
    log_level: str = "INFO"
    # Signing keys are re-read from the JWKS at least this often, so a withdrawn key (and
    # every token verified with it) stops being accepted within this time.
    jwks_ttl_s: int = 300
    # Job sockets one caller may hold open at once in one API process.
    max_sockets_per_user: int = 20
    # "transaction" when DATABASE_URL points at PgBouncer in transaction pooling mode:
    # the driver then keeps no prepared statement beyond one round trip (app/db/config.py).
    database_pooler: str = "none"


_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ORIGIN = re.compile(r"^https?://[^\s/]+$")
_CLAIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required but not set")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    value = _required(env, name)
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigError(f"{name} must start with {wanted} (got {parts.scheme or 'no'} scheme)")
    if not parts.netloc and not parts.query and parts.scheme != "unix":
        raise ConfigError(f"{name} has no host")
    return value


def _http_url(name: str, value: str) -> str:
    if not _HTTP_URL.match(value):
        raise ConfigError(f"{name} must be an http(s) URL (got {value!r})")
    return value.rstrip("/")


def _positive_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{name} must be {minimum} or more (got {value})")
    return value


def _queue_name(env: Mapping[str, str]) -> str:
    name = env.get("SAQ_QUEUE", "").strip() or "default"
    if not _QUEUE_NAME.match(name):
        raise ConfigError(f"SAQ_QUEUE may hold only A-Z a-z 0-9 _ . - (got {name!r})")
    return name


DATABASE_POOLERS = ("none", "transaction")


def _pooler(env: Mapping[str, str]) -> str:
    pooler = env.get("DATABASE_POOLER", "").strip().lower() or "none"
    if pooler not in DATABASE_POOLERS:
        raise ConfigError(f"DATABASE_POOLER must be none or transaction (got {pooler!r})")
    return pooler


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment), or raise ConfigError."""
    env = os.environ if env is None else env
    issuer = _http_url("KEYCLOAK_ISSUER", _required(env, "KEYCLOAK_ISSUER"))
    jwks_raw = env.get("KEYCLOAK_JWKS_URL", "").strip()
    jwks_url = (
        _http_url("KEYCLOAK_JWKS_URL", jwks_raw)
        if jwks_raw
        else f"{issuer}/protocol/openid-connect/certs"
    )
    tenant_claim = env.get("TENANT_CLAIM", "").strip() or "tenant_id"
    if not _CLAIM_NAME.match(tenant_claim):
        raise ConfigError(f"TENANT_CLAIM is not a valid claim name (got {tenant_claim!r})")
    origins_raw = env.get("CORS_ORIGINS", "").strip() or "http://localhost:5173"
    origins = tuple(
        origin.strip().rstrip("/") for origin in origins_raw.split(",") if origin.strip()
    )
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ConfigError(
                f"CORS_ORIGINS has an invalid origin {origin!r} (want scheme://host[:port])"
            )
    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level!r})")
    return Settings(
        database_url=_url(env, "DATABASE_URL", ("postgresql+asyncpg",)),
        redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
        keycloak_issuer=issuer,
        keycloak_audience=_required(env, "KEYCLOAK_AUDIENCE"),
        keycloak_jwks_url=jwks_url,
        tenant_claim=tenant_claim,
        cors_origins=origins,
        db_pool_size=_positive_int(env, "DB_POOL_SIZE", 20),
        db_max_overflow=_positive_int(env, "DB_MAX_OVERFLOW", 0, minimum=0),
        job_state_ttl_s=_positive_int(env, "JOB_STATE_TTL_SECONDS", 86_400),
        purge_deleted_after_days=_positive_int(env, "PURGE_DELETED_AFTER_DAYS", 30),
        saq_queue=_queue_name(env),
        worker_concurrency=_positive_int(env, "WORKER_CONCURRENCY", 10),
        job_sweep_interval_s=_positive_int(env, "JOB_SWEEP_INTERVAL_SECONDS", 10),
        worker_liveness_ttl_s=_positive_int(env, "WORKER_LIVENESS_TTL_SECONDS", 15),
        log_level=log_level,
        jwks_ttl_s=_positive_int(env, "KEYCLOAK_JWKS_TTL_SECONDS", 300),
        max_sockets_per_user=_positive_int(env, "MAX_SOCKETS_PER_USER", 20),
        database_pooler=_pooler(env),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
