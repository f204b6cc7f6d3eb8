"""Settings read once at startup, typed by pydantic-settings.

Sources, first wins: the process environment, then a `.env` file in the working directory
when there is one (for development: production sets real environment variables and needs
no file; `ENV_FILE` names another file, and an empty `ENV_FILE` reads none). The API has
no hidden defaults for its backing services or its token issuer: a missing or malformed
required variable stops startup with one line that names it.

Three layers, so each process asks only for what it uses: `DatabaseSettings` (Alembic),
`WorkerSettings` (the SAQ worker: database, Redis, jobs) and `Settings` (the API: all of
that plus Keycloak, CORS and the docs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "SETTINGS_STATE_KEY",
    "ConfigError",
    "DatabaseSettings",
    "Settings",
    "WorkerSettings",
    "get_settings",
    "get_worker_settings",
    "load_database_settings",
    "load_settings",
    "load_worker_settings",
]

DEFAULT_ENV_FILE = ".env"
# Where the API keeps its `Settings` in the Litestar app's state.
SETTINGS_STATE_KEY = "settings"


class ConfigError(Exception):
    """A required setting is missing or malformed; the message names the variable."""


_HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ORIGIN = re.compile(r"^https?://[^\s/]+$")
_CLAIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
DATABASE_POOLERS = ("none", "transaction")
_KEY_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _env(name: str) -> Any:
    """The variable a field is read from (also the name its errors carry)."""
    return AliasChoices(name)


def _url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        # The scheme only: a URL may hold a password.
        raise ValueError(f"must start with {wanted} (got {parts.scheme or 'no'} scheme)")
    if not parts.netloc and not parts.query and parts.scheme != "unix":
        raise ValueError("has no host")
    return value


def _http_url(value: str) -> str:
    if not _HTTP_URL.match(value):
        raise ValueError(f"must be an http(s) URL (got {value!r})")
    return value.rstrip("/")


# Set while settings are built from an explicit mapping: then it is the only source.
_MAPPING_ONLY: ContextVar[bool] = ContextVar("settings_from_mapping_only", default=False)


class _Base(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        # An empty variable counts as unset: the default applies, or "required" is said.
        env_ignore_empty=True,
        str_strip_whitespace=True,
        # The environment holds much else (and .env may hold compose's variables).
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _MAPPING_ONLY.get():
            return (init_settings,)
        # No secrets directory: environment variables, then the .env file.
        return (init_settings, env_settings, dotenv_settings)


class DatabaseSettings(_Base):
    """What `alembic upgrade head` needs."""

    database_url: str = Field(validation_alias=_env("DATABASE_URL"))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _url(value, ("postgresql+asyncpg",))


class WorkerSettings(DatabaseSettings):
    """What the SAQ worker needs: the database, Redis and the job settings; no Keycloak."""

    redis_url: str = Field(validation_alias=_env("REDIS_URL"))
    # Database pool: sized for one API process under a few dozen concurrent requests,
    # and fixed by default: SQLAlchemy closes an overflow connection as soon as it is
    # returned, so any load above the pool size opened and closed a connection per request
    # (scripts/bench: a third of a /v1/children request's CPU). Above the pool size,
    # requests wait for a connection (at most db_pool_timeout_s) instead; fail fast when
    # the pool is exhausted or PostgreSQL is away instead of queueing requests for 30 s.
    db_pool_size: int = Field(20, ge=1, validation_alias=_env("DB_POOL_SIZE"))
    db_max_overflow: int = Field(0, ge=0, validation_alias=_env("DB_MAX_OVERFLOW"))
    # 3 s, like the statement and connect timeouts: with PostgreSQL frozen, a request
    # queued behind a full pool answers 503 as soon as one that got a connection does.
    db_pool_timeout_s: int = Field(3, ge=1, validation_alias=_env("DB_POOL_TIMEOUT_SECONDS"))
    db_connect_timeout_s: float = Field(
        3.0, gt=0, validation_alias=_env("DB_CONNECT_TIMEOUT_SECONDS")
    )
    job_state_ttl_s: int = Field(86_400, ge=1, validation_alias=_env("JOB_STATE_TTL_SECONDS"))
    purge_deleted_after_days: int = Field(
        30, ge=1, validation_alias=_env("PURGE_DELETED_AFTER_DAYS")
    )
    # SAQ queue name (tests use a unique one), how long POST /v1/jobs may wait for Redis
    # before answering 503, jobs one worker process runs at once, and how often the
    # worker's cron checks for jobs whose worker died.
    saq_queue: str = Field("default", validation_alias=_env("SAQ_QUEUE"))
    job_enqueue_timeout_s: float = Field(
        1.5, gt=0, validation_alias=_env("JOB_ENQUEUE_TIMEOUT_SECONDS")
    )
    worker_concurrency: int = Field(10, ge=1, validation_alias=_env("WORKER_CONCURRENCY"))
    # Fairness: of one worker's slots, one caller holds at most this many at once; their
    # other jobs wait their turn (app/jobs/shares.py). Unset: a third of
    # WORKER_CONCURRENCY, at least 1. Declared after worker_concurrency, which it reads.
    max_active_jobs_per_user: int = Field(
        None,  # type: ignore[assignment]  # filled in by _active_share below
        ge=1,
        validation_alias=_env("MAX_ACTIVE_JOBS_PER_USER"),
    )
    # A job's result is stored in its record and served by GET /v1/jobs/{id}; one whose
    # JSON is larger than this fails the job instead (an export says so early).
    max_job_result_bytes: int = Field(
        1_048_576, ge=1024, validation_alias=_env("MAX_JOB_RESULT_BYTES")
    )
    job_sweep_interval_s: int = Field(10, ge=1, validation_alias=_env("JOB_SWEEP_INTERVAL_SECONDS"))
    # A worker that has not said "alive" for this long is dead: the sweep fails or
    # retries its active jobs.
    worker_liveness_ttl_s: int = Field(
        15, ge=1, validation_alias=_env("WORKER_LIVENESS_TTL_SECONDS")
    )
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    # Fail fast when PostgreSQL stops answering (a frozen host, a silent network path): a
    # statement that gets no answer within this many seconds is abandoned (and cancelled
    # on the server), and the request answers 503. The API's statements take milliseconds.
    db_statement_timeout_s: float = Field(
        3.0, gt=0, validation_alias=_env("DB_STATEMENT_TIMEOUT_SECONDS")
    )
    # On SIGTERM a worker takes no new job and lets running ones finish for this long,
    # then hands the rest back to the queue (another worker runs them from the start).
    worker_shutdown_grace_s: int = Field(
        30, ge=0, validation_alias=_env("WORKER_SHUTDOWN_GRACE_SECONDS")
    )
    # "transaction" when DATABASE_URL points at PgBouncer in transaction pooling mode:
    # the driver then keeps no prepared statement beyond one round trip (app/db/config.py).
    database_pooler: str = Field("none", validation_alias=_env("DATABASE_POOLER"))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return _url(value, ("redis", "rediss", "unix"))

    @field_validator("max_active_jobs_per_user", mode="before")
    @classmethod
    def _active_share(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None:
            return value
        concurrency = info.data.get("worker_concurrency")
        # Without a valid concurrency its own error is reported; 1 keeps this one quiet.
        return max(1, concurrency // 3) if isinstance(concurrency, int) else 1

    @field_validator("database_pooler")
    @classmethod
    def _database_pooler(cls, value: str) -> str:
        pooler = value.strip().lower()
        if pooler not in DATABASE_POOLERS:
            raise ValueError(f"must be none or transaction (got {value!r})")
        return pooler

    @field_validator("saq_queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not _QUEUE_NAME.match(value):
            raise ValueError(f"may hold only A-Z a-z 0-9 _ . - (got {value!r})")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR (got {value!r})")
        return level


class Settings(WorkerSettings):
    """The API process: everything the worker has, plus token checks, CORS and the docs."""

    keycloak_issuer: str = Field(validation_alias=_env("KEYCLOAK_ISSUER"))
    keycloak_audience: str = Field(validation_alias=_env("KEYCLOAK_AUDIENCE"))
    # Empty: `{KEYCLOAK_ISSUER}/protocol/openid-connect/certs`, Keycloak's own path.
    keycloak_jwks_url: str = Field("", validation_alias=_env("KEYCLOAK_JWKS_URL"))
    # The public client the docs (and an SPA) sign in with.
    keycloak_spa_client_id: str = Field("app-spa", validation_alias=_env("KEYCLOAK_SPA_CLIENT_ID"))
    # Clients whose tokens the API takes (the token's `azp`); empty: the SPA client only.
    keycloak_allowed_clients: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("KEYCLOAK_ALLOWED_CLIENTS")
    )
    tenant_claim: str = Field("tenant_id", validation_alias=_env("TENANT_CLAIM"))
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        ("http://localhost:5173",), validation_alias=_env("CORS_ORIGINS")
    )
    # Token checks: allowed clock skew, how long an unknown `kid` must wait before it may
    # trigger another JWKS fetch, and how many verified tokens are remembered.
    token_leeway_s: int = Field(10, ge=0, validation_alias=_env("TOKEN_LEEWAY_SECONDS"))
    jwks_refetch_cooldown_s: float = Field(
        10.0, ge=0, validation_alias=_env("KEYCLOAK_JWKS_REFETCH_COOLDOWN_SECONDS")
    )
    jwks_fetch_timeout_s: float = Field(
        3.0, gt=0, validation_alias=_env("KEYCLOAK_JWKS_FETCH_TIMEOUT_SECONDS")
    )
    token_cache_size: int = Field(10_000, ge=0, validation_alias=_env("TOKEN_CACHE_SIZE"))
    # Request bodies (app/http_input.py). The largest valid body is a project with a
    # 200-character name and a 2,000-character description: ~2.3 KB typed plainly, at most
    # ~27 KB if every character is sent as a JSON \u escape. 64 KiB admits every valid
    # body however it is written; anything larger is refused (413) before it is decoded.
    # The edge's client_max_body_size matches it.
    max_request_body_bytes: int = Field(
        65_536, ge=1024, validation_alias=_env("MAX_REQUEST_BODY_BYTES")
    )
    # Operations: the bearer secret of GET /metrics (None: no such route), and per-caller
    # limits (0 = off), counted in Redis under limits_key_prefix so that every API
    # process sees the same counts (tests give each session its own prefix).
    metrics_token: str | None = Field(None, validation_alias=_env("METRICS_TOKEN"))
    rate_limit_per_minute: int = Field(600, ge=0, validation_alias=_env("RATE_LIMIT_PER_MINUTE"))
    job_limit_per_minute: int = Field(30, ge=0, validation_alias=_env("JOB_LIMIT_PER_MINUTE"))
    max_open_jobs_per_user: int = Field(20, ge=0, validation_alias=_env("MAX_OPEN_JOBS_PER_USER"))
    limits_key_prefix: str = Field("limits:", validation_alias=_env("LIMITS_KEY_PREFIX"))
    # Signing keys are re-read from the JWKS at least this often, so a withdrawn key (and
    # every token verified with it) stops being accepted within this time.
    jwks_ttl_s: int = Field(300, ge=1, validation_alias=_env("KEYCLOAK_JWKS_TTL_SECONDS"))
    # Sockets one caller may hold open at once on one API process, and all callers
    # together (below uvicorn's --limit-concurrency, so HTTP always has room).
    max_sockets_per_user: int = Field(20, ge=1, validation_alias=_env("MAX_SOCKETS_PER_USER"))
    max_sockets_per_process: int = Field(
        1500, ge=1, validation_alias=_env("MAX_SOCKETS_PER_PROCESS")
    )
    # Children one parent may have; one more is a 409 (replacing one is always allowed).
    max_children_per_parent: int = Field(50, ge=1, validation_alias=_env("MAX_CHILDREN_PER_PARENT"))

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 16 or not value.isprintable() or " " in value):
            raise ValueError("must be 16 or more printable characters without spaces")
        return value

    @field_validator("limits_key_prefix")
    @classmethod
    def _limits_key_prefix(cls, value: str) -> str:
        if not _KEY_PREFIX.match(value):
            raise ValueError(f"may hold only A-Z a-z 0-9 _ . : - (got {value!r})")
        return value

    @field_validator("keycloak_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("keycloak_audience")
    @classmethod
    def _audience(cls, value: str) -> str:
        if not value:
            raise ValueError("is required but not set")
        return value

    @field_validator("keycloak_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str, info: ValidationInfo) -> str:
        if value:
            return _http_url(value)
        issuer = info.data.get("keycloak_issuer")
        # Without a valid issuer its own error is reported; this one would only repeat it.
        return f"{issuer}/protocol/openid-connect/certs" if issuer else ""

    @field_validator("keycloak_spa_client_id")
    @classmethod
    def _spa_client_id(cls, value: str) -> str:
        if not _CLIENT_ID.match(value):
            raise ValueError(f"is not a valid client id (got {value!r})")
        return value

    @field_validator("keycloak_allowed_clients", mode="before")
    @classmethod
    def _allowed_clients(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = tuple(item.strip() for item in value.split(",") if item.strip())
        for client in value:
            if not isinstance(client, str) or not _CLIENT_ID.match(client):
                raise ValueError(f"has an invalid client id {client!r}")
        spa_client = info.data.get("keycloak_spa_client_id")
        # Without a valid SPA client id its own error is reported.
        return tuple(value) or ((spa_client,) if spa_client else ())

    @field_validator("tenant_claim")
    @classmethod
    def _tenant_claim(cls, value: str) -> str:
        if not _CLAIM_NAME.match(value):
            raise ValueError(f"is not a valid claim name (got {value!r})")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _cors_origins(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        origins = tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"has an invalid origin {origin!r} (want scheme://host[:port])")
        return origins or ("http://localhost:5173",)


_S = TypeVar("_S", bound=_Base)


def _variable(cls: type[_Base], location: tuple[int | str, ...]) -> str:
    name = str(location[0]) if location else "settings"
    field = cls.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return name


def _describe(cls: type[_Base], error: Any) -> str:
    """One pydantic error as `VARIABLE <what is wrong>`."""
    name = _variable(cls, tuple(error["loc"]))
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return f"{name} is required but not set"
    if kind == "value_error":
        return f"{name} {ctx.get('error', error['msg'])}"
    if kind in {"int_parsing", "int_from_float"}:
        return f"{name} must be a whole number (got {error['input']!r})"
    if kind == "float_parsing":
        return f"{name} must be a number (got {error['input']!r})"
    if kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        word = "or more" if kind == "greater_than_equal" else "exclusive"
        return f"{name} must be {bound} {word} (got {error['input']!r})"
    return f"{name}: {error['msg']}"


def _build(cls: type[_S], env: Mapping[str, str] | None) -> _S:
    try:
        if env is None:
            env_file = os.environ.get("ENV_FILE", DEFAULT_ENV_FILE).strip() or None
            return cls(_env_file=env_file)
        # An explicit mapping is the only source: nothing from os.environ or a file.
        values: dict[str, Any] = {key: value for key, value in env.items() if value.strip()}
        token = _MAPPING_ONLY.set(True)
        try:
            return cls(**values)
        finally:
            _MAPPING_ONLY.reset(token)
    except ValidationError as error:
        problems = [_describe(cls, item) for item in error.errors()]
        raise ConfigError("; ".join(problems)) from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The API's settings from `env`, or from the environment and `.env`; or ConfigError."""
    return _build(Settings, env)


def load_worker_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    """The worker's settings (no Keycloak), like load_settings."""
    return _build(WorkerSettings, env)


def load_database_settings(env: Mapping[str, str] | None = None) -> DatabaseSettings:
    """Only DATABASE_URL, for Alembic."""
    return _build(DatabaseSettings, env)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The API process's settings, read on first use."""
    return load_settings()


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    """The worker process's settings, read on first use."""
    return load_worker_settings()
