"""A stand-in API process: takes socket slots, then holds them, renewing their leases, until
it is killed. Prints `holding` once every slot is in Redis.

`python -m tests.support.slot_holder REDIS_URL KEY_PREFIX SUB COUNT LEASE_S`
"""

from __future__ import annotations

import asyncio
import sys

from app.realtime.slots import SocketSlots
from app.redis import create_redis


async def hold(redis_url: str, key_prefix: str, sub: str, count: int, lease_s: float) -> None:
    slots = SocketSlots(create_redis(redis_url), cap=count, key_prefix=key_prefix, lease_s=lease_s)
    await slots.start()
    for _ in range(count):
        if await slots.take(sub) is None:
            raise SystemExit(f"{sub} is at the cap already")
    print("holding", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    url, prefix, caller, how_many, lease = sys.argv[1:]
    asyncio.run(hold(url, prefix, caller, int(how_many), float(lease)))
