"""How many job sockets each caller holds over every API process (`MAX_SOCKETS_PER_USER`).

Each caller's sockets are leases in one Redis sorted set, `<LIMITS_KEY_PREFIX>sockets:<sub>`:
the member names one socket of one process, the score is when its lease ends on the Redis
server's clock (`TIME` inside the scripts, so the hosts' clocks do not matter).

- Taking a slot is one script: drop the expired leases, refuse at the cap, else add one.
- A socket's end gives its lease back in the background: closing never waits for Redis.
- Every `LEASE_S / 3` a process renews all its live leases in one round trip, so the
  slots of a process that died without cleaning up are gone within `LEASE_S`.

The process also counts its own sockets: the cheap first gate, and the only one while
Redis fails. Nothing is refused for lack of Redis: a take waits for it at most
`REDIS_WAIT_S`, then Redis is left alone for `REDIS_BACKOFF_S`; slots taken meanwhile
are added to Redis by the first renewal it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.background import cancel_and_wait

__all__ = ["LEASE_S", "REDIS_BACKOFF_S", "REDIS_WAIT_S", "Slot", "SocketSlots"]

logger = logging.getLogger(__name__)

# How long a slot outlives its process's last renewal: how soon a crashed process's
# sockets stop counting. Renewals come every third of it, so two may be missed.
LEASE_S: Final = 30.0
# The most a socket waits for Redis before it is decided from the local count alone.
REDIS_WAIT_S: Final = 0.5
# After a Redis failure, how long takes stop asking it (renewals still probe).
REDIS_BACKOFF_S: Final = 5.0
# A renewal carries every live slot of the process: more time than a single take.
SYNC_TIMEOUT_S: Final = 2.0

# KEYS[1]: one caller's slots; ARGV: slot id, cap, lease (ms). 1: taken; 0: at the cap.
_TAKE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# One process's slots, every caller in one call. KEYS: the callers' sets; ARGV[1]: lease
# (ms); then per key: how many slots to give back, how many to renew, and those ids.
# Renewing adds a slot that is missing (taken while Redis was away, or Redis restarted).
_SYNC: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local i = 2
for _, key in ipairs(KEYS) do
  local drop, keep = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  i = i + 2
  for j = i, i + drop - 1 do
    redis.call('ZREM', key, ARGV[j])
  end
  i = i + drop
  for j = i, i + keep - 1 do
    redis.call('ZADD', key, now + lease, ARGV[j])
  end
  i = i + keep
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if keep > 0 then
    redis.call('PEXPIRE', key, lease)
  end
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class Slot:
    """One socket's place in its caller's count."""

    sub: str
    id: str


class SocketSlots:
    """One process's job-socket slots: counted here, and shared through Redis if given."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        cap: int,
        key_prefix: str,
        lease_s: float = LEASE_S,
    ) -> None:
        self.cap = cap
        self._redis = redis
        self._prefix = f"{key_prefix}sockets:"
        self._lease_s = lease_s
        self._lease_ms = max(1, round(lease_s * 1000))
        self._renew_every_s = lease_s / 3
        # Unique to this process and this start: pids repeat across hosts and containers.
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._ids = itertools.count(1)
        self._held: Counter[str] = Counter()  # this process's slots per caller
        self._live: dict[str, Slot] = {}  # taken and not given back, by id
        # Given back here and maybe still in Redis, with when: after a lease (and a
        # renewal's time on the way) Redis has dropped it anyway.
        self._stale: dict[str, tuple[Slot, float]] = {}
        self._redis_down_until = 0.0
        self._outage = False
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        if redis is not None:
            self._take_script = redis.register_script(_TAKE)
            self._sync_script = redis.register_script(_SYNC)

    # --- taking and giving back ---------------------------------------------------------

    async def take(self, sub: str) -> Slot | None:
        """A slot for one more socket of `sub`, or None when the caller is at the cap."""
        if self._held[sub] >= self.cap:
            return None
        # Counted before the first await, so sockets opened at once cannot all slip in.
        self._held[sub] += 1
        slot = Slot(sub, f"{self._owner}:{next(self._ids)}")
        try:
            admitted = await self._take_shared(slot)
        except BaseException:
            # Cancelled while Redis was asked: the script may have run, so give it back.
            self._give_back(slot)
            raise
        if not admitted:
            self._uncount(sub)
            return None
        self._live[slot.id] = slot
        return slot

    def free(self, slot: Slot) -> None:
        """Give a slot back; never waits (Redis hears of it in the background)."""
        if self._live.pop(slot.id, None) is not None:
            self._give_back(slot)

    def _give_back(self, slot: Slot) -> None:
        self._uncount(slot.sub)
        if self._redis is not None:
            self._stale[slot.id] = (slot, time.monotonic())
            self._wake.set()

    def _uncount(self, sub: str) -> None:
        self._held[sub] -= 1
        if self._held[sub] <= 0:
            del self._held[sub]

    async def _take_shared(self, slot: Slot) -> bool:
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return True
        try:
            async with asyncio.timeout(REDIS_WAIT_S):
                taken = await self._take_script(
                    keys=[self._key(slot.sub)], args=[slot.id, self.cap, self._lease_ms]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            # Decided locally. Should the script have run after all, the renewals keep
            # the lease while the socket lives, and its end removes it.
            self._redis_failed(exc)
            return True
        return bool(taken)

    def _key(self, sub: str) -> str:
        return f"{self._prefix}{sub}"

    # --- Redis bookkeeping --------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is None:
            return
        self._wake = asyncio.Event()
        self._runner = asyncio.create_task(self._run(), name="socket-slots")

    async def stop(self) -> None:
        """Stop renewing and give back every slot still held: the process is leaving."""
        await cancel_and_wait(self._runner)
        self._runner = None
        now = time.monotonic()
        self._stale.update((slot_id, (slot, now)) for slot_id, slot in self._live.items())
        self._live.clear()
        self._held.clear()
        if self._redis is not None and self._stale:
            await self._sync(renew=False, wait_s=REDIS_WAIT_S)

    async def _run(self) -> None:
        # One task does every write but the takes: a renewal can then never re-add a
        # slot that a give-back removed while the renewal was on its way.
        loop = asyncio.get_running_loop()
        next_renewal = loop.time() + self._renew_every_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_renewal):
                    await self._wake.wait()
            self._wake.clear()
            renew = loop.time() >= next_renewal
            if renew:
                next_renewal = loop.time() + self._renew_every_s
            elif time.monotonic() < self._redis_down_until:
                continue  # give-backs wait for the next renewal, which probes Redis
            try:
                await self._sync(renew=renew, wait_s=SYNC_TIMEOUT_S)
            except Exception:  # never let the bookkeeping end; sockets go on regardless
                logger.exception("socket slot renewal failed")

    async def _sync(self, *, renew: bool, wait_s: float) -> None:
        """Remove the given-back slots from Redis and, with `renew`, renew the live ones."""
        assert self._redis is not None
        lapsed = time.monotonic() - self._lease_s - SYNC_TIMEOUT_S
        self._stale = {key: entry for key, entry in self._stale.items() if entry[1] > lapsed}
        stale = [slot for slot, _ in self._stale.values()]
        live = list(self._live.values()) if renew else []
        if not stale and not live:
            return
        keys, args = _sync_arguments(self._prefix, stale, live)
        try:
            async with asyncio.timeout(wait_s):
                await self._sync_script(keys=keys, args=[self._lease_ms, *args])
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)
            return
        for slot in stale:
            self._stale.pop(slot.id, None)
        if self._outage:
            self._outage = False
            self._redis_down_until = 0.0
            logger.info("socket limits shared through Redis again")

    def _redis_failed(self, exc: BaseException) -> None:
        self._redis_down_until = time.monotonic() + REDIS_BACKOFF_S
        if not self._outage:  # once per outage, not per socket
            self._outage = True
            logger.warning("socket limits counted per process only: Redis unavailable (%r)", exc)


def _sync_arguments(
    prefix: str, stale: Iterable[Slot], live: Iterable[Slot]
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV (after the lease) of the sync script, grouped by caller."""
    per_sub: dict[str, tuple[list[str], list[str]]] = {}
    for slot in stale:
        per_sub.setdefault(slot.sub, ([], []))[0].append(slot.id)
    for slot in live:
        per_sub.setdefault(slot.sub, ([], []))[1].append(slot.id)
    keys: list[str] = []
    args: list[str | int] = []
    for sub, (drop, keep) in per_sub.items():
        keys.append(f"{prefix}{sub}")
        args += [len(drop), len(keep), *drop, *keep]
    return keys, args
