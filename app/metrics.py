"""Prometheus metrics of this process: the registry, and hooks run before each scrape.

A minimal stand-in with the interface domains register against; `/metrics` itself
serves `REGISTRY` after awaiting every hook with the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar import Litestar
from prometheus_client import CollectorRegistry

__all__ = ["REGISTRY", "ScrapeHook", "before_scrape", "run_before_scrape_hooks"]

ScrapeHook = Callable[[Litestar], Awaitable[None]]

REGISTRY = CollectorRegistry()
_hooks: list[ScrapeHook] = []


def before_scrape(hook: ScrapeHook) -> None:
    """Run `hook(app)` before each scrape, to refresh gauges read from elsewhere."""
    if hook not in _hooks:
        _hooks.append(hook)


async def run_before_scrape_hooks(app: Litestar) -> None:
    for hook in _hooks:
        await hook(app)
