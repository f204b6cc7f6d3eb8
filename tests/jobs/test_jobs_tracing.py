"""OpenTelemetry traces (API.md, Tracing) as a real API and a real worker export them.

A small OTLP/HTTP receiver in this process (devstack.OtlpReceiver) decodes what both
processes send; one `POST /v1/jobs` (demo, three steps) followed over a WebSocket must
give one trace across the two processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from devstack import OtlpReceiver

from tests.jobs.conftest import open_socket, receive_all
from tests.support.processes import (
    REPO_ROOT,
    forget_saq_queue,
    running_api,
    running_worker,
)

Token = Callable[[str], str]

SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP's Span.SpanKind values
STEPS = 3


def _wait_for_spans(
    receiver: OtlpReceiver, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 15
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        spans = receiver.spans()
        if until(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def _children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [span for span in spans if span["parent_span_id"] == parent["span_id"]]


def _one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [span for span in spans if all(span[key] == value for key, value in match.items())]
    assert len(found) == 1, f"{len(found)} spans match {match}: {[s['name'] for s in spans]}"
    return found[0]


def _abort_while_running(api: str, bearer: str) -> str:
    """Start a long demo job, abort it once a worker runs it; the POST's trace id."""
    headers = {"Authorization": f"Bearer {bearer}"}
    body = {"kind": "demo", "params": {"steps": 50, "delay_ms": 200}}
    response = httpx.post(f"{api}/v1/jobs", json=body, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    job_url = f"{api}/v1/jobs/{response.json()['job_id']}"
    deadline = time.monotonic() + 15
    while httpx.get(job_url, headers=headers, timeout=10).json()["status"] != "active":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    assert httpx.delete(job_url, headers=headers, timeout=10).status_code == 202
    time.sleep(0.6)  # the worker notices at its next step (every 200 ms)
    return str(response.headers["x-trace-id"])


def _tree(spans: list[dict[str, Any]], trace_id: str) -> str:
    """The trace as an indented outline (service, span, duration), shown by `pytest -s` and
    when the test fails: what an operator sees in Jaeger, as text."""
    ours = sorted((s for s in spans if s["trace_id"] == trace_id), key=lambda s: s["start_ns"])
    known = {span["span_id"] for span in ours}
    lines: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        statement = span["attributes"].get("db.statement", "")
        detail = f" [{statement[:48]}]" if statement else ""
        lines.append(
            f"{'  ' * depth}{span['service']}: {span['name']}{detail} {span['duration_ms']:.1f} ms"
        )
        for child in _children(ours, span):
            walk(child, depth + 1)

    for root in (s for s in ours if s["parent_span_id"] not in known):
        walk(root, 0)
    return "\n".join(lines)


@pytest.mark.slow
def test_one_trace_from_the_request_through_the_worker_and_the_socket(
    token: Token, tmp_path: Path
) -> None:
    queue = f"tracing-{uuid.uuid4().hex[:8]}"
    bearer = token("alice")
    with OtlpReceiver(keep=True) as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
            "SAQ_QUEUE": queue,
            "LOG_LEVEL": "INFO",
        }
        api_log = tmp_path / "api.log"
        try:
            with (
                running_worker(env, log_path=tmp_path / "worker.log"),
                running_api(env, log_path=api_log) as api,
            ):
                response = httpx.post(
                    f"{api}/v1/jobs",
                    json={"kind": "demo", "params": {"steps": STEPS, "delay_ms": 150}},
                    headers={"Authorization": f"Bearer {bearer}"},
                    timeout=10,
                )
                assert response.status_code == 202, response.text
                job_id = response.json()["job_id"]
                trace_id = response.headers["x-trace-id"]
                assert response.headers["x-request-id"]  # the request id stays
                with open_socket(api, f"/ws/jobs/{job_id}?token={bearer}") as socket:
                    messages = receive_all(socket)
                assert messages[-1]["status"] == "complete"
                # A request with a token in its query, and a path no route takes.
                read = httpx.get(f"{api}/v1/jobs/{job_id}?token={bearer}", timeout=10)
                unrouted = httpx.get(f"{api}/v1/no-such-thing/{job_id}", timeout=10)
                assert unrouted.status_code == 404
                assert read.headers["x-trace-id"] != unrouted.headers["x-trace-id"] != trace_id
                # A job aborted while it runs: the worker says so inside the job's span.
                aborted_trace = _abort_while_running(api, bearer)
                spans = _wait_for_spans(
                    receiver,
                    lambda found: (
                        any(s["name"] == "job demo" for s in found)
                        and any(s["name"].startswith("WS ") for s in found)
                        and {read.headers["x-trace-id"], unrouted.headers["x-trace-id"]}
                        <= {s["trace_id"] for s in found if s["kind"] == SERVER}
                    ),
                )
        finally:
            forget_saq_queue(os.environ["REDIS_URL"], queue)

    print(_tree(spans, trace_id), flush=True)
    # The request: one span named by route template, in the trace the header names.
    post = _one(spans, service="app-api", name="POST /v1/jobs", trace_id=trace_id)
    assert post["kind"] == SERVER
    assert post["trace_id"] == trace_id
    assert post["attributes"]["http.route"] == "/v1/jobs"
    api_calls = _children(spans, post)
    assert any(s["attributes"].get("db.system") == "postgresql" for s in api_calls), api_calls
    assert any(s["attributes"].get("db.system") == "redis" for s in api_calls), api_calls

    # The worker's run: another process, the same trace, a child of the request's span.
    run = _one(spans, service="app-worker", name="job demo", trace_id=trace_id)
    assert run["kind"] == CONSUMER
    assert (run["trace_id"], run["parent_span_id"]) == (trace_id, post["span_id"])
    assert run["attributes"]["job.id"] == job_id
    steps = [s for s in _children(spans, run) if s["name"] == "job step"]
    assert sorted(s["attributes"]["job.step"] for s in steps) == list(range(1, STEPS + 1))
    for step in steps:
        under = _children(spans, step)
        statements = [s["attributes"].get("db.statement", "") for s in under]
        assert any(s.startswith("UPDATE") for s in statements), statements
        assert "PUBLISH ? ?" in statements, statements
        assert all(s["kind"] == CLIENT for s in under)
    # Claim and completion are the run's own database work.
    assert any(s["attributes"].get("db.system") == "postgresql" for s in _children(spans, run))

    # The socket: its own span, linked to the job's trace.
    socket_span = _one(spans, service="app-api", name="WS /ws/jobs/{job_id}")
    assert {"trace_id": trace_id, "span_id": post["span_id"]} in socket_span["links"]

    # Spans are named by route template, never by the raw path.
    _one(spans, name="GET /v1/jobs/{job_id}", trace_id=read.headers["x-trace-id"])
    _one(spans, name="GET", trace_id=unrouted.headers["x-trace-id"])
    assert not [s["name"] for s in spans if job_id in s["name"]]

    # Nothing secret or personal anywhere: no token, no query string, no body, no values.
    text = json.dumps([[s["attributes"], s["events"], s["status"]] for s in spans])
    for secret in (bearer, "token=", "Bearer", '"delay_ms"', "alice"):
        assert secret not in text
    statements = [s["attributes"].get("db.statement", "") for s in spans]
    assert not [s for s in statements if job_id in s], "a bound value reached a statement"
    assert not any(
        "http.client_ip" in s["attributes"] or "net.peer.ip" in s["attributes"] for s in spans
    )

    # Lines logged inside a span carry its ids: the worker's, inside the aborted job's run.
    stopped = [
        line
        for line in map(json.loads, (tmp_path / "worker.log").read_text().splitlines())
        if line.get("msg", "").endswith("stopped: its record is no longer active")
    ]
    assert [line.get("trace_id") for line in stopped] == [aborted_trace], stopped
    assert stopped[0]["span_id"]

    # Lines logged inside the request's span carry its ids (here the access line).
    access = [
        line
        for line in map(json.loads, api_log.read_text().splitlines())
        if line.get("logger") == "app.access" and line.get("method") == "POST"
    ]
    assert access, "no access line for the POST"
    assert access[0]["trace_id"] == trace_id
    assert access[0]["span_id"]
    assert access[0]["request_id"] == response.headers["x-request-id"]


# The worker's cron jobs, run as SAQ runs them (a job with no trace context in its meta).
CRON_RUN = """
import asyncio
from saq import Job
from app.worker import settings
from opentelemetry import trace

async def main():
    for cron in settings["cron_jobs"][:1]:
        try:
            await cron.function({"job": Job(cron.function.__name__, key="cron:x")})
        except Exception:
            pass  # no worker resources here: the run fails inside its span
    trace.get_tracer_provider().force_flush()

asyncio.run(main())
"""


def test_a_cron_run_starts_a_trace_of_its_own() -> None:
    with OtlpReceiver(keep=True) as receiver:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        subprocess.run(
            [sys.executable, "-c", CRON_RUN], cwd=REPO_ROOT, env=env, check=True, timeout=60
        )
        spans = _wait_for_spans(receiver, bool)
    [run] = [span for span in spans if span["name"].startswith("job purge_")]
    assert run["service"] == "app-worker"
    assert run["parent_span_id"] == ""
    assert run["kind"] == CONSUMER
    # It failed (no worker resources here): by its exception's type, never its text.
    assert run["status"] == {"code": "STATUS_CODE_ERROR", "message": "AssertionError"}
    assert run["events"] == []
