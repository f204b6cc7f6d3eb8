"""`/ws/jobs/{job_id}` on a real uvicorn process, fed by a real worker through Redis."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import devstack
import httpx
import psutil
import pytest
import redis
from litestar import Litestar
from litestar.testing import TestClient

from tests.jobs.conftest import (
    close_code,
    finished,
    open_socket,
    receive_all,
    start_job,
    wait_for_job,
)
from tests.support.processes import WorkerProcess

Auth = Callable[[str], dict[str, str]]
Token = Callable[[str], str]
MESSAGE_KEYS = {"job_id", "status", "progress", "step", "total_steps", "payload"}


def _assert_no_gaps(messages: list[dict[str, Any]], job_id: str, total: int) -> None:
    """Shape, order, and every step after the first message, ending in `complete`."""
    for message in messages:
        assert set(message) == MESSAGE_KEYS
        assert message["job_id"] == job_id
        assert message["total_steps"] == total
        assert isinstance(message["payload"]["message"], str)
    active_steps = [m["step"] for m in messages if m["status"] == "active"]
    assert active_steps == list(range(active_steps[0], total + 1)) if active_steps else True
    assert messages[-1]["status"] == "complete"
    assert (messages[-1]["progress"], messages[-1]["step"]) == (100, total)
    statuses = [m["status"] for m in messages]
    assert "complete" not in statuses[:-1]


def _numsub(channel: str) -> int:
    shared = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        counts: list[tuple[bytes, int]] = shared.pubsub_numsub(channel)  # type: ignore[assignment]
        return int(dict(counts)[channel.encode()])
    finally:
        shared.close()


def _wait_numsub(channel: str, expected: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while _numsub(channel) != expected:
        assert time.monotonic() < deadline, f"{channel} kept {_numsub(channel)} subscribers"
        time.sleep(0.02)


def test_second_api_streams_progress_of_a_job_started_on_the_first(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    job_id = start_job(client, auth("alice"), steps=5, delay_ms=150)["job_id"]
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('alice')}") as socket:
        messages = receive_all(socket)
        assert socket.close_code == 1000
    # Both processes read the same state: it lives in the database, not in either API.
    elsewhere = httpx.get(f"{api_process}/v1/jobs/{job_id}", headers=auth("alice"))
    assert elsewhere.json() == client.get(f"/v1/jobs/{job_id}", headers=auth("alice")).json()
    assert messages[0]["status"] in {"queued", "active"}
    _assert_no_gaps(messages, job_id, 5)
    # Every update after the first message arrived (it connected before step 1 ended).
    assert [m["step"] for m in messages if m["status"] == "active"][-5:] == [1, 2, 3, 4, 5]


def test_late_join_gets_the_current_state_then_the_rest(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    headers = auth("bob")
    job_id = start_job(client, headers, steps=8, delay_ms=150)["job_id"]
    wait_for_job(client, headers, job_id, lambda job: job["step"] >= 3)
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('bob')}") as socket:
        messages = receive_all(socket)
        assert socket.close_code == 1000
    first = messages[0]
    assert first["status"] == "active"
    assert first["step"] >= 3
    assert first["progress"] == first["step"] * 100 // 8
    _assert_no_gaps(messages, job_id, 8)


def test_joining_a_finished_job_gets_its_final_state_and_1000(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=2, delay_ms=0)["job_id"]
    wait_for_job(client, headers, job_id, finished)
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('alice')}") as socket:
        messages = receive_all(socket)
        assert socket.close_code == 1000
    assert len(messages) == 1
    assert messages[0]["status"] == "complete"
    assert messages[0]["payload"] == {"message": "Counted 2 steps"}


def test_many_sockets_share_one_subscription_and_release_it(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    job_id = start_job(client, auth("alice"), steps=4, delay_ms=200)["job_id"]
    channel = f"job_progress:{job_id}"
    path = f"/ws/jobs/{job_id}?token={token('alice')}"
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(open_socket(api_process, path)) for _ in range(5)]
        for socket in sockets:
            socket.recv(timeout=10)  # the current state: the subscription exists
        assert _numsub(channel) == 1
        assert _redis_connections_of(api_process) <= 3
        results = [receive_all(socket) for socket in sockets]
    finals = {result[-1]["status"] for result in results}
    assert finals == {"complete"}
    _wait_numsub(channel, 0)


def test_a_client_that_leaves_mid_stream_releases_the_subscription(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=20, delay_ms=200)["job_id"]
    channel = f"job_progress:{job_id}"
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('alice')}") as socket:
        socket.recv(timeout=10)
        assert _numsub(channel) == 1
    _wait_numsub(channel, 0)
    assert client.delete(f"/v1/jobs/{job_id}", headers=headers).status_code == 202


def test_abort_reaches_listeners_and_closes_their_sockets(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    headers = auth("carol")
    job_id = start_job(client, headers, steps=50, delay_ms=100)["job_id"]
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('carol')}") as socket:
        socket.recv(timeout=10)
        wait_for_job(client, headers, job_id, lambda job: job["step"] >= 1)
        assert client.delete(f"/v1/jobs/{job_id}", headers=headers).status_code == 202
        rest = receive_all(socket)
        assert socket.close_code == 1000
    assert rest[-1]["status"] == "aborted"
    assert rest[-1]["payload"] == {"message": "Aborted by the caller"}


def test_a_failed_job_ends_the_stream_with_a_safe_error(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    token: Token,
    worker: WorkerProcess,
) -> None:
    headers = auth("alice")
    job_id = start_job(client, headers, steps=4, delay_ms=100, fail_at_step=3)["job_id"]
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('alice')}") as socket:
        messages = receive_all(socket)
        assert socket.close_code == 1000
    assert messages[-1]["status"] == "failed"
    assert messages[-1]["payload"] == {"message": "The job failed unexpectedly"}


@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-jwt", "?token=EXPIRED"])
def test_a_bad_or_missing_token_closes_4401(
    client: TestClient[Litestar],
    api_process: str,
    auth: Auth,
    issuer: devstack.IssuerInfo,
    query: str,
) -> None:
    job_id = start_job(client, auth("alice"), steps=1, delay_ms=0)["job_id"]
    if query.endswith("EXPIRED"):
        query = "?token=" + issuer.mint(username="alice", ttl=-3600)
    with open_socket(api_process, f"/ws/jobs/{job_id}{query}") as socket:
        assert close_code(socket) == 4401


@pytest.mark.parametrize("which", ["unknown", "malformed", "foreign"])
def test_an_unknown_or_foreign_job_closes_4404(
    client: TestClient[Litestar], api_process: str, auth: Auth, token: Token, which: str
) -> None:
    job_id = {
        "unknown": str(uuid.uuid4()),
        "malformed": "not-a-job",
        "foreign": start_job(client, auth("bob"), steps=1, delay_ms=0)["job_id"],
    }[which]
    with open_socket(api_process, f"/ws/jobs/{job_id}?token={token('alice')}") as socket:
        assert close_code(socket) == 4404
    if which != "malformed":
        _wait_numsub(f"job_progress:{job_id}", 0)


def test_echo_sends_text_back(api_process: str, token: Token) -> None:
    with open_socket(api_process, f"/ws/echo?token={token('alice')}") as socket:
        for text in ("hello", "", "ünïcode ✓", "x" * 10_000):
            socket.send(text)
            assert socket.recv(timeout=5) == text


@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-token"])
def test_echo_needs_a_token_like_every_socket(api_process: str, query: str) -> None:
    with open_socket(api_process, f"/ws/echo{query}") as socket:
        assert close_code(socket) == 4401


def _redis_connections_of(base_url: str) -> int:
    """TCP connections from the API process serving `base_url` to the shared Redis."""
    port = int(base_url.rsplit(":", 1)[1])
    redis_port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    for process in psutil.process_iter():
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if any(c.laddr and c.laddr.port == port and c.status == "LISTEN" for c in connections):
            return sum(1 for c in connections if c.raddr and c.raddr.port == redis_port)
    raise AssertionError(f"no process listens on {port}")
