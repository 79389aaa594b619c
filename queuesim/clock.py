"""Clocks: where "now" comes from.

BullMQ takes every timestamp from the client (the worker or producer passes ``Date.now()`` to its scripts), never
from Redis. queuesim does the same, through a clock object that is injected everywhere: a :class:`WallClock` for
live use, or a :class:`VirtualClock` whose time only moves when a test or a simulation moves it. All times are
integer milliseconds since the Unix epoch, like BullMQ's.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "VirtualClock", "WallClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything that can tell the current time in integer milliseconds."""

    def now_ms(self) -> int:
        """The current time, in ms since the epoch."""
        ...


class WallClock:
    """The machine's real time."""

    virtual = False

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def __repr__(self) -> str:
        return "WallClock()"


class VirtualClock:
    """A clock that stands still until told to move.

    Tests use it to jump over a 30 s lock expiry in no time; simulations bind it to SimPy's ``env.now``
    through :meth:`set`. It never goes backwards.

    Args:
        start_ms: the time the clock starts at (ms since the epoch). The default, 1,700,000,000,000, is a
            realistic epoch value so that timestamps look like BullMQ's.
    """

    virtual = True

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        if start_ms < 0:
            raise ValueError(f"start_ms must be >= 0, got {start_ms}")
        self._now = int(start_ms)

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        """Move forward by ``ms`` milliseconds (>= 0) and return the new time."""
        if ms < 0:
            raise ValueError(f"advance: ms must be >= 0, got {ms}")
        self._now += int(ms)
        return self._now

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms``; it must not be earlier than the current time."""
        if now_ms < self._now:
            raise ValueError(f"a virtual clock cannot go back in time ({now_ms} < {self._now})")
        self._now = int(now_ms)

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now})"
