"""The garbage collector's threshold while a simulation runs (see ``GC_FIRST_THRESHOLD``)."""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from queuesim.sim import Exponential, JobType, Poisson, Simulation
from queuesim.sim.environment import GC_FIRST_THRESHOLD


@pytest.fixture
def thresholds() -> Iterator[None]:
    """Leave the interpreter's collector as the test found it."""
    before, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*before)
    if enabled:
        gc.enable()
    else:
        gc.disable()


def _threshold_seen_during_run(sim: Simulation) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []

    def probe() -> Generator[Any, Any, None]:
        yield sim.env.timeout(500)
        seen.append(gc.get_threshold())

    sim.env.process(probe())
    return seen


def _simulation() -> Simulation:
    sim = Simulation(seed=1, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=2)
    sim.add_arrivals("q", JobType("a", Exponential(100)), Poisson(5))
    return sim


@pytest.mark.usefixtures("thresholds")
def test_a_run_raises_the_first_threshold_and_puts_it_back() -> None:
    gc.enable()
    gc.set_threshold(700, 10, 10)
    sim = _simulation()
    seen = _threshold_seen_during_run(sim)
    sim.run(until_ms=1_000)
    assert seen == [(GC_FIRST_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_run_puts_the_threshold_back_when_it_raises() -> None:
    gc.enable()
    gc.set_threshold(500, 7, 9)
    sim = _simulation()

    def boom() -> Generator[Any, Any, None]:
        yield sim.env.timeout(200)
        raise RuntimeError("boom")

    sim.env.process(boom())
    with pytest.raises(RuntimeError, match="boom"):
        sim.run(until_ms=1_000)
    assert gc.get_threshold() == (500, 7, 9)


@pytest.mark.usefixtures("thresholds")
@pytest.mark.parametrize("setting", ["higher", "disabled"])
def test_a_collector_set_higher_or_switched_off_is_left_alone(setting: str) -> None:
    gc.enable()
    gc.set_threshold(50_000, 10, 10)
    if setting == "disabled":
        gc.set_threshold(700, 10, 10)
        gc.disable()
    expected = gc.get_threshold()
    sim = _simulation()
    seen = _threshold_seen_during_run(sim)
    sim.run(until_ms=1_000)
    assert seen == [expected]
    assert gc.get_threshold() == expected
    assert gc.isenabled() is (setting != "disabled")


@pytest.mark.usefixtures("thresholds")
def test_the_threshold_does_not_change_what_a_run_records() -> None:
    gc.enable()
    logs = []
    for first in (700, GC_FIRST_THRESHOLD * 10):
        gc.set_threshold(first, 10, 10)
        sim = _simulation()
        sim.run(until_ms=20_000)
        logs.append(sim.event_log().to_csv(index=False))
    assert logs[0] == logs[1]
