"""Bodies are decoded strictly: a boolean is `true`/`false`, a number a JSON number.

Litestar converts a handler's arguments in msgspec's lax mode, meant for query strings:
`{"steps": "3"}` started a 3-step job (202) and `{"done": 1}` or `{"done": "true"}` was
taken as `true` (issue 24, point 5). Now each is a 400 naming the field (the job
parameters' cases are in tests/jobs/test_jobs_http.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from app.config import load_settings
from app.main import create_app

Auth = Callable[[str], dict[str, str]]


class Flags(msgspec.Struct, forbid_unknown_fields=True):
    done: bool = False
    count: Annotated[int, msgspec.Meta(ge=0)] = 0
    ratio: float = 0.0
    note: str | None = None


@pytest.fixture(scope="module")
def flags_client() -> Iterator[TestClient[Litestar]]:
    """The app with one more route, whose body has every kind of scalar field: any body a
    new domain adds is decoded the same way."""

    @post("/v1/strict-probe", status_code=200, sync_to_thread=False)
    def probe(data: JSONBody[Flags]) -> Flags:
        return data

    app = create_app(load_settings())
    app.register(probe)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"done": 1}, "done"),
        ({"done": 0}, "done"),
        ({"done": "true"}, "done"),
        ({"done": "false"}, "done"),
        ({"done": None}, "done"),
        ({"count": "3"}, "count"),
        ({"count": 3.0}, "count"),
        ({"count": True}, "count"),
        ({"count": -1}, "count"),
        ({"ratio": "1.5"}, "ratio"),
        ({"note": 5}, "note"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_loosely_typed_value_is_400_naming_the_field(
    flags_client: TestClient[Litestar], auth: Auth, body: dict[str, object], field: str
) -> None:
    response = flags_client.post("/v1/strict-probe", json=body, headers=auth("alice"))
    assert response.status_code == 400, response.text
    error = response.json()
    assert [item["key"] for item in error["extra"]] == [field]
    assert error["extra"][0]["source"] == "body"
    assert field in error["detail"]


def test_well_typed_values_are_taken(flags_client: TestClient[Litestar], auth: Auth) -> None:
    body = {"done": True, "count": 3, "ratio": 2, "note": None}
    response = flags_client.post("/v1/strict-probe", json=body, headers=auth("alice"))
    assert response.status_code == 200, response.text
    assert response.json() == {"done": True, "count": 3, "ratio": 2.0, "note": None}


def test_a_body_that_is_not_an_object_is_400_naming_the_body(
    flags_client: TestClient[Litestar], auth: Auth
) -> None:
    headers = {**auth("alice"), "Content-Type": "application/json"}
    response = flags_client.post("/v1/strict-probe", content=b"[1]", headers=headers)
    assert response.status_code == 400, response.text
    assert [item["key"] for item in response.json()["extra"]] == ["body"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/children", {"name": 7, "birthday": "2019-01-01"}, "name"),
        ("/v1/children", {"name": "Ada", "birthday": "2019-01-01", "interests": "x"}, "interests"),
        ("/v1/projects", {"name": "p", "description": 1}, "description"),
    ],
)
def test_other_bodies_name_a_wrongly_typed_field(
    client: TestClient[Litestar], auth: Auth, path: str, body: dict[str, object], field: str
) -> None:
    response = client.post(path, json=body, headers=auth("alice"))
    assert response.status_code == 400, response.text
    assert [item["key"] for item in response.json()["extra"]] == [field]
