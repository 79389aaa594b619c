"""The simulation clock reads SimPy's time."""

from __future__ import annotations

import simpy

from queuesim.sim.clock import SimClock


def test_now_ms_follows_simpy_time_in_whole_milliseconds() -> None:
    env = simpy.Environment()
    clock = SimClock(env)
    seen: list[tuple[int, float]] = []

    def ticker() -> simpy.events.ProcessGenerator:
        for gap in (0, 7, 1, 250, 3):
            yield env.timeout(gap)
            seen.append((clock.now_ms(), env.now))

    env.process(ticker())
    env.run()
    assert seen == [(0, 0), (7, 7), (8, 8), (258, 258), (261, 261)]
    assert all(type(ms) is int for ms, _ in seen)
    assert clock.now_ms() == 261


def test_now_ms_starts_where_the_environment_starts() -> None:
    assert SimClock(simpy.Environment(initial_time=1_500)).now_ms() == 1_500
