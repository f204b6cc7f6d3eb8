"""What `WorkerQueue.sweep` assumes about SAQ's Redis layout, checked on the real thing.

The override exists for SAQ issue #277 (a job being dequeued can be swept). It reads
SAQ's active list and sweep lock by name, which SAQ does not promise to keep: these
tests fail, with a message saying what to re-check, on any other SAQ minor version.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import saq
from redis.asyncio import Redis
from saq.job import Status
from saq.queue.redis import RedisQueue

from app.jobs.queue import SAQ_ADAPTER_VERSION, WorkerQueue, saq_version_supported
from app.jobs.shares import FairShares

UPGRADE_HINT = (
    "app/jobs/queue.py WorkerQueue.sweep was written against saq {wanted}x; saq {found} is "
    "installed. Check whether SAQ fixed issue #277 (then drop the override) or re-check "
    "its Redis key names, then update SAQ_ADAPTER_VERSION and the pin in pyproject.toml."
)


@pytest.fixture
async def queue() -> AsyncIterator[RedisQueue]:
    name = f"adapter-{uuid.uuid4().hex[:12]}"
    redis = Redis.from_url(os.environ["REDIS_URL"])
    yield RedisQueue(redis, name=name)
    keys = [key async for key in redis.scan_iter(match=f"saq:*{name}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_the_installed_saq_is_the_version_the_adapter_was_written_for() -> None:
    assert saq_version_supported(), UPGRADE_HINT.format(
        wanted=SAQ_ADAPTER_VERSION, found=saq.__version__
    )


async def test_a_dequeued_job_sits_in_the_active_list_the_adapter_reads(
    queue: RedisQueue,
) -> None:
    job = await queue.enqueue("demo", key="layout-check")
    assert job is not None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    active = await queue.redis.lrange(queue.namespace("active"), 0, -1)  # type: ignore[misc]
    assert active == [job.id.encode()], UPGRADE_HINT.format(
        wanted=SAQ_ADAPTER_VERSION, found=saq.__version__
    )


async def test_saqs_own_sweep_takes_the_lock_the_adapter_shares(queue: RedisQueue) -> None:
    await queue.sweep(lock=30)
    assert await queue.redis.ttl(queue.namespace("sweep")) > 0, UPGRADE_HINT.format(
        wanted=SAQ_ADAPTER_VERSION, found=saq.__version__
    )
    # Held: the adapter's sweep in the same window does nothing, as SAQ's would.
    adapter = WorkerQueue(queue.redis, name=queue.name)
    assert await adapter.sweep(lock=30) == []


async def _mark_active_then_finish(queue: RedisQueue) -> dict[str, object]:
    """What SAQ's worker does to a job's keys, and what it publishes, as it runs one."""
    job = await queue.enqueue("demo", key=f"pipeline-{uuid.uuid4().hex[:8]}", ttl=600)
    assert job is not None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(job.id)
        await dequeued.update(status=Status.ACTIVE)
        active_list = await queue.redis.lrange(queue.namespace("active"), 0, -1)  # type: ignore[misc]
        stored_active = queue.deserialize(await queue.redis.get(job.id))
        await queue.finish(dequeued, Status.COMPLETE, result=7)
        notices: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(notices) < 2 and time.monotonic() < deadline:
            # None for the subscription's own confirmation, or when nothing came yet.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                notices.append(message["data"])
    stored = queue.deserialize(await queue.redis.get(job.id))
    assert stored_active is not None
    assert stored is not None
    return {
        "active list while running": active_list == [job.id.encode()],
        "stored while running": stored_active.status,
        "notices": notices,
        "stored at the end": (stored.status, stored.result),
        "still active": await queue.redis.lrange(queue.namespace("active"), 0, -1),  # type: ignore[misc]
        "still incomplete": await queue.redis.zscore(queue.namespace("incomplete"), job.id),
        "kept for its ttl": 0 < await queue.redis.ttl(job.id) <= 600,
    }


async def test_the_pipelined_saves_leave_what_saqs_own_leave(queue: RedisQueue) -> None:
    """WorkerQueue saves a job and publishes its status in one round trip; the keys,
    values and notices must be exactly SAQ's own."""
    ours = WorkerQueue(queue.redis, name=f"{queue.name}-ours")
    try:
        expected = await _mark_active_then_finish(queue)
        assert expected["notices"] == [b"active", b"complete"]
        assert await _mark_active_then_finish(ours) == expected, UPGRADE_HINT.format(
            wanted=SAQ_ADAPTER_VERSION, found=saq.__version__
        )
    finally:
        keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{ours.name}*")]
        if keys:
            await queue.redis.delete(*keys)


def _fair(queue: RedisQueue) -> FairShares:
    return FairShares(
        queue.redis,
        limit=1,
        active=queue.namespace("active"),
        incomplete=queue.namespace("incomplete"),
        queued=queue.namespace("queued"),
    )


async def test_a_job_put_back_comes_back_through_saqs_schedule(queue: RedisQueue) -> None:
    """app/jobs/shares.py puts a job over its share into SAQ's schedule by name."""
    fair = _fair(queue)
    hint = UPGRADE_HINT.format(wanted=SAQ_ADAPTER_VERSION, found=saq.__version__)
    await queue.enqueue("demo", key="running", owner_sub="a")
    await queue.enqueue("demo", key="waiting", owner_sub="a")
    running = await queue.dequeue(timeout=1)
    waiting = await queue.dequeue(timeout=1)
    assert running is not None
    assert waiting is not None
    assert await fair.admit(running)
    assert not await fair.admit(waiting)
    assert await queue.redis.lrange(queue.namespace("active"), 0, -1) == [  # type: ignore[misc]
        running.id.encode()
    ], hint
    assert await queue.count("queued") == 0
    # SAQ's scheduler hands it back once due, untouched.
    deadline = time.monotonic() + 3
    while waiting.id not in await queue.schedule(lock=1):
        assert time.monotonic() < deadline, hint
        await asyncio.sleep(0.1)
    back = await queue.dequeue(timeout=1)
    assert back is not None
    assert (back.key, back.status, back.attempts) == ("waiting", Status.QUEUED, 0), hint
    assert not await fair.admit(back)
    # The running job ends here: the waiting one goes to the head of the queue at once.
    await fair.release(running)
    again = await queue.dequeue(timeout=1)
    assert again is not None
    assert again.key == "waiting", hint
    assert await fair.admit(again)
