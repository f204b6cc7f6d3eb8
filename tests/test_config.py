from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import ConfigError, load_settings
from tests.support.processes import REPO_ROOT

VALID = {
    "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/app",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "KEYCLOAK_ISSUER": "http://localhost:8080/realms/app/",
    "KEYCLOAK_AUDIENCE": "app-api",
}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(VALID)
    assert settings.keycloak_issuer == "http://localhost:8080/realms/app"
    assert (
        settings.keycloak_jwks_url
        == "http://localhost:8080/realms/app/protocol/openid-connect/certs"
    )
    assert settings.tenant_claim == "tenant_id"
    assert settings.cors_origins == ("http://localhost:5173",)


def test_optional_settings_are_read() -> None:
    settings = load_settings(
        {
            **VALID,
            "KEYCLOAK_JWKS_URL": "http://keycloak:8080/certs",
            "TENANT_CLAIM": "org",
            "CORS_ORIGINS": "http://localhost:5173, https://app.example.com",
        }
    )
    assert settings.keycloak_jwks_url == "http://keycloak:8080/certs"
    assert settings.tenant_claim == "org"
    assert settings.cors_origins == ("http://localhost:5173", "https://app.example.com")


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://postgres@localhost/app"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql+asyncpg://"}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"KEYCLOAK_ISSUER": ""}, "KEYCLOAK_ISSUER"),
        ({"KEYCLOAK_ISSUER": "localhost:8080/realms/app"}, "KEYCLOAK_ISSUER"),
        ({"KEYCLOAK_AUDIENCE": " "}, "KEYCLOAK_AUDIENCE"),
        ({"KEYCLOAK_JWKS_URL": "ftp://x/certs"}, "KEYCLOAK_JWKS_URL"),
        ({"CORS_ORIGINS": "localhost:5173"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "http://localhost:5173/path"}, "CORS_ORIGINS"),
        ({"TENANT_CLAIM": "bad claim"}, "TENANT_CLAIM"),
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
    ],
)
def test_bad_settings_name_the_variable(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({**VALID, **override})


def test_startup_fails_with_one_line_naming_the_variable() -> None:
    env = {key: value for key, value in os.environ.items() if key != "KEYCLOAK_AUDIENCE"}
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["configuration error: KEYCLOAK_AUDIENCE is required but not set"]
