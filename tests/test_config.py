from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
        ({"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW"),
    ],
)
def test_bad_settings_name_the_variable(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({**VALID, **override})


def test_the_pool_is_fixed_unless_overflow_is_asked_for() -> None:
    # Overflow connections are closed on return, so overflow under steady load means a
    # new PostgreSQL connection per request; the default pool does not grow.
    assert load_settings(VALID).db_max_overflow == 0
    assert load_settings({**VALID, "DB_MAX_OVERFLOW": "0"}).db_max_overflow == 0
    assert load_settings({**VALID, "DB_MAX_OVERFLOW": "5"}).db_max_overflow == 5


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


def _clean_env(**extra: str) -> dict[str, str]:
    """The process environment without any setting, plus `extra`."""
    keep = {"PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV"}
    return {**{k: v for k, v in os.environ.items() if k in keep}, **extra}


def _python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _dotenv(folder: Path, values: dict[str, str]) -> Path:
    path = folder / ".env"
    path.write_text("# written by a test\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    _dotenv(tmp_path, {**VALID, "SAQ_QUEUE": "from-file"})
    code = "from app.config import load_settings; print(load_settings().saq_queue)"
    result = _python(code, tmp_path, _clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-file"


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    _dotenv(tmp_path, {**VALID, "SAQ_QUEUE": "from-file"})
    code = "from app.config import load_settings; print(load_settings().saq_queue)"
    result = _python(code, tmp_path, _clean_env(SAQ_QUEUE="from-env"))
    assert result.stdout.strip() == "from-env", result.stderr


def test_env_file_names_another_file_and_empty_reads_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "dev.env"
    other.write_text("".join(f"{k}={v}\n" for k, v in VALID.items()) + "LOG_LEVEL=debug\n")
    for name in [*VALID, "LOG_LEVEL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", str(other))
    assert load_settings().log_level == "DEBUG"
    monkeypatch.setenv("ENV_FILE", "")
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        load_settings()


def test_a_malformed_value_in_the_dotenv_file_stops_startup_naming_it(tmp_path: Path) -> None:
    _dotenv(tmp_path, {**VALID, "DB_POOL_SIZE": "lots"})
    result = _python("import app.main", tmp_path, _clean_env())
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration error: DB_POOL_SIZE must be a whole number (got 'lots')"
    ]


def test_the_worker_needs_no_keycloak_settings(tmp_path: Path) -> None:
    env = _clean_env(DATABASE_URL=VALID["DATABASE_URL"], REDIS_URL=VALID["REDIS_URL"])
    code = "import app.worker as w; print(w.settings['queue'].name)"
    result = _python(code, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "default"


def test_the_worker_names_what_it_lacks(tmp_path: Path) -> None:
    env = _clean_env(DATABASE_URL=VALID["DATABASE_URL"])
    result = _python("import app.worker", tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration error: REDIS_URL is required but not set"
    ]


def test_dotenv_example_lists_every_setting() -> None:
    from app.config import Settings

    example = (REPO_ROOT / ".env.example").read_text()
    listed = {
        line.split("=", 1)[0].lstrip("# ").strip() for line in example.splitlines() if "=" in line
    }
    variables = {
        str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        for field in Settings.model_fields.values()
    }
    assert variables <= listed, f".env.example lacks {sorted(variables - listed)}"


def test_operations_settings_of_sockets_keys_and_pooler() -> None:
    defaults = load_settings(VALID)
    assert defaults.jwks_ttl_s == 300
    assert defaults.max_sockets_per_user == 20
    assert defaults.database_pooler == "none"
    settings = load_settings(
        {
            **VALID,
            "KEYCLOAK_JWKS_TTL_SECONDS": "60",
            "MAX_SOCKETS_PER_USER": "5",
            "DATABASE_POOLER": "Transaction",
        }
    )
    assert settings.jwks_ttl_s == 60
    assert settings.max_sockets_per_user == 5
    assert settings.database_pooler == "transaction"
    for name, value in (
        ("KEYCLOAK_JWKS_TTL_SECONDS", "0"),
        ("KEYCLOAK_JWKS_TTL_SECONDS", "soon"),
        ("MAX_SOCKETS_PER_USER", "0"),
        ("DATABASE_POOLER", "session"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings({**VALID, name: value})


def test_allowed_clients_default_to_the_spa_client() -> None:
    assert load_settings(VALID).keycloak_allowed_clients == ("app-spa",)
    spa = load_settings({**VALID, "KEYCLOAK_SPA_CLIENT_ID": "web"})
    assert spa.keycloak_allowed_clients == ("web",)
    with pytest.raises(ConfigError, match="KEYCLOAK_ALLOWED_CLIENTS has an invalid client id"):
        load_settings({**VALID, "KEYCLOAK_ALLOWED_CLIENTS": "app-spa,bad client"})
