"""`scripts/dev`: the whole stack on this machine, in one command.

Starts, in order: PostgreSQL and Redis (from DATABASE_URL / REDIS_URL when set, else real
embedded servers with data under .devdata/), `alembic upgrade head`, the development
token issuer (keys kept in .devdata/issuer-key.json so tokens survive a restart), the API
(uvicorn with reload) and the SAQ worker. Ctrl-C or SIGTERM stops them in reverse order.

The running stack's settings go to .devdata/dev.env (git-ignored, removed on stop), so a
second terminal can run `uvicorn app.main:app`, `saq app.worker.settings` or
`alembic upgrade head` against the same services: `export ENV_FILE=.devdata/dev.env`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devstack import (
    REPO_ROOT,
    IssuerInfo,
    RestartingChild,
    ServiceUrls,
    backing_services,
    browser_redirect_uris,
    dev_issuer,
    log,
    preferred_port,
    shielded_from_signals,
    signals_raise_keyboard_interrupt,
    spawn,
    stop_process,
    wait_for_http,
)
from seed import seed

STATE_DIR = REPO_ROOT / ".devdata"
ISSUER_KEY_FILE = STATE_DIR / "issuer-key.json"
ENV_FILE = STATE_DIR / "dev.env"
SPA_DIR = REPO_ROOT / "tests" / "e2e" / "spa"
# The default CORS origin and the issuer's default redirect: no setting to change.
SPA_URL = "http://localhost:5173"
# What a second terminal needs to reach this stack (app/config.py reads the file).
SHARED_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "KEYCLOAK_ISSUER",
    "KEYCLOAK_AUDIENCE",
    "KEYCLOAK_JWKS_URL",
    "KEYCLOAK_SPA_CLIENT_ID",
    "CORS_ORIGINS",
    "SAQ_QUEUE",
)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/dev", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="where the API listens")
    parser.add_argument("--port", type=int, default=8000, help="API port (next free if taken)")
    parser.add_argument("--issuer-port", type=int, default=8081, help="(next free if taken)")
    parser.add_argument("--no-reload", action="store_true", help="no auto-reload of the API")
    parser.add_argument("--no-worker", action="store_true", help="do not start the SAQ worker")
    parser.add_argument(
        "--seed", action="store_true", help="load sample children and projects (scripts/seed)"
    )
    parser.add_argument(
        "--spa",
        action="store_true",
        help=f"serve the example SPA (tests/e2e/spa) on {SPA_URL} (needs Node.js and npm)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=ENV_FILE,
        help="where to write the stack's settings for a second terminal (default: %(default)s)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _child(
    name: str, command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn(command, env=env, cwd=cwd)
    log(f"{name} started (pid {process.pid})")
    try:
        yield process
    finally:
        stop_process(process, name)
        log(f"{name} stopped")


def _migrate(env: dict[str, str]) -> None:
    if not (REPO_ROOT / "alembic.ini").exists():
        log("no alembic.ini yet: skipping migrations")
        return
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], env=env, cwd=REPO_ROOT, check=True
    )
    log(f"migrations applied in {time.monotonic() - started:.1f} s")


def _prepare_spa(api: str) -> None:
    """npm packages (when package-lock.json changed) and the client types from this API."""
    stamp = SPA_DIR / "node_modules" / ".lock-checksum"
    checksum = hashlib.sha256((SPA_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != checksum:
        log("SPA: npm ci (once)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SPA_DIR, check=True)
        stamp.write_text(checksum)
    subprocess.run(
        [
            "npx",
            "--no-install",
            "openapi-typescript",
            f"{api}/openapi.json",
            "--default-non-nullable=false",  # a request field with a default is optional
            "-o",
            "src/schema.d.ts",
        ],
        cwd=SPA_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The settings a second terminal needs, as a dotenv file only the owner can read."""
    lines = ["# Written by scripts/dev for the stack it runs; removed when it stops."]
    for name in SHARED_SETTINGS:
        if env.get(name):
            # Single quotes: shell `source` and dotenv readers both take them literally.
            lines.append(f"{name}='{env[name]}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    temporary.replace(path)


def _second_terminal(env_file: Path, api_port: int) -> list[str]:
    shown = env_file.relative_to(REPO_ROOT) if env_file.is_relative_to(REPO_ROOT) else env_file
    return [
        f"  A second terminal (same services; settings in {shown}):",
        f"    cd {REPO_ROOT} && . .venv/bin/activate && export ENV_FILE={shown}",
        "    alembic upgrade head",
        "    saq app.worker.settings",
        f"    uvicorn app.main:app --port {api_port + 1}",
    ]


def _banner(
    api: str, issuer: IssuerInfo, services: ServiceUrls, worker: bool, env_file: Path
) -> str:
    users = issuer.users()
    width = max(len(user["username"]) for user in users)
    user_lines = []
    for user in users:
        roles = ", ".join(user["realm_roles"])
        tenant = f"tenant {user['tenant_id']}" if user["tenant_id"] else "no tenant"
        user_lines.append(f"    {user['username']:<{width}}  roles: {roles}; {tenant}")
    where_pg = "embedded" if services.postgres_embedded else "from DATABASE_URL"
    where_redis = "embedded" if services.redis_embedded else "from REDIS_URL"
    token_cmd = f"curl -s -H 'X-Dev-Issuer: 1' {issuer.base_url}/dev/token/alice"
    return "\n".join(
        [
            "",
            "Ready.",
            f"  API           {api}",
            f"  Swagger UI    {api}/docs",
            f"  Redoc         {api}/docs/redoc",
            f"  Scalar        {api}/docs/scalar",
            f"  OpenAPI       {api}/openapi.json",
            f"  Issuer        {issuer.issuer}   (help: {issuer.base_url}/dev)",
            f"  PostgreSQL    {_without_password(services.database_url)}   ({where_pg})",
            f"  Redis         {_without_password(services.redis_url)}   ({where_redis})",
            f"  Worker        {'running' if worker else 'not started'}",
            "",
            "  Dev users (password = username):",
            *user_lines,
            "",
            "  Try:",
            f'    curl -H "Authorization: Bearer $({token_cmd})" {api}/v1/me',
            "",
            *_second_terminal(env_file, urlsplit(api).port or 8000),
            "",
            "  Ctrl-C stops everything.",
            "",
        ]
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def _watch(children: dict[str, subprocess.Popen[bytes]], restarting: list[RestartingChild]) -> None:
    """Block until Ctrl-C/SIGTERM, or until the API dies (then everything stops).

    A worker that dies is started again: jobs it was running are failed or retried by
    the sweep of the next one, as in production.
    """
    while True:
        for name, process in children.items():
            if process.poll() is not None:
                log(f"{name} exited with code {process.returncode}; stopping the stack")
                return
        for child in restarting:
            child.check()
        time.sleep(0.5)


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    services = stack.enter_context(backing_services(STATE_DIR))
    env = {**os.environ, **services.env(), "PYTHONUNBUFFERED": "1"}
    _migrate(env)

    # The API's port is chosen first: the issuer lets the docs on it sign in.
    port = preferred_port(args.port, args.host)
    api = f"http://{args.host}:{port}"
    cors_origins = env.get("CORS_ORIGINS") or "http://localhost:5173"
    stack.callback(log, "dev issuer stopped")
    issuer = stack.enter_context(
        dev_issuer(
            port=preferred_port(args.issuer_port),
            key_file=ISSUER_KEY_FILE,
            quiet=False,
            redirect_uris=browser_redirect_uris(cors_origins, api),
        )
    )
    log(f"dev issuer started (pid {issuer.pid}) at {issuer.issuer}")
    env.update(issuer.env())

    children: dict[str, subprocess.Popen[bytes]] = {}
    restarting: list[RestartingChild] = []
    if not (REPO_ROOT / "app" / "main.py").exists():
        log("app/main.py does not exist yet: running the backing services and issuer only")
    else:
        api_command = [sys.executable, "-m", "uvicorn", "app.main:app"]
        api_command += ["--host", args.host, "--port", str(port)]
        if not args.no_reload:
            api_command += ["--reload", "--reload-dir", "app"]
        children["API"] = stack.enter_context(_child("API", api_command, env))
        wait_for_http(f"{api}/health", timeout=60, process=children["API"])

        worker_module = REPO_ROOT / "app" / "worker.py"
        if args.no_worker:
            log("worker not started (--no-worker)")
        elif not worker_module.exists():
            log("app/worker.py does not exist yet: no worker started")
        else:
            # No `-v`: the worker logs through app/logging.py at LOG_LEVEL like the API.
            worker_command = [sys.executable, "-m", "saq", "app.worker.settings"]
            # A short drain, so Ctrl-C never waits long for a demo job.
            worker_env = {"WORKER_SHUTDOWN_GRACE_SECONDS": "5", **env}
            worker = RestartingChild("worker", worker_command, env=worker_env)
            stack.callback(worker.stop)
            worker.start()
            restarting.append(worker)
        if args.seed:
            seed(api, issuer.issuer, out=sys.stderr)
        if args.spa:
            _prepare_spa(api)
            spa_env = {**env, "VITE_API_URL": api, "VITE_OIDC_AUTHORITY": issuer.issuer}
            spa_command = ["npx", "--no-install", "vite", "--port", "5173", "--strictPort"]
            children["SPA"] = stack.enter_context(_child("SPA", spa_command, spa_env, SPA_DIR))
        write_env_file(args.env_file, env)
        stack.callback(args.env_file.unlink, missing_ok=True)
        banner = _banner(api, issuer, services, bool(restarting), args.env_file)
        if "SPA" in children:
            banner = banner.replace("\n  Issuer ", f"\n  SPA           {SPA_URL}\n  Issuer ", 1)
        print(banner, flush=True)
    if children:
        _watch(children, restarting)
    else:
        _wait_forever()


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    code = 0
    # A launcher may have left SIGINT ignored (background jobs do); Ctrl-C must work here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with signals_raise_keyboard_interrupt():
        stack = contextlib.ExitStack()
        try:
            run(args, stack)
            code = 1  # the API died on its own
        except KeyboardInterrupt:
            log("stopping...")
        except Exception as exc:
            log(f"failed: {exc}")
            code = 1
        finally:
            # Reverse order of start: worker, API, issuer, Redis, PostgreSQL.
            with shielded_from_signals():
                stack.close()
    log("all stopped")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
