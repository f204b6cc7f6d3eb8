"""Job gauges on the metrics registry, refreshed by the hook the app runs before a scrape."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import REGISTRY, run_scrape_hooks
from tests.jobs.conftest import PrivateStack, finished, start_job, wait_for_job
from tests.support.processes import running_worker

Auth = Callable[[str], dict[str, str]]


def _scrape(stack: PrivateStack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Run the scrape hooks on the app's own loop, then read the registry as Prometheus would."""
    stack.client.blocking_portal.call(run_scrape_hooks, stack.client.app)
    samples = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_job_counts_by_kind_and_status_and_the_queue_depth(stack: PrivateStack, auth: Auth) -> None:
    client, headers = stack.client, auth("dave")
    before = _scrape(stack)
    queued_key = ("jobs", (("kind", "demo"), ("status", "queued")))
    for _ in range(3):
        start_job(client, headers, steps=1, delay_ms=0)

    waiting = _scrape(stack)
    assert waiting[queued_key] == before.get(queued_key, 0) + 3
    assert waiting[("jobs_queue_depth", (("queue", stack.queue),))] == 3
    assert waiting[("jobs_workers", (("queue", stack.queue),))] == 0

    with running_worker(stack.worker_env):
        job_id = start_job(client, headers, "export")["job_id"]
        wait_for_job(client, headers, job_id, finished)
        deadline = time.monotonic() + 20
        while True:  # the workers publish their stats every few seconds
            done = _scrape(stack)
            runs = {
                labels: value
                for (name, labels), value in done.items()
                if name == "jobs_worker_runs" and ("outcome", "complete") in labels
            }
            if sum(runs.values()) >= 4:
                break
            assert time.monotonic() < deadline, f"no worker stats: {done}"
            time.sleep(0.5)
    assert done[("jobs_queue_depth", (("queue", stack.queue),))] == 0
    assert done[("jobs_workers", (("queue", stack.queue),))] == 1
    assert done[("jobs", (("kind", "export"), ("status", "complete")))] >= 1
    assert done.get(queued_key, 0) == before.get(queued_key, 0)
    median = done[("jobs_recent_duration_seconds", (("kind", "export"), ("quantile", "0.5")))]
    assert 0 < median < 30


def test_a_scrape_goes_on_when_redis_is_down(stack: PrivateStack, auth: Auth) -> None:
    start_job(stack.client, auth("dave"), steps=1, delay_ms=0)
    stack.redis.stop()
    started = time.monotonic()
    samples = _scrape(stack)
    assert time.monotonic() - started < 5
    assert samples[("jobs", (("kind", "demo"), ("status", "queued")))] >= 1
