"""Logs and metrics never hold a child's name, birthday or interests: a child with
distinctive values goes through every operation, export and erase included, on a real
API (uvicorn as the image runs it) and a real SAQ worker, both at DEBUG; then all their
output and a metrics scrape are searched for those values."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest

from tests.jobs.conftest import FAST_SWEEP_ENV, open_socket, receive_all
from tests.support.api_process import image_like_api
from tests.support.processes import forget_saq_queue, running_worker

NAME = "Zephyrine Quillbottom-Vasquez"
BIRTHDAY = "2017-11-23"
INTERESTS = ["xylophonic-ferrets", "moonbeam-origami"]
METRICS_TOKEN = "metrics-" + uuid.uuid4().hex
# What must appear nowhere, in the forms a log line could take.
SECRETS = [NAME, NAME.split()[0], "Quillbottom", *INTERESTS, BIRTHDAY, "2017, 11, 23", "20171123"]


def _wait(api: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("complete", "failed", "aborted"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[str, list[Path]]]:
    """An API and a worker of their own (own queue), every line of their output kept."""
    queue = f"no-child-data-{uuid.uuid4().hex[:12]}"
    env = {"SAQ_QUEUE": queue, "LOG_LEVEL": "DEBUG", "METRICS_TOKEN": METRICS_TOKEN}
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with (
        running_worker({**env, **FAST_SWEEP_ENV}, log_path=worker_log),
        image_like_api(api_log, env) as api,
    ):
        yield api.base_url, [api_log, worker_log]
    forget_saq_queue(os.environ["REDIS_URL"], queue)


def test_no_child_data_in_any_output(
    processes: tuple[str, list[Path]], issuer: devstack.IssuerInfo
) -> None:
    base_url, logs = processes
    username = f"parent-{uuid.uuid4().hex[:12]}"
    token = issuer.mint(username=username)
    headers = {"Authorization": f"Bearer {token}"}
    child = {"id": "kid-zq", "name": NAME, "birthday": BIRTHDAY, "interests": INTERESTS}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as api:
        sub = api.get("/v1/me").json()["sub"]
        assert api.post("/v1/children", json=child).status_code == 201
        replaced = api.post("/v1/children", json={**child, "interests": INTERESTS[:1]})
        assert replaced.status_code == 200
        assert api.post("/v1/children", json={**child, "id": "kid-2"}).status_code == 201
        assert api.delete("/v1/children/kid-2").status_code == 204
        # Refused bodies too: a future birthday, a name too long, unknown fields.
        bad = {**child, "birthday": "2999-01-01", "name": NAME * 10, "nickname": NAME}
        assert api.post("/v1/children", json=bad).status_code == 400
        assert api.get("/v1/children").json()[0]["name"] == NAME
        assert api.get("/v1/children/kid-zq").status_code == 200
        for path in (
            "/v1/affirmations",
            "/v1/subjects",
            "/v1/flashcards",
            "/v1/chores/daily",
            "/v1/outdoor/activities",
        ):
            assert api.get(path, params={"childId": "kid-zq"}).status_code == 200, path
        export = api.post("/v1/jobs", json={"kind": "export", "params": {}}).json()
        with open_socket(base_url, f"/ws/jobs/{export['job_id']}?token={token}") as socket:
            receive_all(socket)
        exported = _wait(api, export["job_id"])
        assert exported["result"]["children"][0]["name"] == NAME  # the export has it all
        erase = api.post("/v1/me/erase", json={"confirm": sub}).json()
        assert _wait(api, erase["job_id"])["result"]["counts"]["children"] == 1
        assert api.get("/v1/children").json() == []
        scrape = httpx.get(
            f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert scrape.status_code == 200
    time.sleep(0.5)  # the log writer thread flushes

    outputs = {path.name: path.read_text(encoding="utf-8", errors="replace") for path in logs}
    outputs["metrics"] = scrape.text
    # Both outputs were captured: the API's access lines, the worker's one erase line.
    assert "/v1/children/kid-zq" in outputs["api.log"]
    assert "erased a caller's data: children=1" in outputs["worker.log"]
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), f"{secret!r} in {where}"
