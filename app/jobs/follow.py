"""Following one job's progress for a listener (the `/ws/jobs/{job_id}` socket)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from app.jobs.progress import encode, progress_channel, progress_message
from app.jobs.repository import JobRepository
from app.jobs.schemas import ProgressMessage
from app.jobs.status import JobStatus
from app.realtime import RESYNC, PubSubHub, Subscription

__all__ = ["JobNotFound", "ProgressFollower"]

logger = logging.getLogger(__name__)

_decode_progress = msgspec.json.Decoder(ProgressMessage).decode


def _position(status: JobStatus, step: int) -> tuple[int, int]:
    """A job's updates only move forward within one run: status first, then step."""
    order = 2 if status.finished else 1 if status is JobStatus.ACTIVE else 0
    return order, step


class JobNotFound(Exception):
    """No such job for this caller (also: someone else's job)."""


async def _read_progress(
    engine: AsyncEngine, job_id: uuid.UUID, owner_sub: str
) -> ProgressMessage | None:
    async with engine.connect() as connection:
        row = await JobRepository(connection).progress_for_owner(job_id, owner_sub)
    return progress_message(row) if row is not None else None


class ProgressFollower:
    """One listener following one job: the current state, then every newer update.

    Subscribe first, read the row second: an update committed before the read is in the
    row, one published after the subscription arrives as a message. Messages that the
    row already covers (published between the two) are dropped by their position. The
    stream ends after the terminal state, or when `stop()` is called (the client left).
    """

    def __init__(
        self, engine: AsyncEngine, hub: PubSubHub, job_id: uuid.UUID, owner_sub: str
    ) -> None:
        self._engine = engine
        self._hub = hub
        self._job_id = job_id
        self._owner_sub = owner_sub
        self._subscription: Subscription | None = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        if self._subscription is not None:
            self._subscription.close()

    async def messages(self) -> AsyncGenerator[bytes, None]:
        async with self._hub.subscribe(progress_channel(self._job_id)) as subscription:
            self._subscription = subscription
            if self.stopped:
                return
            current = await _read_progress(self._engine, self._job_id, self._owner_sub)
            if current is None:
                raise JobNotFound(self._job_id)
            yield encode(current)
            if current.status.finished:
                return
            last = _position(current.status, current.step)
            catching_up = True
            while (item := await subscription.next()) is not None:
                if item is RESYNC:
                    # Messages may have been lost (Redis reconnect, or a slow socket).
                    current = await _read_progress(self._engine, self._job_id, self._owner_sub)
                    if current is None:
                        return
                    if _position(current.status, current.step) > last:
                        yield encode(current)
                        if current.status.finished:
                            return
                        last = _position(current.status, current.step)
                    catching_up = True
                    continue
                assert isinstance(item, bytes)
                try:
                    message = _decode_progress(item)
                except msgspec.ValidationError:
                    logger.warning("ignoring a malformed message on %s", subscription.channel)
                    continue
                position = _position(message.status, message.step)
                if catching_up and position <= last:
                    continue
                catching_up, last = False, position
                yield item
                if message.status.finished:
                    return
