"""The per-process pub/sub hub against real Redis servers (the shared one, or a private one)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.realtime import RESYNC, HubUnavailable, PubSubHub
from app.realtime.hub import create_hub_client
from tests.support.processes import PrivateRedis, private_redis


async def _started(url: str, **options: float) -> PubSubHub:
    hub = PubSubHub(create_hub_client(url), **options)  # type: ignore[arg-type]
    await hub.start()
    return hub


@pytest.fixture
async def hub() -> AsyncIterator[PubSubHub]:
    started = await _started(os.environ["REDIS_URL"])
    yield started
    await started.stop()


@pytest.fixture
async def publisher() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    await client.aclose()


def _channel() -> str:
    return f"test-hub:{uuid.uuid4().hex}"


async def _numsub(client: Redis, channel: str) -> int:
    counts = await client.pubsub_numsub(channel)
    return int(dict(counts)[channel.encode()])


async def test_subscribe_returns_once_redis_confirmed(hub: PubSubHub, publisher: Redis) -> None:
    channel = _channel()
    async with hub.subscribe(channel) as subscription:
        # No sleep, no polling: the subscription is live the moment we get it.
        assert await _numsub(publisher, channel) == 1
        await publisher.publish(channel, b"first")
        assert await asyncio.wait_for(subscription.next(), 2) == b"first"


async def test_listeners_share_one_redis_subscription(hub: PubSubHub, publisher: Redis) -> None:
    channel = _channel()
    async with hub.subscribe(channel) as one, hub.subscribe(channel) as two:
        assert await _numsub(publisher, channel) == 1
        assert hub.channel_count == 1
        await publisher.publish(channel, b"both")
        assert await asyncio.wait_for(one.next(), 2) == b"both"
        assert await asyncio.wait_for(two.next(), 2) == b"both"
    assert hub.channel_count == 0
    deadline = time.monotonic() + 2
    while await _numsub(publisher, channel):
        assert time.monotonic() < deadline, "the channel was never unsubscribed"
        await asyncio.sleep(0.01)


async def test_channels_are_forgotten_when_their_listeners_leave(hub: PubSubHub) -> None:
    """Many short-lived channels (one per job) leave nothing behind."""
    for _ in range(200):
        async with hub.subscribe(_channel()):
            pass
    assert hub.channel_count == 0
    await asyncio.sleep(0.2)  # let the unsubscribe confirmations arrive
    assert len(hub._pubsub.channels) == 1  # only the hub's own sentinel channel


async def test_racing_subscribes_all_get_messages(hub: PubSubHub, publisher: Redis) -> None:
    channels = [_channel() for _ in range(20)]

    async def listen(channel: str) -> bytes | object:
        async with hub.subscribe(channel) as subscription:
            await publisher.publish(channel, channel.encode())
            return await asyncio.wait_for(subscription.next(), 2)

    results = await asyncio.gather(*(listen(channel) for channel in channels * 5))
    assert results == [channel.encode() for channel in channels * 5]


async def test_a_slow_listener_is_told_to_resync_instead_of_growing(publisher: Redis) -> None:
    hub = await _started(os.environ["REDIS_URL"], max_backlog=5)
    try:
        channel = _channel()
        async with hub.subscribe(channel) as subscription:
            for number in range(8):
                await publisher.publish(channel, str(number).encode())
            await asyncio.sleep(0.2)
            assert await subscription.next() is RESYNC
            remaining = []
            while subscription._items:
                remaining.append(await subscription.next())
            assert len(remaining) < 5
    finally:
        await hub.stop()


async def test_reconnects_after_redis_restarts_and_asks_for_resync(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        hub = await _started(server.url)
        publisher = Redis.from_url(server.url)
        try:
            channel = _channel()
            async with hub.subscribe(channel) as subscription:
                await _restart(server)
                # After the reconnect the listener learns that it may have missed messages...
                assert await asyncio.wait_for(subscription.next(), 10) is RESYNC
                # ...and hears what is published afterwards, on the same subscription.
                await publisher.publish(channel, b"after")
                assert await asyncio.wait_for(subscription.next(), 5) == b"after"
        finally:
            await publisher.aclose()
            await hub.stop()


async def test_subscribing_while_redis_is_down_fails_fast(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        hub = await _started(server.url, confirm_timeout_s=1.0)
        try:
            async with hub.subscribe(_channel()):
                pass
            server.stop()
            started = time.monotonic()
            with pytest.raises(HubUnavailable):
                async with hub.subscribe(_channel()):
                    pass
            assert time.monotonic() - started < 2
        finally:
            await hub.stop()


async def _restart(server: PrivateRedis) -> None:
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
