"""One JSON error shape; no stack trace, SQL or driver text ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
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
    # ...but the server log keeps what an operator needs.
    assert any(record.exc_info for record in caplog.records)


def test_exception_handlers_cover_everything() -> None:
    assert Exception in exception_handlers
