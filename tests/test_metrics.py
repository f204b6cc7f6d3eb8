"""GET /metrics: its own bearer secret, prometheus-client's text format, route templates."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import load_settings
from app.main import create_app
from app.metrics import before_scrape

METRICS_TOKEN = "scrape-secret-0123456789abcdef"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_client() -> Iterator[TestClient[Litestar]]:
    app = create_app(load_settings({**os.environ, "METRICS_TOKEN": METRICS_TOKEN}))
    with TestClient(app) as client:
        yield client


def scrape(client: TestClient[Litestar]) -> Samples:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_without_a_metrics_token_there_is_no_metrics_route(client: TestClient[Litestar]) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=SCRAPER).status_code == 404


def test_only_the_metrics_token_opens_metrics(
    metrics_client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    refused = [
        {},
        {"Authorization": "Bearer wrong-secret-0123456789abcdef"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        auth("alice"),  # a Keycloak token is not a metrics token
    ]
    for headers in refused:
        response = metrics_client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["status_code"] == 401
    assert metrics_client.get("/metrics", headers=SCRAPER).status_code == 200
    # Nor is the metrics token a Keycloak token.
    assert metrics_client.get("/v1/me", headers=SCRAPER).status_code == 401


def test_metrics_is_not_in_the_openapi_document(metrics_client: TestClient[Litestar]) -> None:
    paths = metrics_client.get("/openapi.json").json()["paths"]
    assert "/metrics" not in paths


def test_requests_are_counted_by_route_template_not_by_path(
    metrics_client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    route = "/v1/children/{child_id}"
    before = scrape(metrics_client)
    for number in range(200):
        response = metrics_client.get(f"/v1/children/kid-{number}", headers=auth("carol"))
        assert response.status_code == 404
    after = scrape(metrics_client)
    # Other tests in this process count too: compare what changed.
    changed = {
        dict(key[1])["route"]
        for key, count in after.items()
        if key[0] == "http_requests_total" and count != before.get(key, 0.0)
    }
    assert changed == {route, "/metrics"}
    labels = {"method": "GET", "route": route, "status": "404"}
    counted = value(after, "http_requests_total", **labels)
    assert counted - value(before, "http_requests_total", **labels) == 200
    # No raw path became a label anywhere.
    assert not [key for key in after if any("kid-" in v for _, v in key[1])]
    latency = {"method": "GET", "route": route}
    observed = value(after, "http_request_duration_seconds_count", **latency)
    assert observed - value(before, "http_request_duration_seconds_count", **latency) == 200
    assert value(after, "http_request_duration_seconds_bucket", le="+Inf", **latency) == observed
    assert value(after, "http_request_duration_seconds_sum", **latency) > 0


def test_unmatched_paths_share_one_label(metrics_client: TestClient[Litestar]) -> None:
    before = scrape(metrics_client)
    for number in range(5):
        assert metrics_client.get(f"/no/such/{number}").status_code == 404
    after = scrape(metrics_client)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    counted = value(after, "http_requests_total", **labels)
    assert counted - value(before, "http_requests_total", **labels) == 5
    # Made-up methods share one label too.
    for number in range(3):
        assert metrics_client.request(f"BREW{number}", "/v1/me").status_code in (400, 405)
    methods = {
        dict(key[1])["method"] for key in scrape(metrics_client) if key[0] == "http_requests_total"
    }
    assert not [method for method in methods if method.startswith("BREW")]


def test_open_websockets_are_a_gauge(
    metrics_client: TestClient[Litestar], token: Callable[[str], str]
) -> None:
    def sockets() -> float:
        return value(scrape(metrics_client), "websocket_connections")

    idle = sockets()
    echo = f"/ws/echo?token={token('alice')}"
    with metrics_client.websocket_connect(echo) as first:
        first.send_text("ping")
        assert first.receive_text() == "ping"
        with metrics_client.websocket_connect(echo) as second:
            second.send_text("pong")
            assert second.receive_text() == "pong"
            assert sockets() == idle + 2
        deadline = time.monotonic() + 5
        while sockets() != idle + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sockets() == idle + 1
    deadline = time.monotonic() + 5
    while sockets() != idle and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sockets() == idle


def test_scrape_hooks_run_before_each_scrape(metrics_client: TestClient[Litestar]) -> None:
    seen: list[Litestar] = []

    async def hook(app: Litestar) -> None:
        seen.append(app)

    before_scrape(hook)
    before_scrape(hook)  # registered once
    scrape(metrics_client)
    scrape(metrics_client)
    assert seen == [metrics_client.app, metrics_client.app]
