"""Counting the statements a request sends, on the app's own pooled connections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import event

from app.db.driver import app_engine

__all__ = ["statements_sent"]

# What the pool's pre-ping sends on checkout (foundation setting), not our statements.
PING_STATEMENTS = {"BEGIN;", ";", "ROLLBACK;"}


@contextmanager
def statements_sent(client: TestClient[Litestar]) -> Iterator[list[str]]:
    """Record every statement the app's pooled connections send while the block runs."""
    statements: list[str] = []
    connections: list[Any] = []

    def record(logged: Any) -> None:
        if logged.query not in PING_STATEMENTS:
            statements.append(logged.query)

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(record)
        connections.append(driver)

    pool = app_engine(client.app).sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        yield statements
        # Loggers run on the app's event loop just after the statement; let them finish.
        time.sleep(0.2)
    finally:
        event.remove(pool, "checkout", on_checkout)
        for driver in connections:
            driver.remove_query_logger(record)
