"""Socket slots shared through real Redis (app/realtime/slots.py) where the API-level lease
(30 s) would make a test slow: a killed process's slots, and Redis going away.

Each `SocketSlots` here stands for one API process; the API-level test of the shared cap
is in test_socket_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import devstack
import pytest

from app.realtime.slots import REDIS_WAIT_S, Slot, SocketSlots
from app.redis import create_redis
from tests.support.processes import PrivateRedis, private_redis
from tests.test_limits import fresh_prefix

# Short, so that a lapsed lease shows within seconds; renewed every third of it.
LEASE_S = 3.0


def new_sub() -> str:
    return f"slots-{uuid.uuid4()}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def slot_warnings() -> Iterator[list[logging.LogRecord]]:
    handler = _Records()
    logger = logging.getLogger("app.realtime.slots")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as server:
        yield server


@contextlib.asynccontextmanager
async def _process(url: str, key_prefix: str, cap: int) -> AsyncIterator[SocketSlots]:
    """The slots of one stand-in API process, started and stopped as the app does."""
    client = create_redis(url)
    slots = SocketSlots(client, cap=cap, key_prefix=key_prefix, lease_s=LEASE_S)
    await slots.start()
    try:
        yield slots
    finally:
        await slots.stop()
        await client.aclose()


async def _refused_within(slots: SocketSlots, sub: str, seconds: float) -> bool:
    """Whether `sub` is at the cap over all processes within `seconds` (a slot taken while
    polling is given back at once)."""
    deadline = time.monotonic() + seconds
    while True:
        slot = await slots.take(sub)
        if slot is None:
            return True
        slots.free(slot)
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_killed_process_gives_its_slots_back_within_the_lease() -> None:
    url, prefix, sub = os.environ["REDIS_URL"], fresh_prefix(), new_sub()
    command = [sys.executable, "-m", "tests.support.slot_holder", url, prefix, sub, "2"]
    holder = devstack.spawn([*command, str(LEASE_S)], stdout=subprocess.PIPE)
    observer_client = create_redis(url)
    observer = SocketSlots(observer_client, cap=2, key_prefix=prefix, lease_s=LEASE_S)
    try:
        assert holder.stdout is not None
        assert await asyncio.to_thread(holder.stdout.readline) == b"holding\n"
        assert await observer.take(sub) is None, "the holder's slots are not shared"
        # Alive, the holder renews its leases: its slots outlast them.
        await asyncio.sleep(2 * LEASE_S)
        assert await observer.take(sub) is None, "a live process's slots lapsed"
        os.killpg(holder.pid, signal.SIGKILL)  # no shutdown hook runs, as in a crash
        await asyncio.to_thread(holder.wait)
        killed_at = time.monotonic()
        slot: Slot | None = None
        while slot is None:
            assert time.monotonic() - killed_at < LEASE_S + 1.5, "slots outlived their lease"
            await asyncio.sleep(0.05)
            slot = await observer.take(sub)
        assert await observer.take(sub) is not None  # both of them
    finally:
        devstack.stop_process(holder, "slot holder", timeout=5)
        await observer.stop()  # gives back the slots it took
        await observer_client.aclose()


async def test_with_redis_down_sockets_open_up_to_the_local_cap_quickly(
    redis_server: PrivateRedis, slot_warnings: list[logging.LogRecord]
) -> None:
    sub = new_sub()
    async with _process(redis_server.url, fresh_prefix(), cap=3) as slots:
        first = await slots.take(sub)
        assert first is not None
        redis_server.stop()
        for _ in range(2):
            started = time.monotonic()
            assert await slots.take(sub) is not None, "refused for lack of Redis"
            assert time.monotonic() - started < REDIS_WAIT_S + 0.5
        started = time.monotonic()
        assert await slots.take(sub) is None  # the cap still holds on this process
        slots.free(first)
        assert await slots.take(sub) is not None
        assert time.monotonic() - started < 0.5  # decided locally while Redis is away
        assert len(slot_warnings) == 1, [record.getMessage() for record in slot_warnings]


async def test_a_hung_redis_holds_a_socket_back_at_most_briefly(
    redis_server: PrivateRedis,
) -> None:
    sub = new_sub()
    async with _process(redis_server.url, fresh_prefix(), cap=2) as slots:
        assert await slots.take(sub) is not None
        redis_server.freeze()
        try:
            started = time.monotonic()
            assert await slots.take(sub) is not None
            assert time.monotonic() - started < REDIS_WAIT_S + 0.5
            started = time.monotonic()
            assert await slots.take(sub) is None
            assert time.monotonic() - started < 0.1  # decided locally
        finally:
            redis_server.thaw()


async def test_slots_taken_while_redis_was_away_count_once_it_is_back(
    redis_server: PrivateRedis,
) -> None:
    prefix, sub = fresh_prefix(), new_sub()
    async with (
        _process(redis_server.url, prefix, cap=2) as one,
        _process(redis_server.url, prefix, cap=2) as other,
    ):
        redis_server.stop()
        assert await one.take(sub) is not None
        assert await one.take(sub) is not None
        redis_server.start()  # empty: it kept nothing
        # The first renewal Redis answers adds the two slots to the shared count.
        assert await _refused_within(other, sub, seconds=LEASE_S + 3)
