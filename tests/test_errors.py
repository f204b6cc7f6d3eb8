"""One JSON error shape; no stack trace, SQL or driver text ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg
import pytest
from advanced_alchemy.exceptions import wrap_sqlalchemy_exception
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import load_settings
from app.errors import exception_handlers
from app.main import create_app

LEAKS = ("Traceback", "sqlalchemy", "asyncpg", "SELECT", 'File "', "psycopg", "RuntimeError")


def _assert_clean(body: str) -> None:
    for leak in LEAKS:
        assert leak not in body, f"{leak!r} leaked in {body!r}"


def test_unknown_path_is_json_404(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    response = client.get("/v1/nothing-here", headers=auth("alice"))
    assert response.status_code == 404
    assert response.json()["status_code"] == 404
    assert isinstance(response.json()["detail"], str)


def test_wrong_method_is_json_405(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    response = client.delete("/v1/me", headers=auth("alice"))
    assert response.status_code == 405
    assert response.json()["status_code"] == 405


@pytest.fixture
def failing_client(caplog: pytest.LogCaptureFixture) -> TestClient[Litestar]:
    @get("/v1/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @get("/v1/bad-sql")
    async def bad_sql(db_session: NamedDependency[AsyncSession]) -> None:
        await db_session.execute(text("SELECT * FROM table_that_does_not_exist"))

    app = create_app(load_settings())
    app.register(boom)
    app.register(bad_sql)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/v1/boom", "/v1/bad-sql"])
def test_server_errors_hide_their_details(
    failing_client: TestClient[Litestar],
    auth: Callable[[str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    with failing_client as client, caplog.at_level(logging.ERROR):
        response = client.get(path, headers=auth("alice"))
    assert response.status_code == 500
    assert response.json() == {"status_code": 500, "detail": "Internal server error"}
    _assert_clean(response.text)
    # ...but the server log keeps what an operator needs, tagged to find its request.
    request_id = response.headers["x-request-id"]
    logged = [record for record in caplog.records if record.exc_info]
    assert [getattr(record, "request_id", None) for record in logged] == [request_id]


@pytest.fixture
def bad_value_client() -> TestClient[Litestar]:
    @get("/v1/huge-offset")
    async def huge_offset(db_session: NamedDependency[AsyncSession]) -> None:
        # The driver refuses to encode it: beyond bigint.
        await db_session.execute(text("SELECT 1 OFFSET :n"), {"n": 10**30})

    @get("/v1/not-a-number")
    async def not_a_number(db_session: NamedDependency[AsyncSession]) -> None:
        # PostgreSQL refuses it: SQLSTATE class 22 (data exception).
        await db_session.execute(text("SELECT CAST(CAST(:n AS text) AS integer)"), {"n": "x"})

    @get("/v1/nul-in-text")
    async def nul_in_text(db_session: NamedDependency[AsyncSession]) -> None:
        # PostgreSQL text cannot hold NUL; Advanced-Alchemy wraps such errors itself.
        with wrap_sqlalchemy_exception():
            await db_session.execute(text("SELECT CAST(:s AS text)"), {"s": "a\x00b"})

    app = create_app(load_settings())
    app.register(huge_offset)
    app.register(not_a_number)
    app.register(nul_in_text)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/v1/huge-offset", "/v1/not-a-number", "/v1/nul-in-text"])
def test_values_the_database_refuses_are_400_not_500(
    bad_value_client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], path: str
) -> None:
    with bad_value_client as client:
        response = client.get(path, headers=auth("alice"))
    assert response.status_code == 400
    assert response.json()["detail"] == "A value in the request is out of range or malformed"
    _assert_clean(response.text)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_postgres_restarting_or_overloaded_is_503(
    auth: Callable[[str], dict[str, str]], error: Exception
) -> None:
    # Seen by the PostgreSQL restart gate (tests/test_faults.py) as 500s before.
    @get("/v1/db-busy", sync_to_thread=False)
    def db_busy() -> None:
        raise error

    app = create_app(load_settings())
    app.register(db_busy)
    with TestClient(app) as client:
        response = client.get("/v1/db-busy", headers=auth("alice"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    _assert_clean(response.text)


def test_exception_handlers_cover_everything() -> None:
    assert Exception in exception_handlers
