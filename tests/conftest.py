"""The test session's real parts: a private PostgreSQL database migrated with Alembic,
the development token issuer (a real JWKS over HTTP), and the app on real Redis.

`scripts/test` provides DATABASE_URL and REDIS_URL (the machine's servers or embedded
ones); this session creates its own database on that server and drops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import devstack
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient

from tests.support.pgbouncer import running_pgbouncer
from tests.support.processes import REPO_ROOT, forget_saq_queue

_STACK = pytest.StashKey[contextlib.ExitStack]()
_ISSUER = pytest.StashKey[devstack.IssuerInfo]()

# The PgBouncer pass (scripts/run_tests.py) runs the suites marked `database_path` again
# with the apps behind PgBouncer. A suite is one when any of its tests puts the app on
# the database through these fixtures (in-process apps, the jobs tests' API and worker
# processes), and the WebSocket suites, which start API processes of their own. A new
# domain's tests that use `client` are in the pass without being listed anywhere.
APP_FIXTURES = frozenset(
    {"client", "fresh_client", "async_client", "idle_client", "api_process", "worker"}
)
SOCKET_SUITES = REPO_ROOT / "tests" / "realtime"


async def _admin(base_url: str, sql: str) -> None:
    connection = await asyncpg.connect(devstack.asyncpg_dsn(base_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _migrate(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise pytest.UsageError(f"alembic upgrade head failed:\n{result.stderr[-4000:]}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pgbouncer",
        action="store_true",
        help="run the apps through a real PgBouncer in transaction pooling mode "
        "(DATABASE_POOLER=transaction); migrations and test fixtures go to PostgreSQL",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.collectonly:
        return
    base_db, base_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not base_db or not base_redis:
        raise pytest.UsageError(
            "DATABASE_URL and REDIS_URL are not set: run the suite with scripts/test"
        )
    # A developer's .env must not change what the suite runs with (app/config.py).
    os.environ["ENV_FILE"] = ""
    stack = contextlib.ExitStack()
    config.stash[_STACK] = stack
    issuer = stack.enter_context(devstack.dev_issuer())
    config.stash[_ISSUER] = issuer
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(base_db, f'CREATE DATABASE "{name}"'))
    stack.callback(
        lambda: asyncio.run(_admin(base_db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    )
    # Workers started by tests leave SAQ keys under the session's queue name.
    stack.callback(forget_saq_queue, base_redis, f"test-{name}")
    database_url = devstack.with_database(base_db, name)
    _migrate(database_url)  # always against PostgreSQL itself, as API.md asks
    app_database_url, pooler = database_url, "none"
    if config.getoption("pgbouncer"):
        bouncer = stack.enter_context(running_pgbouncer(base_db, pool_size=5))
        app_database_url = devstack.with_database(bouncer.url, name)
        pooler = "transaction"
    # Everything the app, a uvicorn subprocess or a worker process reads at start.
    os.environ.update(
        {
            "DATABASE_URL": app_database_url,
            "DATABASE_POOLER": pooler,
            # Fixtures that read or write the database behind the app's back go there
            # directly, whatever the app goes through.
            "TEST_DIRECT_DATABASE_URL": database_url,
            "TEST_BASE_DATABASE_URL": base_db,
            "REDIS_URL": base_redis,
            "SAQ_QUEUE": f"test-{name}",
            "LOG_LEVEL": "WARNING",
            # Limits on, high enough for the suite's own traffic; their own tests lower
            # them. The session's own keys: other sessions share this Redis.
            "RATE_LIMIT_PER_MINUTE": "100000",
            "JOB_LIMIT_PER_MINUTE": "100000",
            "MAX_OPEN_JOBS_PER_USER": "100000",  # jobs tests leave queued jobs behind
            # Fair shares off for the suite's workers (their own test turns them on).
            "MAX_ACTIVE_JOBS_PER_USER": "100000",
            "LIMITS_KEY_PREFIX": f"test-{name}:limits:",
            **issuer.env(),
        }
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    suites = {
        item.path
        for item in items
        if APP_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        or item.path.is_relative_to(SOCKET_SUITES)
    }
    for item in items:
        if item.path in suites:
            item.add_marker(pytest.mark.database_path)


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("pgbouncer"):
        return f"apps go through PgBouncer (transaction pooling): {os.environ['DATABASE_URL']}"
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_STACK, None)
    if stack is not None:
        stack.close()


@pytest.fixture(scope="session")
def issuer(pytestconfig: pytest.Config) -> devstack.IssuerInfo:
    return pytestconfig.stash[_ISSUER]


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test database on PostgreSQL itself (also in the PgBouncer pass)."""
    return os.environ["TEST_DIRECT_DATABASE_URL"]


@pytest.fixture(scope="session")
def token(issuer: devstack.IssuerInfo) -> Callable[[str], str]:
    """A valid access token for a dev user (alice, bob, carol or dave), one per user."""
    tokens: dict[str, str] = {}

    def for_user(username: str) -> str:
        if username not in tokens:
            tokens[username] = issuer.token(username)
        return tokens[username]

    return for_user


@pytest.fixture(scope="session")
def auth(token: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    """`Authorization` headers for a dev user: `client.get(url, headers=auth("bob"))`."""
    return lambda username: {"Authorization": f"Bearer {token(username)}"}


def make_app() -> Litestar:
    from app.config import load_settings
    from app.main import create_app

    return create_app(load_settings())


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient[Litestar]]:
    """One app for the session (its JWKS cache and pools are shared by the tests)."""
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
def fresh_client() -> Iterator[TestClient[Litestar]]:
    """A new app with cold caches, for tests that count JWKS fetches or rotate keys."""
    with TestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
async def async_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An app on the test's event loop, for truly concurrent requests."""
    async with AsyncTestClient(make_app()) as test_client:
        yield test_client


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the test database, for checking what was (not) written."""
    connection = await asyncpg.connect(devstack.asyncpg_dsn(os.environ["TEST_DIRECT_DATABASE_URL"]))
    try:
        yield connection
    finally:
        await connection.close()
