"""Cross-cutting HTTP behaviour: request ids, access log lines, CORS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.logging import JsonFormatter


def test_request_id_is_generated_or_honoured(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) == 32
    echoed = client.get("/v1/me", headers={**auth("bob"), "X-Request-ID": "spa-123.abc"})
    assert echoed.headers["x-request-id"] == "spa-123.abc"
    # Refusals carry it too, and a hostile value is replaced rather than echoed.
    refused = client.get("/v1/me", headers={"X-Request-ID": "bad id\nwith newline"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] != "bad id\nwith newline"


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
    assert [line["request_id"] for line in lines] == ["r1", "r2"]
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
