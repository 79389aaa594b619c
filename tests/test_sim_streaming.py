"""Streaming statistics (``Simulation(record="stats")``): the same summary as the full tables, flat memory."""

from __future__ import annotations

import math

import pytest

from queuesim.errors import OptionError
from queuesim.sim import Exponential, Failures, JobType, Poisson, Simulation


def _scenario(record: str, warmup_ms: int, backend: str = "memory", faults: bool = False,
              until_ms: int = 120_000) -> Simulation:
    sim = Simulation(seed=11, backend=backend, record=record, stats_warmup_ms=warmup_ms if record == "stats" else 0)
    sim.queue("orders", dead_letter_queue="orders-dlq")
    sim.add_workers("orders", count=3, concurrency=2)
    retrying = JobType("charge", Exponential(900), failures=Failures(retryable=0.2, permanent=0.03),
                       options={"attempts": 3, "backoff": {"type": "exponential", "delay": 400}})
    urgent = JobType("refund", Exponential(400), options={"priority": 1, "remove_on_complete": True})
    sim.add_arrivals("orders", retrying, Poisson(3.5))
    sim.add_arrivals("orders", urgent, Poisson(1.0))
    if faults:
        sim.crash_worker("orders-w1", at_ms=30_000)
        sim.freeze_worker("orders-w2", at_ms=50_000, duration_ms=45_000)
    sim.run(until_ms=until_ms)
    return sim


def _same(a: dict[str, float], b: dict[str, float]) -> list[str]:
    return [k for k in a if not (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])))]


@pytest.mark.parametrize(("warmup_ms", "faults"), [(0, False), (20_000, False), (10_000, True)])
def test_stats_summary_equals_the_full_tables(warmup_ms: int, faults: bool) -> None:
    full = _scenario("log", 0, faults=faults).summary(warmup_ms=warmup_ms)
    streamed = _scenario("stats", warmup_ms, faults=faults).summary(warmup_ms=warmup_ms)
    assert full["arrivals"] > 300
    if faults:
        assert full["stalls"] > 0  # the crash and the freeze did bring jobs back
    assert full["dlq"] > 0
    assert _same(full, streamed) == []


def test_stats_summary_on_fakeredis_equals_memory() -> None:
    on_fake = _scenario("stats", 5_000, backend="fakeredis", until_ms=30_000).summary(warmup_ms=5_000)
    on_memory = _scenario("stats", 5_000, until_ms=30_000).summary(warmup_ms=5_000)
    assert on_fake["arrivals"] > 50
    assert _same(on_fake, on_memory) == []


def test_stats_mode_forgets_finished_jobs() -> None:
    sim = _scenario("stats", 0, until_ms=200_000)
    rec = sim.recorder
    assert rec.rows == []
    in_system = sum(1 for r in rec._jobs.values() if r.state not in ("completed", "failed", "dlq", "removed"))
    assert len(rec._jobs) == in_system  # only the jobs still in the system are remembered
    assert len(rec._actors) <= in_system
    assert len(rec._exits) <= in_system
    folded = rec._folded["orders"]
    assert len(folded.created) + len(rec._jobs) == sim.arrivals["orders"]


def test_stats_mode_refuses_tables_and_other_windows() -> None:
    sim = _scenario("stats", 1_000, until_ms=5_000)
    with pytest.raises(OptionError, match="record"):
        sim.event_log()
    with pytest.raises(OptionError, match="record"):
        sim.jobs()
    with pytest.raises(OptionError, match="warmup_ms=1000"):
        sim.summary(warmup_ms=0)
    with pytest.raises(OptionError, match="end_ms"):
        sim.summary(warmup_ms=1_000, end_ms=2_000)
    with pytest.raises(OptionError, match=r"record.*log, stats"):
        Simulation(record="rows")
    with pytest.raises(OptionError, match="stats_warmup_ms"):
        Simulation(record="stats", stats_warmup_ms=-1)
