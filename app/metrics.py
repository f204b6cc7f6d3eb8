"""The process's Prometheus registry, the request figures the gateway counts, and
`GET /metrics`.

Counting runs on every request, so it stays out of prometheus-client's per-sample locks:
the gateway adds to plain dicts (one event-loop thread writes them) and a collector turns
them into the client's metric families only when `/metrics` is scraped. The exposition
itself is prometheus-client's.

Other parts of the app add their own collectors to `REGISTRY`, and may register an async
hook with `before_scrape` to refresh their figures (e.g. from Redis or PostgreSQL) just
before each scrape.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import HTTPRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.auth import PUBLIC_OPT
from app.config import Settings

__all__ = [
    "REGISTRY",
    "UNMATCHED_ROUTE",
    "HttpStats",
    "ScrapeHook",
    "before_scrape",
    "http_stats",
    "metrics_routes",
    "run_scrape_hooks",
]

# The app's own registry: not prometheus-client's global one, whose process and platform
# collectors would be scraped along (and which libraries may register into).
REGISTRY = CollectorRegistry(auto_describe=True)

ScrapeHook = Callable[[Litestar], Awaitable[None]]
_scrape_hooks: list[ScrapeHook] = []

# The `route` label of requests no route took (404/405 before any handler): one label,
# whatever path was asked for.
UNMATCHED_ROUTE = "unmatched"

# Seconds; prometheus-client's default latency buckets.
_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


def before_scrape(hook: ScrapeHook) -> None:
    """Await `hook(app)` before each scrape of `/metrics` (registered once per hook)."""
    if hook not in _scrape_hooks:
        _scrape_hooks.append(hook)


async def run_scrape_hooks(app: Litestar) -> None:
    for hook in list(_scrape_hooks):
        await hook(app)


class HttpStats(Collector):
    """Requests by method, route template and status; latency by method and route; open
    WebSockets. Written by the gateway, read by the registry at scrape time."""

    def __init__(self, buckets: tuple[float, ...] = _BUCKETS) -> None:
        self._bounds = buckets
        # Per (method, route, status): one count per latency bucket (the last one +Inf),
        # then the sum of seconds. One lookup per request; the counter and the histogram
        # (which has no status label) are both derived from it at scrape time.
        self._series: dict[tuple[str, str, int], list[float]] = {}
        self.websockets = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        slots = self._series.get((method, route, status))
        if slots is None:
            slots = self._series[method, route, status] = [0.0] * (len(self._bounds) + 2)
        # `le` is inclusive: the first bound >= seconds is the observation's bucket.
        slots[bisect_left(self._bounds, seconds)] += 1
        slots[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests", "HTTP requests answered.", labels=("method", "route", "status")
        )
        by_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), slots in list(self._series.items()):
            requests.add_metric((method, route, str(status)), sum(slots[:-1]))
            merged = by_route.setdefault((method, route), [0.0] * len(slots))
            for index, amount in enumerate(slots):
                merged[index] += amount
        yield requests
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from the request reaching the app to its last byte.",
            labels=("method", "route"),
        )
        edges = [*(str(bound) for bound in self._bounds), "+Inf"]
        for (method, route), slots in by_route.items():
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for edge, in_bucket in zip(edges, slots[:-1], strict=True):
                cumulative += in_bucket
                buckets.append((edge, cumulative))
            latency.add_metric((method, route), buckets, slots[-1])
        yield latency
        yield GaugeMetricFamily(
            "websocket_connections", "WebSockets open now.", value=self.websockets
        )


# One per process, like the figures it serves ("each API process serves its own").
http_stats = HttpStats()
REGISTRY.register(http_stats)


def metrics_routes(settings: Settings) -> list[HTTPRouteHandler]:
    """`GET /metrics` when METRICS_TOKEN is set; without it there is no such route (404)."""
    if settings.metrics_token is None:
        return []
    expected = settings.metrics_token.encode()

    # Public to Keycloak authentication (a Keycloak token is no metrics token): it checks
    # its own secret. Not in the OpenAPI document: it is for the scraper, not the SPA.
    @get("/metrics", opt={PUBLIC_OPT: True}, include_in_schema=False)
    async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode("latin-1"), expected
        ):
            raise NotAuthorizedException(
                "Not authenticated: /metrics wants the metrics bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        await run_scrape_hooks(request.app)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return [metrics]
