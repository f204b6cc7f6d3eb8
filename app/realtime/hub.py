"""One Redis pub/sub connection per process, shared by every WebSocket in it.

Why not Litestar's channels plugin: its subscribe returns before Redis has confirmed the
subscription (a listener that reads state right after could miss an update published in
between), it keeps every channel name it ever saw, and its reader task ends for good on
the first Redis error. This hub

- opens its connection at startup (a sentinel channel), so sockets never race to open a
  second one;
- makes `subscribe()` wait for Redis's confirmation of that very SUBSCRIBE (replies
  come back in order, so pending confirmations are matched first-in first-out);
- forgets a channel when its last local listener leaves;
- reconnects with backoff after an outage, and then tells every listener to resync
  from the source of truth, since messages sent meanwhile are lost;
- gives each listener a bounded queue: one that falls too far behind is told to resync
  instead of growing without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.background import cancel_and_wait

__all__ = ["RESYNC", "HubUnavailable", "PubSubHub", "Subscription", "create_hub_client"]

logger = logging.getLogger(__name__)

# Subscribed at start so the one connection exists before any socket subscribes; its
# confirmation also tells the hub that a (re)connection is complete.
HUB_CHANNEL: Final = "realtime:hub"


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = _Resync()


class HubUnavailable(Exception):
    """Redis pub/sub cannot be used right now (down, or did not confirm in time)."""


def create_hub_client(url: str) -> Redis:
    # Reads block for as long as the hub asks (no socket timeout). No hidden retries:
    # the hub's own loop reconnects, so it always knows when messages may have been lost.
    return Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_keepalive=True,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 0),
    )


class Subscription:
    """One listener's stream of raw messages on one channel."""

    __slots__ = ("_closed", "_items", "_max_backlog", "_resync", "_wakeup", "channel")

    def __init__(self, channel: str, max_backlog: int) -> None:
        self.channel = channel
        self._items: deque[bytes] = deque()
        self._max_backlog = max_backlog
        self._wakeup = asyncio.Event()
        self._resync = False
        self._closed = False

    def push(self, data: bytes) -> None:
        if len(self._items) >= self._max_backlog:
            # Too far behind: drop the backlog; the listener re-reads the current state.
            self._items.clear()
            self._resync = True
        else:
            self._items.append(data)
        self._wakeup.set()

    def request_resync(self) -> None:
        self._resync = True
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def next(self) -> bytes | _Resync | None:
        """The next message, RESYNC when messages may have been lost, None once closed."""
        while True:
            if self._closed:
                return None
            if self._resync:
                self._resync = False
                return RESYNC
            if self._items:
                return self._items.popleft()
            self._wakeup.clear()
            await self._wakeup.wait()


class PubSubHub:
    def __init__(
        self,
        redis: Redis,
        *,
        confirm_timeout_s: float = 2.0,
        max_backlog: int = 1000,
        poll_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub()
        self._confirm_timeout_s = confirm_timeout_s
        self._max_backlog = max_backlog
        self._poll_s = poll_s
        self._listeners: dict[str, set[Subscription]] = {}
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        self._lock: asyncio.Lock | None = None
        self._connected: asyncio.Event | None = None
        self._reader: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()  # fresh, should an app be started again
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._reader = asyncio.create_task(self._read_forever(), name="pubsub-hub")

    async def stop(self) -> None:
        await cancel_and_wait(self._reader)
        self._reader = None
        for listeners in self._listeners.values():
            for subscription in listeners:
                subscription.close()
        self._listeners.clear()
        self._fail_pending()
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    @property
    def channel_count(self) -> int:
        """Channels with at least one local listener (bounded by the open sockets)."""
        return len(self._listeners)

    # --- subscribing --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """Listen on `channel`; on entry, Redis has confirmed the subscription."""
        subscription = Subscription(channel, self._max_backlog)
        confirmation = await self._add(subscription)
        try:
            if confirmation is not None:
                try:
                    async with asyncio.timeout(self._confirm_timeout_s):
                        await asyncio.shield(confirmation)
                except TimeoutError:
                    raise HubUnavailable("Redis did not confirm the subscription") from None
            yield subscription
        finally:
            subscription.close()
            await self._remove(subscription)

    async def _wait_connected(self) -> None:
        assert self._connected is not None, "PubSubHub.start() was not called"
        try:
            async with asyncio.timeout(self._confirm_timeout_s):
                await self._connected.wait()
        except TimeoutError:
            raise HubUnavailable("not connected to Redis") from None

    async def _add(self, subscription: Subscription) -> asyncio.Future[None] | None:
        await self._wait_connected()
        assert self._lock is not None
        channel = subscription.channel
        # One lock for every SUBSCRIBE/UNSUBSCRIBE, so they reach Redis in the order in
        # which the listener sets changed.
        async with self._lock:
            listeners = self._listeners.get(channel)
            if listeners is not None:
                listeners.add(subscription)
                pending = self._pending.get(channel)
                # Not confirmed yet for the first listener: wait for the same reply.
                return pending[-1] if pending else None
            confirmation: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._listeners[channel] = {subscription}
            self._pending.setdefault(channel, deque()).append(confirmation)
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError) as exc:
                del self._listeners[channel]
                self._drop_pending(channel, confirmation)
                raise HubUnavailable(f"cannot subscribe: {exc!r}") from exc
            return confirmation

    async def _remove(self, subscription: Subscription) -> None:
        assert self._lock is not None
        channel = subscription.channel
        async with self._lock:
            listeners = self._listeners.get(channel)
            if listeners is None or subscription not in listeners:
                return
            listeners.discard(subscription)
            if listeners:
                return
            del self._listeners[channel]
            await self._unsubscribe(channel)

    async def _unsubscribe(self, channel: str) -> None:
        try:
            await self._pubsub.unsubscribe(channel)
        except (RedisError, OSError) as exc:
            # After the reconnect redis-py subscribes it again; the reader then drops it.
            logger.debug("unsubscribe from %s failed: %r", channel, exc)

    def _drop_pending(self, channel: str, confirmation: asyncio.Future[None]) -> None:
        pending = self._pending.get(channel)
        if pending is not None and confirmation in pending:
            pending.remove(confirmation)
            if not pending:
                del self._pending[channel]

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            for confirmation in pending:
                if not confirmation.done():
                    confirmation.set_exception(HubUnavailable("connection to Redis lost"))
                    # Nobody may be left to retrieve it; don't warn about that.
                    confirmation.exception()
        self._pending.clear()

    # --- reading ------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(HUB_CHANNEL)
                message = await self._pubsub.get_message(timeout=self._poll_s)
                if message is not None:
                    self._dispatch(message)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect, never stop reading
                assert self._connected is not None
                if self._connected.is_set():
                    logger.warning("Redis pub/sub connection lost: %r", exc)
                self._connected.clear()
                self._fail_pending()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel_raw = message["channel"]
        channel = channel_raw.decode() if isinstance(channel_raw, bytes) else str(channel_raw)
        if kind == "message":
            for subscription in self._listeners.get(channel, ()):
                subscription.push(message["data"])
        elif kind == "subscribe":
            self._confirmed(channel)

    def _confirmed(self, channel: str) -> None:
        assert self._connected is not None
        if channel == HUB_CHANNEL:
            if not self._connected.is_set():
                logger.info("Redis pub/sub connected")
            self._connected.set()
            return
        pending = self._pending.get(channel)
        if pending:
            confirmation = pending.popleft()
            if not pending:
                del self._pending[channel]
            if not confirmation.done():
                confirmation.set_result(None)
        elif channel in self._listeners:
            # Subscribed again after a reconnect: anything sent meanwhile is lost.
            for subscription in self._listeners[channel]:
                subscription.request_resync()
        else:
            # A subscription nobody wants any more (its unsubscribe failed in an outage).
            asyncio.get_running_loop().create_task(self._drop_unwanted(channel))

    async def _drop_unwanted(self, channel: str) -> None:
        assert self._lock is not None
        async with self._lock:
            if channel not in self._listeners:
                await self._unsubscribe(channel)
