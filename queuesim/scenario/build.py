"""From a validated scenario to a running :class:`~queuesim.sim.Simulation`.

:func:`setup` creates the queues, workers, arrival sources, backlogs, faults and health monitor of a scenario on
a fresh simulation; :func:`run` then runs it over its horizon (a duration, or a number of jobs) and drains it,
in steps so that a progress bar can follow the simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from queuesim.scenario.schema import (
    AddBacklog,
    AddWorkers,
    CrashWorker,
    FreezeWorker,
    PauseQueue,
    RemoveWorkers,
    ResumeQueue,
    Scenario,
    ms,
)
from queuesim.sim import Simulation
from queuesim.sim.jobs import JobType, Saga

__all__ = ["JobBudget", "Setup", "run", "setup"]

#: How many steps a run is cut into for progress reports (the result does not depend on it).
PROGRESS_STEPS = 50


@dataclass
class JobBudget:
    """The shared count of a horizon given in jobs: arrival sources stop once ``total`` jobs were drawn."""

    total: int
    drawn: int = 0
    last_ms: float = 0.0
    open_sources: int = 0

    @property
    def remaining(self) -> int:
        return self.total - self.drawn


class _Budgeted:
    """An arrival process that stops when the shared :class:`JobBudget` is spent."""

    def __init__(self, inner: Any, budget: JobBudget) -> None:
        self.inner = inner
        self.budget = budget
        budget.open_sources += 1

    def epochs(self, rng: np.random.Generator, start_ms: float) -> Iterator[tuple[float, int]]:
        budget = self.budget
        try:
            for t, n in self.inner.epochs(rng, start_ms):
                if budget.remaining <= 0:
                    return
                n = min(n, budget.remaining)
                budget.drawn += n
                budget.last_ms = max(budget.last_ms, t)
                yield t, n
        finally:
            budget.open_sources -= 1


@dataclass
class Setup:
    """What :func:`setup` built: the job types by name, the capacity per queue and the job budget."""

    scenario: Scenario
    job_types: dict[str, JobType | Saga]
    capacity: dict[str, int]
    budget: JobBudget | None
    monitor: Any = None
    arrivals_end_ms: int | None = None
    notes: list[str] = field(default_factory=list)


def _active_in(sim: Simulation, queue: str) -> Callable[[], int]:
    def count() -> int:
        return sum(len(w.held) for w in sim.workers.values() if w.squeue.name == queue and w.state != "crashed")

    return count


def setup(sim: Simulation, scenario: Scenario, base_dir: Path | None = None) -> Setup:
    """Create everything the scenario describes on ``sim`` (which must be fresh)."""
    horizon = scenario.horizon
    for q in scenario.queues:
        defaults = q.default_job_options.engine() if q.default_job_options is not None else None
        sim.queue(q.name, dead_letter_queue=q.dead_letter_queue, default_job_options=defaults or None)
        sim.add_workers(q.name, count=q.workers.count, concurrency=q.workers.concurrency, **q.workers.engine())
    job_types = scenario.job_types(base_dir, overload_probe=lambda queue: _active_in(sim, queue))
    budget = JobBudget(horizon.jobs) if horizon.jobs is not None else None
    horizon_ms = ms(horizon.duration_s) if horizon.duration_s is not None else None
    for job in scenario.jobs:
        queue = scenario.queue_of(job.queue)
        jt = job_types[job.name]
        if job.backlog:
            sim.add_backlog(queue, jt, job.backlog)
        if job.arrivals is not None:
            a = job.arrivals
            process = a.build(base_dir)
            if budget is not None:
                process = _Budgeted(process, budget)
            until = ms(a.until_s) if a.until_s is not None else None
            if horizon_ms is not None:
                until = horizon_ms if until is None else min(until, horizon_ms)
            sim.add_arrivals(queue, jt, process, start_ms=ms(a.start_s), until_ms=until, limit=a.limit)
    for fault in sorted(scenario.faults, key=lambda f: f.at_s):
        at = ms(fault.at_s)
        if isinstance(fault, CrashWorker):
            sim.crash_worker(fault.worker, at_ms=at)
        elif isinstance(fault, FreezeWorker):
            sim.freeze_worker(fault.worker, at_ms=at, duration_ms=ms(fault.duration_s))
        elif isinstance(fault, AddWorkers):
            q = scenario.queue_spec(scenario.queue_of(fault.queue))
            sim.add_workers(q.name, count=fault.count, at_ms=at, concurrency=fault.concurrency or q.workers.concurrency,
                            **q.workers.engine())
        elif isinstance(fault, RemoveWorkers):
            sim.remove_workers(fault.workers, at_ms=at, graceful=fault.graceful)
        elif isinstance(fault, PauseQueue):
            sim.pause_queue(scenario.queue_of(fault.queue), at_ms=at)
        elif isinstance(fault, ResumeQueue):
            sim.resume_queue(scenario.queue_of(fault.queue), at_ms=at)
        elif isinstance(fault, AddBacklog):
            job = scenario.job_spec(fault.job)
            sim.add_backlog(scenario.queue_of(job.queue), job_types[job.name], fault.count, at_ms=at)
    monitor = None
    if scenario.health.enabled:
        h = scenario.health
        monitor = sim.monitor_health(interval_ms=ms(h.interval_s), window_ms=ms(h.window_s),
                                     waiting_warning=h.waiting_warning, error_rate_warning=h.error_rate_warning,
                                     error_rate_critical=h.error_rate_critical,
                                     slow_processing_ms=h.slow_processing_ms)
    capacity = {q.name: q.workers.count * q.workers.concurrency for q in scenario.queues}
    return Setup(scenario, job_types, capacity, budget, monitor)


def run(sim: Simulation, built: Setup, on_progress: Callable[[float], None] | None = None) -> int:
    """Run the scenario's horizon, then drain; returns the end of the measurement window (ms).

    For a horizon in time the window ends at ``duration_s``; for a horizon in jobs, just after the last arrival.
    """
    horizon = built.scenario.horizon
    drain_limit = ms(horizon.drain_limit_s)
    if horizon.duration_s is not None:
        end = ms(horizon.duration_s)
        step = max(1, end // PROGRESS_STEPS)
        t = 0
        while t + step < end:
            t += step
            sim.run(t)
            if on_progress:
                on_progress(0.95 * t / end)
        # the last step ends the horizon (and drains: SimPy cannot be asked to run until "now")
        sim.run(end, drain=horizon.drain, drain_limit_ms=drain_limit)
        built.arrivals_end_ms = end
        if on_progress:
            on_progress(1.0)
        return end
    budget = built.budget
    assert budget is not None
    limit = ms(horizon.max_duration_s)
    step = 60_000
    while sim.now_ms < limit:
        if budget.remaining <= 0 and sim.now_ms >= budget.last_ms:
            break
        if budget.open_sources <= 0 and sim.now_ms >= budget.last_ms:
            break
        sim.run(min(limit, sim.now_ms + step))
        if on_progress:
            on_progress(0.95 * budget.drawn / budget.total)
    end = int(budget.last_ms + 0.5) + 1
    built.arrivals_end_ms = end
    if horizon.drain:
        sim.run(sim.now_ms + 1, drain=True, drain_limit_ms=drain_limit)
    if on_progress:
        on_progress(1.0)
    return end
