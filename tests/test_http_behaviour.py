"""Cross-cutting HTTP behaviour: request ids, access log lines, CORS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.logging import JsonFormatter


def test_the_request_id_is_always_the_servers_own_and_the_clients_is_only_logged(
    client: TestClient[Litestar],
    auth: Callable[[str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    # Issue 19: a client that sends an id the server gave out earlier must not get it back.
    with caplog.at_level(logging.INFO, logger="app.access"):
        reused = client.get("/v1/me", headers={**auth("bob"), "X-Request-ID": generated})
        own = client.get("/v1/me", headers={**auth("bob"), "X-Request-ID": "spa-123.abc"})
        refused = client.get("/v1/me", headers={"X-Request-ID": "bad id\nwith newline"})
    ids = [response.headers["x-request-id"] for response in (reused, own, refused)]
    assert generated not in ids
    assert "spa-123.abc" not in ids
    assert len({generated, *ids}) == 4
    assert refused.status_code == 401
    lines = [record for record in caplog.records if record.name == "app.access"]
    logged = [(r.request_id, r.client_request_id) for r in lines]  # type: ignore[attr-defined]
    # The client's value travels as its own field; a hostile one is dropped.
    assert logged == [(ids[0], generated), (ids[1], "spa-123.abc"), (ids[2], None)]


def test_one_access_line_per_request_without_secrets(
    client: TestClient[Litestar],
    token: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = token("carol")
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.get(
            "/v1/me?token=query-secret",
            headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "r1"},
        )
        client.get("/v1/me", headers={"X-Request-ID": "r2"})
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "app.access"
    ]
    assert [line["client_request_id"] for line in lines] == ["r1", "r2"]
    first, second = lines
    assert first["method"] == "GET"
    assert first["path"] == "/v1/me"
    assert first["status"] == 200
    assert first["sub"]
    assert isinstance(first["duration_ms"], float)
    assert second["status"] == 401
    assert second["sub"] is None
    rendered = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert secret not in rendered
    assert "query-secret" not in rendered


def test_cors_preflight_and_response_headers(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    origin = "http://localhost:5173"
    preflight = client.options(
        "/v1/me",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == origin
    response = client.get("/v1/me", headers={**auth("alice"), "Origin": origin})
    assert response.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    stranger = client.get("/v1/me", headers={**auth("alice"), "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
