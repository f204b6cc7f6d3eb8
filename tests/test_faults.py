"""Quality gate: backing-service faults, each on services this module starts for itself.

- PostgreSQL restarted under traffic: while it is down, requests fail fast (503 within a
  couple of seconds, never a hang or a 500); once it is back, the same API process serves
  again without a restart. The traffic is every GET operation of /openapi.json that needs
  no path or required query parameter, so domain list endpoints join as they land.
- The JWKS endpoint failing or hanging: tokens signed with keys already cached keep
  working; a token with a new key id gets 401 (not 500, not a hang); the new key is
  accepted once the endpoint is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.health.service import READINESS_TTL_S
from tests.support.faults import PrivatePostgres, private_services
from tests.support.live import Operation, fetch_document, operations, running_stack

pytestmark = pytest.mark.slow

FAIL_FAST_S = 3.0  # the most any request may take while PostgreSQL is away
OUTAGE_S = 3.0
RECOVERY_DEADLINE_S = 20.0
TRAFFIC_WORKERS = 4


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[PrivatePostgres, str]]:
    # Not under pytest's tmp_path: a concurrent pytest run prunes old base folders, which
    # would delete a running server's data directory.
    with (
        tempfile.TemporaryDirectory(prefix="faults-") as state_dir,
        private_services(Path(state_dir)) as found,
    ):
        yield found


@dataclasses.dataclass(frozen=True)
class Sample:
    operation: str
    started: float
    finished: float
    status: int  # 0: no answer at all (timeout or connection error)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _probes(document: dict[str, Any]) -> list[Operation]:
    """GET operations a client can call with no ids or required query parameters."""

    def simple(op: Operation) -> bool:
        parameters = op.spec.get("parameters") or []
        return (
            op.method == "GET"
            and "{" not in op.path
            and not any(p.get("required") for p in parameters)
        )

    return [op for op in operations(document) if simple(op)]


async def _traffic(
    http: httpx.AsyncClient,
    probes: list[Operation],
    headers: dict[str, str],
    samples: list[Sample],
    stop: asyncio.Event,
    offset: int,
) -> None:
    index = offset
    while not stop.is_set():
        op = probes[index % len(probes)]
        index += 1
        started = time.monotonic()
        try:
            status = (await http.get(op.path, headers=headers)).status_code
        except httpx.HTTPError:
            status = 0
        samples.append(Sample(str(op), started, time.monotonic(), status))
        await asyncio.sleep(0.02)


async def _wait_ready(http: httpx.AsyncClient, deadline_s: float) -> float | None:
    """Seconds until /health/ready answered 200, or None if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        with_answer = await http.get("/health/ready")
        if with_answer.status_code == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    return None


def _report(samples: list[Sample], outage: tuple[float, float]) -> str:
    during = [s for s in samples if s.started >= outage[0] and s.finished <= outage[1]]
    lines = []
    for label, group in (("all", samples), ("while down", during)):
        statuses = Counter(f"{s.operation} {s.status}" for s in group)
        slowest = max((s.seconds for s in group), default=0.0)
        lines.append(f"{label}: {len(group)} requests, slowest {slowest:.2f} s, {dict(statuses)}")
    return "\n".join(lines)


async def test_postgres_restart_under_traffic_fails_fast_and_recovers(
    services: tuple[PrivatePostgres, str], token: Callable[[str], str]
) -> None:
    postgres, redis_url = services
    env = {"DATABASE_URL": postgres.url, "REDIS_URL": redis_url, "SAQ_QUEUE": "faults"}
    env["LOG_LEVEL"] = "ERROR"  # one warning per failed readiness check is only noise here
    headers = {"Authorization": f"Bearer {token('alice')}"}
    with running_stack(env) as base_url:
        probes = _probes(fetch_document(base_url))
        assert any(op.path == "/health/ready" for op in probes)
        samples: list[Sample] = []
        stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            before = [(await http.get(op.path, headers=headers)).status_code for op in probes]
            assert set(before) == {200}, f"not healthy before the fault: {before}"
            workers = [
                asyncio.create_task(_traffic(http, probes, headers, samples, stop, n))
                for n in range(TRAFFIC_WORKERS)
            ]
            try:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(postgres.stop)
                down_from = time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                down_until = time.monotonic()
                await asyncio.to_thread(postgres.start)
                recovered_after = await _wait_ready(http, RECOVERY_DEADLINE_S)
                await asyncio.sleep(1.0)
            finally:
                stop.set()
                await asyncio.gather(*workers)
            after = {
                str(op): (await http.get(op.path, headers=headers)).status_code for op in probes
            }
    print(_report(samples, (down_from, down_until)), flush=True)

    during = [s for s in samples if s.started >= down_from and s.finished <= down_until]
    assert during, "no request was made while PostgreSQL was down"
    # Readiness is cached for READINESS_TTL_S, so it may still say 200 that long after.
    ready_during = {
        s.status
        for s in during
        if s.operation == "GET /health/ready" and s.started >= down_from + READINESS_TTL_S
    }
    assert ready_during == {503}, f"/health/ready answered {ready_during} while PostgreSQL was down"
    bad = [s for s in samples if s.status not in (200, 503)]
    assert not bad, f"answers other than 200/503 around the restart: {bad[:10]}"
    slow = [s for s in samples if s.seconds > FAIL_FAST_S]
    assert not slow, f"requests slower than {FAIL_FAST_S} s around the restart: {slow[:10]}"
    assert recovered_after is not None, f"not ready {RECOVERY_DEADLINE_S} s after the restart"
    assert set(after.values()) == {200}, f"not recovered without a restart: {after}"


# --- JWKS faults ----------------------------------------------------------------------


@pytest.fixture
def private_issuer() -> Iterator[devstack.IssuerInfo]:
    with devstack.dev_issuer() as issuer:
        yield issuer


@pytest.fixture
async def jwks_app(
    services: tuple[PrivatePostgres, str], private_issuer: devstack.IssuerInfo
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    from app.config import load_settings
    from app.main import create_app

    postgres, redis_url = services
    env = {**os.environ, **private_issuer.env(), "DATABASE_URL": postgres.url}
    env["REDIS_URL"] = redis_url
    # A short refetch cooldown keeps the test quick; the behaviour is the same at 10 s.
    settings = dataclasses.replace(load_settings(env), jwks_refetch_cooldown_s=0.5)
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


async def _me(client: AsyncTestClient[Litestar], token: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response, time.monotonic() - started


async def test_jwks_outage_keeps_cached_keys_and_refuses_new_kids_with_401(
    jwks_app: AsyncTestClient[Litestar], private_issuer: devstack.IssuerInfo
) -> None:
    issuer = private_issuer
    response, _ = await _me(jwks_app, issuer.token("alice"))
    assert response.status_code == 200  # the signing key is now cached

    issuer.set_jwks_fault(503)
    fetches = issuer.jwks_requests()
    response, _ = await _me(jwks_app, issuer.token("bob"))  # new token, cached key
    assert response.status_code == 200, response.text
    assert issuer.jwks_requests() == fetches, "a cached key should not need the JWKS"

    issuer.rotate()  # the app cannot learn this key while the endpoint fails
    new_kid_token = issuer.token("carol")
    response, seconds = await _me(jwks_app, new_kid_token)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status_code"] == 401
    assert seconds < FAIL_FAST_S

    # A JWKS endpoint that hangs: the fetch gives up (3 s timeout), the answer is still 401.
    issuer.set_jwks_fault(None, delay_ms=8_000)
    await asyncio.sleep(0.6)  # past the refetch cooldown, so this token triggers a fetch
    response, seconds = await _me(jwks_app, new_kid_token)
    assert response.status_code == 401, response.text
    assert seconds < 5.0, f"a hanging JWKS held the request for {seconds:.1f} s"

    issuer.set_jwks_fault(None)
    await asyncio.sleep(0.6)
    response, _ = await _me(jwks_app, new_kid_token)
    assert response.status_code == 200, "the new key should be accepted once the JWKS is back"
    response, _ = await _me(jwks_app, issuer.token("bob"))
    assert response.status_code == 200


async def test_unknown_kid_is_401_not_500(
    jwks_app: AsyncTestClient[Litestar], private_issuer: devstack.IssuerInfo
) -> None:
    forged = private_issuer.mint(username="alice", headers={"kid": "no-such-key"})
    response, seconds = await _me(jwks_app, forged)
    assert response.status_code == 401, response.text
    assert seconds < FAIL_FAST_S


def test_fault_services_are_private(services: tuple[PrivatePostgres, str]) -> None:
    postgres, redis_url = services
    assert "5432" not in postgres.url
    assert ":6379" not in redis_url
    assert Path(postgres.pgdata).is_dir()
