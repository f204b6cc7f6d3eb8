"""The API behind a real PgBouncer in transaction pooling mode, under concurrent load.

Two server connections are shared by the API's whole pool, so consecutive transactions
of one client connection land on different server connections: any prepared statement
kept beyond its transaction is missing ("prepared statement ... does not exist") or,
worse, another client's. With `DATABASE_POOLER=transaction` nothing fails; the same load
with `DATABASE_POOLER=none` shows the test can tell.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import devstack
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.pgbouncer import PgBouncer, running_pgbouncer
from tests.support.processes import REPO_ROOT, forget_saq_queue

pytestmark = pytest.mark.skipif(
    devstack.pgbouncer_binary() is None and not os.environ.get("CI"),
    reason="pgbouncer is not installed (apt-get install pgbouncer); CI installs it",
)

CONCURRENCY = 40
REQUESTS = 600


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    with running_pgbouncer(os.environ["TEST_BASE_DATABASE_URL"], pool_size=2) as running:
        yield running


def _api(
    bouncer: PgBouncer, pooler: str, log: Path, queue: str
) -> tuple[subprocess.Popen[bytes], str]:
    name = str(make_url(os.environ["TEST_DIRECT_DATABASE_URL"]).database)
    port = devstack.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": devstack.with_database(bouncer.url, name),
        "DATABASE_POOLER": pooler,
        "SAQ_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log"]
    with log.open("wb") as sink:
        process = devstack.spawn(command, env=env, cwd=REPO_ROOT, stderr=sink)
    base_url = f"http://127.0.0.1:{port}"
    devstack.wait_for_http(f"{base_url}/health", timeout=30, process=process)
    return process, base_url


async def _load(base_url: str, tokens: dict[str, str]) -> Counter[int]:
    headers = {user: {"Authorization": f"Bearer {token}"} for user, token in tokens.items()}
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        children: dict[str, str] = {}
        for user in tokens:
            created = await client.post(
                "/v1/children",
                json={"name": f"Kid of {user}", "birthday": "2017-05-01", "interests": ["art"]},
                headers=headers[user],
            )
            assert created.status_code == 201, created.text
            children[user] = created.json()["id"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(REQUESTS):
            queue.put_nowait(number)

        async def one(number: int) -> int:
            user = list(tokens)[number % len(tokens)]
            child = children[user]
            kind = number % 7
            if kind == 0:
                response = await client.get("/v1/children", headers=headers[user])
            elif kind == 1:
                response = await client.get(f"/v1/children/{child}", headers=headers[user])
            elif kind == 2:
                response = await client.get(
                    f"/v1/affirmations?childId={child}", headers=headers[user]
                )
            elif kind == 3:
                response = await client.get("/v1/projects?limit=20", headers=headers[user])
            elif kind == 4:
                response = await client.post(
                    "/v1/projects", json={"name": f"P{number}"}, headers=headers[user]
                )
            elif kind == 5:
                response = await client.post(
                    "/v1/jobs",
                    json={"kind": "demo", "params": {"steps": 1, "delay_ms": 0}},
                    headers=headers[user],
                )
            else:
                response = await client.get("/v1/me", headers=headers[user])
            return response.status_code

        async def worker() -> None:
            while not queue.empty():
                statuses[await one(queue.get_nowait())] += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses


def _run(
    bouncer: PgBouncer, pooler: str, issuer: devstack.IssuerInfo, tmp_path: Path
) -> tuple[Counter[int], str]:
    log = tmp_path / f"api-{pooler}.log"
    queue = f"idle-{uuid.uuid4().hex[:12]}"
    process, base_url = _api(bouncer, pooler, log, queue)
    try:
        users = ("alice", "bob", "carol", "dave")
        tokens = {user: issuer.mint(username=user) for user in users}
        statuses = asyncio.run(_load(base_url, tokens))
    finally:
        devstack.stop_process(process, "api", timeout=10)
        forget_saq_queue(os.environ["REDIS_URL"], queue)
    return statuses, log.read_text(errors="replace")


def test_transaction_pooling_serves_concurrent_load_without_statement_errors(
    bouncer: PgBouncer, issuer: devstack.IssuerInfo, tmp_path: Path
) -> None:
    statuses, log = _run(bouncer, "transaction", issuer, tmp_path)
    assert sum(statuses.values()) == REQUESTS
    assert set(statuses) <= {200, 201, 202}, (statuses, log[-3000:])
    assert "prepared statement" not in log, log[-3000:]
    assert "prepared statement" not in bouncer.log()


def test_without_the_setting_the_same_load_fails_behind_pgbouncer(
    issuer: devstack.IssuerInfo, tmp_path: Path
) -> None:
    # The control: proof that the load above does exercise what the setting fixes. This
    # PgBouncer lets `jit` through, so only the prepared statements can go wrong.
    with running_pgbouncer(
        os.environ["TEST_BASE_DATABASE_URL"], pool_size=2, ignore_startup_parameters="jit"
    ) as lenient:
        statuses, log = _run(lenient, "none", issuer, tmp_path)
    failures = sum(count for status, count in statuses.items() if status >= 500)
    assert failures > 0, statuses
    assert "prepared statement" in log
