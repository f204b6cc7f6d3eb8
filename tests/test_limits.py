"""Per-caller limits: counted in Redis across processes, 429 + Retry-After, and never a
refusal for lack of a counter."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import devstack
import httpx
from litestar import Litestar
from litestar.testing import TestClient

from app.config import load_settings
from app.main import create_app
from tests.support.processes import forget_saq_queue, private_redis, running_api

DEMO_JOB = {"kind": "demo", "params": {"steps": 1, "delay_ms": 0}}


def fresh_prefix() -> str:
    """Keys of this test only (the session's prefix, then a random part)."""
    return f"{os.environ['LIMITS_KEY_PREFIX']}{uuid.uuid4().hex[:8]}:"


def away_from_the_window_edge() -> None:
    """Counts are per clock minute: start where the minute will not roll over mid-test."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.2)


@contextlib.contextmanager
def app_with(env: Mapping[str, str]) -> Iterator[TestClient[Litestar]]:
    # A queue of its own: no worker of another test runs (and so closes) these jobs.
    queue = f"{os.environ['SAQ_QUEUE']}-limits-{uuid.uuid4().hex[:8]}"
    base = {"LIMITS_KEY_PREFIX": fresh_prefix(), "SAQ_QUEUE": queue}
    settings = load_settings({**os.environ, **base, **env})
    try:
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        if settings.redis_url == os.environ["REDIS_URL"]:  # a private one is gone already
            forget_saq_queue(settings.redis_url, queue)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_caller(issuer: devstack.IssuerInfo) -> dict[str, str]:
    """A caller no other test has used (its own `sub`)."""
    return bearer(issuer.mint(username="dave", claims={"sub": f"limits-{uuid.uuid4()}"}))


def assert_too_many(response: httpx.Response, window_s: int = 60) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= window_s
    body = response.json()
    assert body["status_code"] == 429
    assert "Too many" in body["detail"]
    assert response.headers["x-request-id"]


def test_a_caller_over_the_limit_gets_429_and_no_one_else_does(
    issuer: devstack.IssuerInfo,
) -> None:
    away_from_the_window_edge()
    busy, other = new_caller(issuer), new_caller(issuer)
    with app_with({"RATE_LIMIT_PER_MINUTE": "5"}) as client:
        assert [client.get("/v1/me", headers=busy).status_code for _ in range(5)] == [200] * 5
        assert_too_many(client.get("/v1/me", headers=busy))
        assert_too_many(client.get("/v1/children", headers=busy))
        # Another caller, and public routes, are untouched; the busy one still is refused.
        started = time.perf_counter()
        assert client.get("/v1/me", headers=other).status_code == 200
        assert time.perf_counter() - started < 1
        assert client.get("/health").status_code == 200
        assert client.get("/v1/me", headers=busy).status_code == 429


def test_zero_turns_the_request_limit_off(issuer: devstack.IssuerInfo) -> None:
    caller = new_caller(issuer)
    with app_with({"RATE_LIMIT_PER_MINUTE": "0"}) as client:
        assert {client.get("/v1/me", headers=caller).status_code for _ in range(30)} == {200}


def test_two_api_processes_share_one_count(issuer: devstack.IssuerInfo) -> None:
    env = {"RATE_LIMIT_PER_MINUTE": "10", "LIMITS_KEY_PREFIX": fresh_prefix()}
    caller = new_caller(issuer)
    with running_api(env) as first_url, running_api(env) as second_url:
        away_from_the_window_edge()
        with httpx.Client(base_url=first_url) as first, httpx.Client(base_url=second_url) as second:
            statuses = [first.get("/v1/me", headers=caller).status_code for _ in range(6)]
            assert statuses == [200] * 6
            time.sleep(0.6)  # the first process's counts reach Redis within 0.25 s
            # The second process learns the 6 on this caller's first request there.
            statuses = [second.get("/v1/me", headers=caller).status_code for _ in range(5)]
            assert statuses == [200] * 4 + [429]
            assert_too_many(second.get("/v1/me", headers=caller))
            # The first process hears of the second's requests with its next exchange
            # with Redis: at most one more request passes there.
            passed = first.get("/v1/me", headers=caller).status_code == 200
            time.sleep(0.6)
            assert_too_many(first.get("/v1/me", headers=caller))
            assert 6 + 4 + passed <= 11


def test_with_redis_down_requests_are_not_refused(
    issuer: devstack.IssuerInfo, tmp_path: Path
) -> None:
    caller = new_caller(issuer)
    with private_redis(tmp_path) as redis_server:
        env = {"REDIS_URL": redis_server.url, "RATE_LIMIT_PER_MINUTE": "1000"}
        with app_with(env) as client:
            assert client.get("/v1/me", headers=caller).status_code == 200
            redis_server.stop()
            started = time.perf_counter()
            statuses = {client.get("/v1/me", headers=new_caller(issuer)).status_code}
            statuses |= {client.get("/v1/me", headers=caller).status_code for _ in range(20)}
            assert statuses == {200}
            # No request waits on the missing Redis for long.
            assert time.perf_counter() - started < 5


def test_job_creation_limit(issuer: devstack.IssuerInfo) -> None:
    away_from_the_window_edge()
    busy, other = new_caller(issuer), new_caller(issuer)
    env = {"JOB_LIMIT_PER_MINUTE": "2", "MAX_OPEN_JOBS_PER_USER": "0"}
    with app_with(env) as client:
        for _ in range(2):
            assert client.post("/v1/jobs", json=DEMO_JOB, headers=busy).status_code == 202
        assert_too_many(client.post("/v1/jobs", json=DEMO_JOB, headers=busy))
        assert_too_many(client.post("/jobs", json=DEMO_JOB, headers=busy))  # legacy alias
        assert client.post("/v1/jobs", json=DEMO_JOB, headers=other).status_code == 202
        # Reading jobs is not creating them.
        assert client.get("/v1/jobs", headers=busy).status_code == 200


def test_open_jobs_cap(issuer: devstack.IssuerInfo) -> None:
    caller = new_caller(issuer)
    env = {"JOB_LIMIT_PER_MINUTE": "0", "MAX_OPEN_JOBS_PER_USER": "2"}
    with app_with(env) as client:
        # No worker runs in this test: the jobs stay queued, hence open.
        first = client.post("/v1/jobs", json=DEMO_JOB, headers=caller)
        assert first.status_code == 202
        assert client.post("/v1/jobs", json=DEMO_JOB, headers=caller).status_code == 202
        refused = client.post("/v1/jobs", json=DEMO_JOB, headers=caller)
        assert_too_many(refused)
        assert "open jobs" in refused.json()["detail"]
        # An aborted job is no longer open: room for one more.
        job_id = first.json()["job_id"]
        assert client.delete(f"/v1/jobs/{job_id}", headers=caller).status_code == 202
        assert client.post("/v1/jobs", json=DEMO_JOB, headers=caller).status_code == 202


def test_open_jobs_cap_holds_for_requests_at_the_same_moment(
    issuer: devstack.IssuerInfo,
) -> None:
    """Requests of one caller racing through two API processes: no more than the cap are
    let in (each counts and inserts under the caller's lock), and no one else waits."""
    caller, other = new_caller(issuer), new_caller(issuer)
    queue = f"{os.environ['SAQ_QUEUE']}-race-{uuid.uuid4().hex[:8]}"  # no worker: jobs stay open
    env = {"JOB_LIMIT_PER_MINUTE": "0", "MAX_OPEN_JOBS_PER_USER": "3", "SAQ_QUEUE": queue}

    async def race(urls: tuple[str, str]) -> tuple[list[int], int]:
        async with httpx.AsyncClient(timeout=30) as http:
            posts = [
                http.post(f"{urls[number % 2]}/v1/jobs", json=DEMO_JOB, headers=caller)
                for number in range(16)
            ]
            responses = await asyncio.gather(*posts)
            elsewhere = await http.post(f"{urls[0]}/v1/jobs", json=DEMO_JOB, headers=other)
        for response in responses:
            if response.status_code != 202:
                assert_too_many(response)
        return [response.status_code for response in responses], elsewhere.status_code

    try:
        with running_api(env) as first_url, running_api(env) as second_url:
            statuses, elsewhere = asyncio.run(race((first_url, second_url)))
    finally:
        forget_saq_queue(os.environ["REDIS_URL"], queue)
    assert sorted(statuses) == [202] * 3 + [429] * 13
    assert elsewhere == 202


def test_429_is_documented_where_limits_apply(client: TestClient[Litestar]) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [("/v1/me", "get"), ("/v1/children", "get"), ("/v1/jobs", "post")]:
        response = paths[path][method]["responses"]["429"]
        assert "Retry-After" in response["headers"], path
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "429" not in paths["/health"]["get"]["responses"]
