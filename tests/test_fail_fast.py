"""Readiness that a flood cannot fail, and fail-fast answers while PostgreSQL is frozen.

Found by probing a running stack (issue 13, items 4 and 9):
- `GET /health/ready` ran a database and a Redis check on every call and is public: 200
  anonymous connections made it answer 503 "database: timeout" on a healthy system (an
  orchestrator would pull healthy replicas) and slowed everyone else down.
- PostgreSQL frozen (SIGSTOP) for 10 s: requests hung ~10 s and then succeeded instead of
  failing fast, and /health/ready answered after 4 s although its timeout is 2 s.
- Issue 19, item 8: with PostgreSQL frozen, a data route answered 503 after 5.0 s (the
  3 s statement timeout, then 2 s of SQLAlchemy trying to close the dead connection
  gracefully), and requests queued behind a full pool waited its 5 s timeout first.

Each test runs the API (uvicorn) against a private PostgreSQL it may freeze, never the
machine's shared server.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import devstack
import httpx
import pytest

from app.health.service import PROBE_TIMEOUT_S, READINESS_TTL_S
from tests.support.faults import PrivatePostgres, private_services
from tests.support.processes import running_api

pytestmark = pytest.mark.slow

# The most a request may take while PostgreSQL is frozen, as the README says: the
# statement or connect timeout (3 s), plus scheduling slack on a loaded machine.
FAIL_FAST_S = 3.75
# Queued behind a full pool: the pool timeout (3 s), then possibly a statement (3 s).
QUEUED_FAIL_FAST_S = 6.75
POOL_SIZE = 20  # the default DB_POOL_SIZE the API below runs with
FLOOD_CONNECTIONS = 200


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[PrivatePostgres, str]]:
    with (
        tempfile.TemporaryDirectory(prefix="failfast-") as state_dir,
        private_services(Path(state_dir)) as found,
    ):
        yield found


@pytest.fixture(scope="module")
def api(services: tuple[PrivatePostgres, str]) -> Iterator[str]:
    postgres, redis_url = services
    env = {"DATABASE_URL": postgres.url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    with running_api(env) as base_url:
        yield base_url


async def _transactions(postgres: PrivatePostgres) -> int:
    """Transactions the server has finished in the app's database so far."""
    connection = await asyncpg.connect(devstack.asyncpg_dsn(postgres.url))
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        value = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return int(value)
    finally:
        await connection.close()


async def test_a_readiness_flood_is_answered_from_one_check_per_interval(
    api: str, services: tuple[PrivatePostgres, str]
) -> None:
    postgres, _ = services
    limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS)
    async with httpx.AsyncClient(base_url=api, timeout=30, limits=limits) as http:
        assert (await http.get("/health/ready")).status_code == 200
        await asyncio.sleep(1.0)  # the statistics collector lags a little
        before = await _transactions(postgres)
        started = time.monotonic()
        statuses: Counter[int] = Counter()

        async def flood() -> None:
            while time.monotonic() - started < 3.0:
                statuses[(await http.get("/health/ready")).status_code] += 1

        await asyncio.gather(*(flood() for _ in range(FLOOD_CONNECTIONS)))
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)
        after = await _transactions(postgres)
    print(
        f"{sum(statuses.values())} readiness answers in {elapsed:.1f} s: {dict(statuses)}; "
        f"{after - before} database transactions"
    )
    assert set(statuses) == {200}, statuses
    # One check per READINESS_TTL_S (plus our own two statistics reads, and slack for
    # the statistics collector): not one per request.
    assert after - before <= elapsed / READINESS_TTL_S + 6, (after - before, statuses)


async def test_frozen_postgres_gives_503_within_seconds_and_recovers(
    api: str, services: tuple[PrivatePostgres, str], auth: Callable[[str], dict[str, str]]
) -> None:
    postgres, _ = services
    headers = auth("alice")
    probes = [("GET", "/v1/children"), ("GET", "/v1/projects"), ("GET", "/v1/me")]
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        # Warm the pool, so requests meet open connections to a server that went silent.
        for _ in range(3):
            for method, path in probes:
                assert (await http.request(method, path, headers=headers)).status_code == 200

        async def timed(method: str, path: str, **kwargs: object) -> tuple[int, float]:
            started = time.monotonic()
            response = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
            return response.status_code, time.monotonic() - started

        with postgres.frozen():
            answers = await asyncio.gather(
                timed("GET", "/health/ready"),
                timed("GET", "/v1/children", headers=headers),
                timed("GET", "/v1/projects", headers=headers),
                timed("POST", "/v1/projects", headers=headers, json={"name": "frozen"}),
                timed("GET", "/v1/children", headers=headers),
            )
            # Requests arriving later, once the first ones gave up on their connections.
            later = await asyncio.gather(
                timed("GET", "/health/ready"), timed("GET", "/v1/children", headers=headers)
            )
            me = await timed("GET", "/v1/me", headers=headers)  # touches no database
            # More requests at once than the pool has connections: some wait for one.
            crowd = await asyncio.gather(
                *(timed("GET", "/v1/projects", headers=headers) for _ in range(POOL_SIZE + 10))
            )
        print(f"while frozen: {answers} then {later}; /v1/me {me}")
        slowest = max(seconds for _, seconds in crowd)
        print(f"{len(crowd)} at once: all {set(s for s, _ in crowd)}, slowest {slowest:.2f} s")
        assert {status for status, _ in crowd} == {503}, crowd
        assert slowest < QUEUED_FAIL_FAST_S, crowd
        ready_status, ready_seconds = answers[0]
        assert ready_status == 503
        assert ready_seconds < PROBE_TIMEOUT_S + 0.75, "readiness did not honour its timeout"
        for status, seconds in [*answers[1:], *later]:
            assert status == 503, answers
            assert seconds < FAIL_FAST_S, answers
        assert later[0][0] == 503
        assert later[0][1] < PROBE_TIMEOUT_S + 0.75
        assert me[0] == 200

        # Thawed: the same process serves again, without a restart.
        deadline = time.monotonic() + 20
        while True:
            statuses = [
                (await http.request(method, path, headers=headers)).status_code
                for method, path in [("GET", "/health/ready"), *probes]
            ]
            if set(statuses) == {200}:
                break
            assert time.monotonic() < deadline, f"not recovered after thawing: {statuses}"
            await asyncio.sleep(0.5)
