"""A parent's data under the parent's control ("Your data" in the README), with a real
SAQ worker: the export holds everything kept about the caller, `POST /v1/me/erase`
removes it (and nothing of anyone else's), and child creation cannot race an erasure."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import threading
import time
import uuid
from typing import Any

import asyncpg
import devstack
import redis
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.children.schemas import ChildUpsert
from app.children.service import ChildService
from app.db.personal import owner_data_lock
from app.jobs.personal import ERASED_MESSAGE
from tests.jobs.conftest import finished, open_socket, receive_all, start_job, wait_for_job
from tests.support.family import Headers, new_parent
from tests.support.processes import WorkerProcess

TODAY = dt.date.today()


def _child(
    client: TestClient[Litestar], headers: Headers, child_id: str, name: str
) -> dict[str, Any]:
    body = {"id": child_id, "name": name, "birthday": "2019-03-04", "interests": ["owls"]}
    response = client.post("/v1/children", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    child: dict[str, Any] = response.json()
    return child


def _project(client: TestClient[Litestar], headers: Headers, name: str) -> dict[str, Any]:
    response = client.post("/v1/projects", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def _sub(client: TestClient[Litestar], headers: Headers) -> str:
    sub: str = client.get("/v1/me", headers=headers).json()["sub"]
    return sub


def _run(client: TestClient[Litestar], headers: Headers, kind: str) -> dict[str, Any]:
    """Start a job (an erase through its own route) and wait for its outcome."""
    if kind == "erase":
        response = client.post(
            "/v1/me/erase", json={"confirm": _sub(client, headers)}, headers=headers
        )
        assert response.status_code == 202, response.text
        job: dict[str, Any] = response.json()
        assert job["kind"] == "erase"
    else:
        job = start_job(client, headers, kind)
    done = wait_for_job(client, headers, job["job_id"], finished)
    assert done["status"] == "complete", done
    return done


def _tenant_parent(issuer: devstack.IssuerInfo, tenant_id: str) -> tuple[Headers, Headers]:
    """A parent in a tenant, and a colleague of theirs in the same tenant."""
    headers = []
    for _ in range(2):
        token = issuer.mint(
            username=f"parent-{uuid.uuid4().hex[:12]}", claims={"tenant_id": tenant_id}
        )
        headers.append({"Authorization": f"Bearer {token}"})
    return headers[0], headers[1]


def test_export_holds_everything_kept_about_the_caller(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, worker: WorkerProcess
) -> None:
    parent, other = new_parent(issuer), new_parent(issuer)
    _child(client, parent, "kid-1", "Ada")
    _child(client, other, "kid-1", "Someone else")
    kept = _project(client, parent, "kept")
    gone = _project(client, parent, "deleted")
    assert client.delete(f"/v1/projects/{gone['id']}", headers=parent).status_code == 204
    _project(client, other, "not mine")
    demo = start_job(client, parent, "demo", steps=1, delay_ms=0)
    wait_for_job(client, parent, demo["job_id"], finished)
    first = _run(client, parent, "export")

    document = _run(client, parent, "export")["result"]

    assert document["kind"] == "export"
    assert document["format"] == 1
    assert document["sub"] == _sub(client, parent)
    assert document["profile"] == {}  # nothing from the token is stored
    assert [(c["id"], c["name"], c["interests"]) for c in document["children"]] == [
        ("kid-1", "Ada", ["owls"])
    ]
    assert document["children"][0]["birthday"] == "2019-03-04"
    assert document["children"][0]["linked"] == {}
    projects = {project["id"]: project for project in document["projects"]}
    assert set(projects) == {kept["id"], gone["id"]}
    assert projects[gone["id"]]["is_deleted"] is True
    jobs = {job["job_id"]: job for job in document["jobs"]}
    assert set(jobs) >= {demo["job_id"], first["job_id"]}
    assert jobs[demo["job_id"]]["result"]["kind"] == "demo"
    assert jobs[demo["job_id"]]["params"] == {"steps": 1, "delay_ms": 0, "fail_at_step": None}
    assert jobs[first["job_id"]]["result"] is None  # an earlier export's copy is not repeated


def test_erase_removes_the_callers_data_and_nothing_else(
    client: TestClient[Litestar],
    issuer: devstack.IssuerInfo,
    worker: WorkerProcess,
    idle_client: TestClient[Litestar],
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    parent, colleague = _tenant_parent(issuer, tenant_id)
    personal = new_parent(issuer)  # a caller without a tenant, whose project stays
    other = new_parent(issuer)
    for headers in (parent, other):
        _child(client, headers, "kid-1", "Ada")
        _child(client, headers, "kid-2", "Ben")
    assert client.delete("/v1/children/kid-2", headers=parent).status_code == 204
    _child(client, parent, "kid-2", "Ben again")
    in_tenant = _project(client, parent, "the tenant's")
    colleagues = _project(client, colleague, "the colleague's")
    demo = start_job(client, parent, "demo", steps=1, delay_ms=0)
    wait_for_job(client, parent, demo["job_id"], finished)
    waiting = start_job(idle_client, parent, "demo")  # queued on a queue nobody serves
    _project(client, personal, "someone else's own")
    others_job = start_job(client, other, "demo", steps=1, delay_ms=0)

    for body in ({}, {"confirm": "someone-else"}, {"confirm": 1}):
        refused = client.post("/v1/me/erase", json=body, headers=parent)
        assert refused.status_code == 400, body
        assert "confirm" in refused.text
    assert client.get("/v1/children", headers=parent).json() != []

    receipt_job = _run(client, parent, "erase")
    receipt = receipt_job["result"]

    assert receipt["kind"] == "erase"
    assert uuid.UUID(receipt["receipt_id"])
    assert dt.datetime.fromisoformat(receipt["erased_at"])
    assert receipt["counts"] == {
        "children": 2,
        "jobs": 2,
        "projects": 0,
        "projects_left_with_tenant": 1,
    }
    # Every GET of the caller's finds nothing.
    assert client.get("/v1/children", headers=parent).json() == []
    assert client.get("/v1/children/kid-1", headers=parent).status_code == 404
    jobs = client.get("/v1/jobs", headers=parent).json()["items"]
    assert [job["job_id"] for job in jobs] == [receipt_job["job_id"]]  # the receipt stays
    assert client.get(f"/v1/jobs/{demo['job_id']}", headers=parent).status_code == 404
    assert client.get(f"/v1/jobs/{waiting['job_id']}", headers=parent).status_code == 404
    # SAQ's copies are gone too.
    shared = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        assert not list(shared.scan_iter(match=f"saq:job:*:{demo['job_id']}"))
        assert not list(shared.scan_iter(match=f"saq:job:*:{waiting['job_id']}"))
    finally:
        shared.close()
    # The tenant keeps its projects, the caller's one no longer naming them.
    listed = client.get("/v1/projects", headers=colleague).json()["items"]
    assert {p["id"] for p in listed} == {in_tenant["id"], colleagues["id"]}
    # Everyone else is untouched, the same child ids included.
    assert [c["name"] for c in client.get("/v1/children", headers=other).json()] == ["Ada", "Ben"]
    assert client.get(f"/v1/jobs/{others_job['job_id']}", headers=other).status_code == 200
    assert client.get("/v1/projects", headers=personal).json()["total"] == 1

    # Erasing again is fine: a receipt with zero counts. An export is empty but for the
    # receipts (and itself).
    again = _run(client, parent, "erase")["result"]
    assert again["counts"] == dict.fromkeys(receipt["counts"], 0)
    document = _run(client, parent, "export")["result"]
    assert (document["children"], document["projects"], document["other"]) == ([], [], {})
    assert [job["kind"] for job in document["jobs"]] == ["erase", "erase", "export"]


async def test_erase_leaves_a_tenants_project_without_its_creator(
    client: TestClient[Litestar],
    issuer: devstack.IssuerInfo,
    worker: WorkerProcess,
    db: asyncpg.Connection,
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    parent, _ = _tenant_parent(issuer, tenant_id)
    project = _project(client, parent, "stays")
    deleted = _project(client, parent, "deleted, stays until the purge")
    assert client.delete(f"/v1/projects/{deleted['id']}", headers=parent).status_code == 204
    personal_token = issuer.mint(
        username=f"parent-{uuid.uuid4().hex[:12]}", claims={"tenant_id": None}
    )
    personal = {"Authorization": f"Bearer {personal_token}"}
    own = _project(client, personal, "goes")
    own_deleted = _project(client, personal, "goes too")
    assert client.delete(f"/v1/projects/{own_deleted['id']}", headers=personal).status_code == 204

    assert _run(client, parent, "erase")["result"]["counts"]["projects_left_with_tenant"] == 2
    assert _run(client, personal, "erase")["result"]["counts"]["projects"] == 2

    rows = await db.fetch(
        "SELECT id, owner_sub, tenant_id FROM projects WHERE id = ANY($1::uuid[])",
        [uuid.UUID(p["id"]) for p in (project, deleted, own, own_deleted)],
    )
    assert {str(row["id"]): (row["owner_sub"], row["tenant_id"]) for row in rows} == {
        project["id"]: (None, tenant_id),
        deleted["id"]: (None, tenant_id),
    }


# --- the race: an erasure while the same parent creates a child ------------------------


async def test_an_erasure_waits_for_a_child_being_created_and_erases_it(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, worker: WorkerProcess
) -> None:
    """Child creation holds the parent's data lock to its commit: the erasure that starts
    meanwhile waits, then sees the child and erases it (never a half-made child left)."""
    parent = new_parent(issuer)
    sub = _sub(client, parent)
    engine = create_async_engine(os.environ["TEST_DIRECT_DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            session = AsyncSession(bind=connection)
            service = ChildService.for_parent(session, sub)
            body = ChildUpsert(id="kid-1", name="Ada", birthday=dt.date(2019, 3, 4))
            await service.upsert_child(body, TODAY, max_children=50)  # uncommitted: lock held

            started = await asyncio.to_thread(
                client.post, "/v1/me/erase", json={"confirm": sub}, headers=parent
            )
            job_id = started.json()["job_id"]
            await asyncio.sleep(1.5)
            held = await asyncio.to_thread(client.get, f"/v1/jobs/{job_id}", headers=parent)
            assert held.json()["status"] in ("queued", "active")  # waiting for the lock

            await session.commit()
            await session.close()
    finally:
        await engine.dispose()

    done = await asyncio.to_thread(wait_for_job, client, parent, job_id, finished)
    assert done["result"]["counts"]["children"] == 1
    assert client.get("/v1/children", headers=parent).json() == []


async def test_a_child_created_during_an_erasure_comes_after_it(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo
) -> None:
    """The other way round: while an erasure holds the lock, creating a child waits, and
    the child is created after the erasure's commit, whole."""
    parent = new_parent(issuer)
    sub = _sub(client, parent)
    engine = create_async_engine(os.environ["TEST_DIRECT_DATABASE_URL"])
    answered: list[int] = []

    def create() -> None:
        answered.append(_child_status(client, parent))

    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(owner_data_lock(sub))  # what an erasure holds
            creating = threading.Thread(target=create)
            creating.start()
            await asyncio.sleep(1.0)
            assert answered == []  # waiting for the erasure
            await transaction.commit()
            await asyncio.to_thread(creating.join, 10)
    finally:
        await engine.dispose()
    assert answered == [201]
    assert [c["id"] for c in client.get("/v1/children", headers=parent).json()] == ["kid-9"]


def _child_status(client: TestClient[Litestar], headers: Headers) -> int:
    body = {"id": "kid-9", "name": "Cy", "birthday": "2018-01-01"}
    return client.post("/v1/children", json=body, headers=headers).status_code


def test_erasures_racing_child_creation_count_exactly_what_went(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, worker: WorkerProcess
) -> None:
    """Children created while erasures run: every child is either in some receipt's
    count (erased) or still there afterwards (created after), never both or neither."""
    parent = new_parent(issuer)
    sub = _sub(client, parent)
    created: list[str] = []
    receipts: list[str] = []

    def create_children() -> None:
        for number in range(30):
            body = {"id": f"kid-{number}", "name": "Cy", "birthday": "2018-01-01"}
            if client.post("/v1/children", json=body, headers=parent).status_code == 201:
                created.append(body["id"])

    creating = threading.Thread(target=create_children)
    creating.start()
    for _ in range(3):
        response = client.post("/v1/me/erase", json={"confirm": sub}, headers=parent)
        assert response.status_code == 202
        receipts.append(response.json()["job_id"])
        time.sleep(0.05)
    creating.join(30)
    erased = sum(
        wait_for_job(client, parent, job_id, finished)["result"]["counts"]["children"]
        for job_id in receipts
    )
    remaining = client.get("/v1/children", headers=parent).json()
    assert erased + len(remaining) == len(created) == 30


def test_a_listener_to_an_erased_job_is_told_and_let_go(
    client: TestClient[Litestar],
    issuer: devstack.IssuerInfo,
    worker: WorkerProcess,
    idle_client: TestClient[Litestar],
    api_process: str,
) -> None:
    """The erased job's progress channel carries one last `aborted` message, which ends
    any socket following it (on another API process too)."""
    token = issuer.mint(username=f"parent-{uuid.uuid4().hex[:12]}")
    parent = {"Authorization": f"Bearer {token}"}
    waiting = start_job(idle_client, parent, "demo")  # queued on a queue nobody serves
    with open_socket(api_process, f"/ws/jobs/{waiting['job_id']}?token={token}") as socket:
        assert json.loads(socket.recv(timeout=10))["status"] == "queued"
        _run(client, parent, "erase")
        last = receive_all(socket)[-1]
    assert (last["status"], last["payload"]["message"]) == ("aborted", ERASED_MESSAGE)


def test_erasing_a_running_job_stops_it_and_removes_saqs_copy(
    client: TestClient[Litestar], issuer: devstack.IssuerInfo, worker: WorkerProcess
) -> None:
    parent = new_parent(issuer)
    running = start_job(client, parent, "demo", steps=100, delay_ms=200)
    wait_for_job(client, parent, running["job_id"], lambda job: job["status"] == "active")

    assert _run(client, parent, "erase")["result"]["counts"]["jobs"] == 1

    assert client.get(f"/v1/jobs/{running['job_id']}", headers=parent).status_code == 404
    shared = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        time.sleep(1.5)  # past the worker's abort poll: nothing writes the copy back
        assert not list(shared.scan_iter(match=f"saq:job:*:{running['job_id']}"))
    finally:
        shared.close()
