"""Jobs over HTTP with a real SAQ worker: create, read, list, abort, validation, scoping."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.jobs.conftest import finished, start_job, wait_for_job
from tests.support.processes import WorkerProcess, running_worker

Auth = Callable[[str], dict[str, str]]
JOB_KEYS = {
    "job_id",
    "kind",
    "status",
    "progress",
    "step",
    "total_steps",
    "result",
    "error",
    "created_at",
    "updated_at",
}


@contextlib.contextmanager
def _shared_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        yield client
    finally:
        client.close()


def _saq_job(queue: str, job_id: str) -> dict[str, Any]:
    with _shared_redis() as shared:
        stored = shared.get(f"saq:job:{queue}:{job_id}")
    assert isinstance(stored, bytes)
    job: dict[str, Any] = json.loads(stored)
    return job


def test_demo_job_runs_end_to_end(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    created = start_job(client, auth("alice"), steps=4, delay_ms=20)
    assert set(created) == JOB_KEYS
    assert created["kind"] == "demo"
    assert created["status"] == "queued"
    assert (created["progress"], created["step"], created["total_steps"]) == (0, 0, 4)
    uuid.UUID(created["job_id"])

    done = wait_for_job(client, auth("alice"), created["job_id"], finished)
    assert done["status"] == "complete"
    assert (done["progress"], done["step"], done["total_steps"]) == (100, 4, 4)
    assert done["result"] == {"kind": "demo", "steps": 4, "message": "Counted 4 steps"}
    assert done["error"] is None
    assert done["created_at"] == created["created_at"]
    assert done["updated_at"] > created["updated_at"]


def test_legacy_paths_answer_like_v1(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    response = client.post(
        "/jobs", json={"kind": "demo", "params": {"steps": 1, "delay_ms": 0}}, headers=auth("bob")
    )
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    wait_for_job(client, auth("bob"), job_id, finished)
    legacy = client.get(f"/jobs/{job_id}", headers=auth("bob"))
    assert legacy.status_code == 200
    assert legacy.json() == client.get(f"/v1/jobs/{job_id}", headers=auth("bob")).json()
    assert client.get("/jobs", headers=auth("bob")).json()["total"] >= 1


def test_defaults_apply_when_params_are_omitted(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    response = client.post("/v1/jobs", json={"kind": "demo"}, headers=auth("alice"))
    assert response.status_code == 202
    assert response.json()["total_steps"] == 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"params": {"steps": 3}}, "kind"),
        ({"kind": "demo", "params": {"steps": 0}}, "params.steps"),
        ({"kind": "demo", "params": {"steps": 101}}, "params.steps"),
        ({"kind": "demo", "params": {"steps": "three"}}, "params.steps"),
        # Strict bodies: a number is a JSON number, not a string, a float or a boolean.
        ({"kind": "demo", "params": {"steps": "3"}}, "params.steps"),
        ({"kind": "demo", "params": {"steps": 3.0}}, "params.steps"),
        ({"kind": "demo", "params": {"steps": True}}, "params.steps"),
        ({"kind": "demo", "params": {"delay_ms": "0"}}, "params.delay_ms"),
        ({"kind": "demo", "params": {"fail_at_step": "2"}}, "params.fail_at_step"),
        ({"kind": "demo", "params": {"delay_ms": -1}}, "params.delay_ms"),
        ({"kind": "demo", "params": {"delay_ms": 10_001}}, "params.delay_ms"),
        ({"kind": "demo", "params": {"speed": 3}}, "params.speed"),
        ({"kind": "export", "params": {"format": "csv"}}, "params.format"),
        ({"kind": "demo", "extra": 1}, "extra"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    client: TestClient[Litestar], auth: Auth, body: dict[str, object], field: str
) -> None:
    response = client.post("/v1/jobs", json=body, headers=auth("alice"))
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["status_code"] == 400
    assert [item["key"] for item in error["extra"]] == [field]
    assert field in error["detail"]


def test_unknown_kind_lists_the_known_ones(client: TestClient[Litestar], auth: Auth) -> None:
    response = client.post("/v1/jobs", json={"kind": "nope"}, headers=auth("alice"))
    assert "demo" in response.json()["extra"][0]["message"]
    assert "export" in response.json()["extra"][0]["message"]


def test_jobs_need_a_token(client: TestClient[Litestar]) -> None:
    assert client.post("/v1/jobs", json={"kind": "demo"}).status_code == 401
    assert client.get("/v1/jobs").status_code == 401


def test_someone_elses_job_is_answered_like_an_unknown_one(
    client: TestClient[Litestar], auth: Auth
) -> None:
    job_id = start_job(client, auth("alice"), steps=1, delay_ms=0)["job_id"]
    unknown = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth("bob"))
    foreign = client.get(f"/v1/jobs/{job_id}", headers=auth("bob"))
    malformed = client.get("/v1/jobs/not-a-uuid", headers=auth("bob"))
    assert foreign.status_code == unknown.status_code == malformed.status_code == 404
    assert foreign.json() == unknown.json()
    assert client.delete(f"/v1/jobs/{job_id}", headers=auth("bob")).status_code == 404
    assert job_id not in {
        j["job_id"] for j in client.get("/v1/jobs", headers=auth("bob")).json()["items"]
    }


def test_list_is_the_callers_newest_first_with_paging(
    client: TestClient[Litestar], auth: Auth
) -> None:
    headers = auth("dave")
    ids = [start_job(client, headers, steps=1, delay_ms=0)["job_id"] for _ in range(3)]
    page = client.get("/v1/jobs", params={"limit": 2}, headers=headers).json()
    assert page["total"] >= 3
    assert (page["limit"], page["offset"]) == (2, 0)
    assert [job["job_id"] for job in page["items"]] == ids[::-1][:2]
    second = client.get("/v1/jobs", params={"limit": 2, "offset": 1}, headers=headers).json()
    assert second["items"][0]["job_id"] == ids[1]
    beyond = client.get("/v1/jobs", params={"offset": 1000}, headers=headers).json()
    assert beyond["items"] == []
    assert beyond["total"] == page["total"]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "bogus"}):
        assert client.get("/v1/jobs", params=bad, headers=headers).status_code == 400


def test_list_filters_by_status(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    headers = auth("carol")
    job_id = start_job(client, headers, steps=1, delay_ms=0)["job_id"]
    wait_for_job(client, headers, job_id, finished)
    complete = client.get("/v1/jobs", params={"status": "complete"}, headers=headers).json()
    assert job_id in {job["job_id"] for job in complete["items"]}
    assert all(job["status"] == "complete" for job in complete["items"])
    failed = client.get("/v1/jobs", params={"status": "failed"}, headers=headers).json()
    assert job_id not in {job["job_id"] for job in failed["items"]}


def test_abort_stops_an_active_job(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=50, delay_ms=100)["job_id"]
    wait_for_job(client, headers, job_id, lambda job: job["step"] >= 1)

    response = client.delete(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 202
    aborted = response.json()
    assert aborted["status"] == "aborted"
    assert aborted["error"] == "Aborted by the caller"

    # The worker stops: no step is recorded after the abort, and the record stays aborted.
    time.sleep(1.5)
    later = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    assert later["status"] == "aborted"
    assert later["step"] == aborted["step"]
    again = client.delete(f"/v1/jobs/{job_id}", headers=headers)
    assert again.status_code == 409


def test_abort_of_a_finished_job_is_409(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=1, delay_ms=0)["job_id"]
    wait_for_job(client, headers, job_id, finished)
    response = client.delete(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 409
    assert response.json()["detail"] == "The job has already finished"


def test_abort_of_a_queued_job_takes_it_off_the_queue(
    idle_client: TestClient[Litestar], auth: Auth
) -> None:
    headers = auth("alice")
    job_id = start_job(idle_client, headers, steps=1, delay_ms=0)["job_id"]
    queue = idle_client.app.state["job_settings"].saq_queue
    assert _saq_job(queue, job_id)["status"] == "queued"

    response = idle_client.delete(f"/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "aborted"
    assert _saq_job(queue, job_id)["status"] == "aborted"
    with _shared_redis() as shared:
        assert shared.llen(f"saq:{queue}:queued") == 0


def test_a_crashing_job_fails_with_a_safe_error(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=5, delay_ms=0, fail_at_step=3)["job_id"]
    job = wait_for_job(client, headers, job_id, finished)
    assert job["status"] == "failed"
    assert job["error"] == "The job failed unexpectedly"
    assert job["step"] == 2  # steps 1 and 2 were reported before the crash
    assert job["result"] is None


def test_export_collects_the_callers_children_and_visible_projects(
    client: TestClient[Litestar], auth: Auth, worker: WorkerProcess
) -> None:
    tag = uuid.uuid4().hex[:8]

    def create(path: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers=auth(user))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    bobs_child = create("/v1/children", "bob", {"name": f"Kid {tag}", "birthday": "2018-05-01"})
    alices_child = create(
        "/v1/children", "alice", {"name": f"Other {tag}", "birthday": "2017-01-01"}
    )
    acme = create("/v1/projects", "alice", {"name": f"acme {tag}"})  # bob's tenant too
    globex = create("/v1/projects", "carol", {"name": f"globex {tag}"})
    daves = create("/v1/projects", "dave", {"name": f"dave {tag}"})
    deleted = create("/v1/projects", "bob", {"name": f"gone {tag}"})
    assert client.delete(f"/v1/projects/{deleted['id']}", headers=auth("bob")).status_code == 204

    job_id = start_job(client, auth("bob"), kind="export")["job_id"]
    job = wait_for_job(client, auth("bob"), job_id, finished)
    assert job["status"] == "complete", job
    assert job["total_steps"] == job["step"] == 2
    result = job["result"]
    assert result["kind"] == "export"
    child_ids = {child["id"] for child in result["children"]}
    project_ids = {project["id"] for project in result["projects"]}
    assert bobs_child["id"] in child_ids
    assert alices_child["id"] not in child_ids
    assert acme["id"] in project_ids
    assert not {globex["id"], daves["id"], deleted["id"]} & project_ids
    # Each item is exactly what the children/projects endpoints answer.
    exported_child = next(c for c in result["children"] if c["id"] == bobs_child["id"])
    assert exported_child == bobs_child
    exported_project = next(p for p in result["projects"] if p["id"] == acme["id"])
    assert exported_project == client.get(f"/v1/projects/{acme['id']}", headers=auth("bob")).json()

    # Without a tenant claim, only the caller's own untenanted projects.
    dave_job = start_job(client, auth("dave"), kind="export")["job_id"]
    dave_result = wait_for_job(client, auth("dave"), dave_job, finished)["result"]
    dave_projects = {project["id"] for project in dave_result["projects"]}
    assert daves["id"] in dave_projects
    assert acme["id"] not in dave_projects


async def test_the_record_keeps_the_owner_and_params(
    client: TestClient[Litestar], auth: Auth, db: asyncpg.Connection
) -> None:
    job_id = start_job(client, auth("carol"), steps=2, delay_ms=5)["job_id"]
    row = await db.fetchrow(
        "SELECT owner_sub, kind, params FROM jobs WHERE id = $1", uuid.UUID(job_id)
    )
    me = client.get("/v1/me", headers=auth("carol")).json()
    assert row is not None
    assert row["owner_sub"] == me["sub"]
    assert row["kind"] == "demo"
    assert '"steps": 2' in row["params"]


def test_saq_keeps_its_copy_with_limits_per_kind(
    idle_client: TestClient[Litestar], auth: Auth
) -> None:
    """The SAQ job carries a time limit, heartbeat and attempts: never SAQ's 10 s / 0."""
    job_id = start_job(idle_client, auth("alice"), steps=20, delay_ms=1000)["job_id"]
    export_id = start_job(idle_client, auth("alice"), kind="export")["job_id"]
    queue = idle_client.app.state["job_settings"].saq_queue
    demo, export = _saq_job(queue, job_id), _saq_job(queue, export_id)
    assert demo["function"] == "demo"
    assert demo["timeout"] == 20 + 30
    assert demo["heartbeat"] == 30
    assert demo.get("retries", 1) == 1
    assert export["function"] == "export"
    assert export["retries"] == 2


def test_litestar_workers_run_is_an_alias_of_the_saq_worker(
    idle_client: TestClient[Litestar], auth: Auth
) -> None:
    """`litestar workers run` starts the same worker (here on the otherwise idle queue)."""
    queue = idle_client.app.state["job_settings"].saq_queue
    command = ("-m", "litestar", "--app", "app.main:app", "workers", "run")
    with running_worker({"SAQ_QUEUE": queue}, command=command):
        job_id = start_job(idle_client, auth("alice"), steps=2, delay_ms=0)["job_id"]
        job = wait_for_job(idle_client, auth("alice"), job_id, finished)
    assert job["status"] == "complete"


def test_the_api_starts_and_stops_without_saq_worker_machinery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SAQPlugin's per-worker app hooks (a heartbeat thread) are not run by the API."""
    from app.config import load_settings
    from app.main import create_app

    app = create_app(load_settings())
    with caplog.at_level("DEBUG"), TestClient(app) as test_client:
        assert test_client.get("/health").status_code == 200
        assert not any("heartbeat" in thread.name for thread in threading.enumerate())
    assert [record for record in caplog.records if record.levelname == "ERROR"] == []
