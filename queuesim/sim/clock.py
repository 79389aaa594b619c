"""The simulation clock: the engine reads SimPy's time.

In a simulation, one unit of SimPy time is one millisecond, and every timeout is a whole number of them, so the
engine's timestamps (``processedOn``, lock expiries, delayed scores, event ids) are SimPy's ``env.now`` exactly.
Time starts at 0 and only moves when SimPy moves it: an hour of queue life takes as long to simulate as the
work it contains, not an hour.
"""

from __future__ import annotations

import simpy

__all__ = ["SimClock"]


class SimClock:
    """A clock whose ``now_ms()`` is SimPy's current time in integer milliseconds.

    ``virtual = True`` tells the engine that this is not wall time (a real Redis is refused, and the live
    worker runner will not start on it).
    """

    virtual = True

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def now_ms(self) -> int:
        # ``env.now`` is a property returning ``env._now``; the engine asks the time several times per job, and
        # reading the attribute directly saves a call each time (tests/test_sim_clock.py checks the two agree)
        return int(self.env._now)

    def __repr__(self) -> str:
        return f"SimClock(now_ms={self.now_ms()})"
