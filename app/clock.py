"""The app's one clock: `utc_now()` for timestamps, `utc_today(state)` for the date.

Every timestamp the app writes (soft delete, job rows, export results, the job sweep)
comes from `utc_now()`, the same UTC source as Advanced-Alchemy's audit columns.

The date is UTC, so a child's age and daily picks change at the same instant for every
client. Tests set `app.state.clock` to a `FixedClock` to move through days without
waiting; without one the system clock is used.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from litestar.datastructures import State

__all__ = ["CLOCK_STATE_KEY", "Clock", "FixedClock", "SystemClock", "utc_now", "utc_today"]

CLOCK_STATE_KEY = "clock"


def utc_now() -> dt.datetime:
    """Now, time-zone aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class Clock(Protocol):
    def today(self) -> dt.date: ...


class SystemClock:
    """The real UTC calendar date."""

    def today(self) -> dt.date:
        return utc_now().date()


class FixedClock:
    """Always the same date; for tests and reproducible demos."""

    def __init__(self, day: dt.date) -> None:
        self.day = day

    def today(self) -> dt.date:
        return self.day


_SYSTEM_CLOCK = SystemClock()


def utc_today(state: State) -> dt.date:
    """The UTC date of the request, from `app.state.clock` when one is set."""
    clock: Clock = state.get(CLOCK_STATE_KEY) or _SYSTEM_CLOCK
    return clock.today()
