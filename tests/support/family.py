"""Helpers for tests about children: fresh parents and children of a chosen age."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import devstack
from litestar import Litestar
from litestar.testing import TestClient

from app.clock import CLOCK_STATE_KEY, FixedClock
from tests.factories import ChildBodyFactory, as_json

Headers = dict[str, str]


def new_parent(issuer: devstack.IssuerInfo) -> Headers:
    """Headers for a parent no other test has seen (its own `sub`), so lists start empty."""
    token = issuer.mint(username=f"parent-{uuid.uuid4().hex[:12]}")
    return {"Authorization": f"Bearer {token}"}


def birthday_for_age(age: int, today: dt.date) -> dt.date:
    """A birthday that makes a child exactly `age` on `today` and for the next weeks."""
    return (
        dt.date(today.year - age, 1, 1) if today.month > 1 else dt.date(today.year - age - 1, 2, 1)
    )


def create_child(
    client: TestClient[Litestar],
    headers: Headers,
    *,
    age: int,
    today: dt.date,
    interests: list[str] | None = None,
    child_id: str | None = None,
) -> dict[str, Any]:
    body = as_json(
        ChildBodyFactory.build(
            id=child_id,
            name=f"Child aged {age}",
            birthday=birthday_for_age(age, today),
            interests=interests or [],
        )
    )
    response = client.post("/v1/children", json=body, headers=headers)
    assert response.status_code == 201, response.text
    child: dict[str, Any] = response.json()
    return child


@contextmanager
def frozen_today(client: TestClient[Litestar], day: dt.date) -> Iterator[FixedClock]:
    """Make the app's `today` a fixed date (the clock can be moved) until the block ends."""
    state = client.app.state
    clock = FixedClock(day)
    state[CLOCK_STATE_KEY] = clock
    try:
        yield clock
    finally:
        del state[CLOCK_STATE_KEY]
