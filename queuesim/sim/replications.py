"""Replications: run a scenario R times with independent random streams and put confidence intervals on it.

One run gives one number per metric, with no idea of its precision. R independent replications give R numbers
per metric; their mean and a Student-t interval (:mod:`queuesim.analysis.stats`) say where the long-run value
lies. Each replication drops its own warm-up (the start, when the system is still emptier than usual).

Replications are independent, so they run in parallel through any ``concurrent.futures.Executor``: a process
pool by default (one per core), or e.g. a dask.distributed client's ``get_executor()`` to spread a sweep over
several machines. The scenario (a *model* function that sets up a :class:`Simulation`) must then be picklable:
a function defined at module level, or a ``functools.partial`` of one.

**Common random numbers**: replication i of every variant passed to :func:`compare` uses the same seed
sequence, so the variants see the same arrivals and service times; :meth:`Comparison.difference` then gives a
much narrower interval for the difference than two separate intervals would.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from queuesim.analysis.stats import Estimate, paired_difference, t_interval
from queuesim.errors import OptionError
from queuesim.sim.environment import Simulation
from queuesim.sim.streams import replication_seeds
from queuesim.theory import TheoryCheck, check

__all__ = ["Comparison", "Replications", "SerialExecutor", "compare", "replicate"]

Model = Callable[[Simulation], Any]
Measure = Callable[[Simulation, int, int], Mapping[str, float]]


class SerialExecutor(Executor):
    """Runs each task at once in the calling process (for debugging, notebooks and tiny runs)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


def default_measure(sim: Simulation, warmup_ms: int, end_ms: int) -> dict[str, float]:
    """The standard metrics (:func:`queuesim.analysis.metrics.summary`) of the window [warmup_ms, end_ms)."""
    return sim.summary(warmup_ms, end_ms)


@dataclass(frozen=True, slots=True)
class _Task:
    model: Model
    seed: np.random.SeedSequence
    backend: str
    until_ms: int
    warmup_ms: int
    end_ms: int
    measure: Measure
    drain: bool


def _run_one(task: _Task) -> dict[str, float]:
    sim = Simulation(task.seed, task.backend)
    task.model(sim)
    sim.run(task.until_ms, drain=task.drain)
    return {k: float(v) for k, v in task.measure(sim, task.warmup_ms, task.end_ms).items()}


class Replications:
    """The results of R replications: one row per replication, one column per metric."""

    def __init__(self, results: pd.DataFrame, confidence: float = 0.95) -> None:
        self.results = results
        self.confidence = confidence

    def __len__(self) -> int:
        return len(self.results)

    def estimate(self, metric: str, confidence: float | None = None) -> Estimate:
        """Mean of ``metric`` over the replications with its t-based confidence interval."""
        if metric not in self.results:
            raise OptionError("metric", f"unknown metric {metric!r}; known: {', '.join(self.results.columns)}")
        return t_interval(self.results[metric], confidence or self.confidence)

    def check(self, metric: str, exact: float, scale: float = 1.0) -> TheoryCheck:
        """Compare ``metric`` (divided by ``scale``, e.g. 1000 to turn ms into s) with an exact value."""
        est = self.estimate(metric)
        return check(exact, est.mean / scale, est.half_width / scale)

    def table(self, confidence: float | None = None) -> pd.DataFrame:
        """Every metric with its mean, half-width, interval and number of replications."""
        rows = {}
        for metric in self.results.columns:
            e = self.estimate(metric, confidence)
            rows[metric] = {"mean": e.mean, "half_width": e.half_width, "low": e.low, "high": e.high, "n": e.n}
        return pd.DataFrame.from_dict(rows, orient="index")


def _execute(tasks: list[_Task], executor: Executor | None, progress: bool, label: str) -> list[dict[str, float]]:
    own = executor is None
    if own or isinstance(executor, ProcessPoolExecutor):
        try:
            pickle.dumps(tasks[0])
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise OptionError("model", "cannot be sent to worker processes (it must be picklable: a function "
                                       "defined at module level, or a functools.partial of one); or pass "
                                       f"executor=SerialExecutor() to run in this process ({exc})") from None
    pool = ProcessPoolExecutor(max_workers=min(len(tasks), os.cpu_count() or 1)) if own else executor
    assert pool is not None
    try:
        futures = {pool.submit(_run_one, task): i for i, task in enumerate(tasks)}
        results: list[dict[str, float] | None] = [None] * len(tasks)
        with tqdm(total=len(tasks), desc=label, disable=not progress, unit="run") as bar:
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
    finally:
        if own:
            pool.shutdown()
    return [r for r in results if r is not None]


def _tasks(model: Model, replications: int, seed: int, backend: str, until_ms: int, warmup_ms: int,
           end_ms: int | None, measure: Measure | None, drain: bool) -> list[_Task]:
    if isinstance(until_ms, bool) or not isinstance(until_ms, int) or until_ms <= 0:
        raise OptionError("until_ms", f"must be an integer > 0, got {until_ms!r}")
    end = until_ms if end_ms is None else end_ms
    if not 0 <= warmup_ms < end <= until_ms:
        raise OptionError("warmup_ms", f"need 0 <= warmup_ms < end_ms <= until_ms, got {warmup_ms}, {end}, "
                                       f"{until_ms}")
    if not callable(model):
        raise OptionError("model", f"must be a function that sets up a Simulation, got {model!r}")
    return [_Task(model, s, backend, until_ms, warmup_ms, end, measure or default_measure, drain)
            for s in replication_seeds(seed, replications)]


def replicate(model: Model, *, replications: int = 20, seed: int = 0, backend: str = "fakeredis",
              until_ms: int, warmup_ms: int = 0, end_ms: int | None = None, measure: Measure | None = None,
              drain: bool = False, executor: Executor | None = None, progress: bool = True,
              confidence: float = 0.95) -> Replications:
    """Run ``model`` in ``replications`` independent replications and collect their metrics.

    Args:
        model: ``model(sim)`` sets up queues, workers, arrivals and faults on a fresh :class:`Simulation`.
        replications: R.
        seed: the root seed; replication i always gets the i-th child seed sequence.
        backend: ``"fakeredis"`` or ``"memory"``.
        until_ms: how long each replication runs.
        warmup_ms: the start of the measurement window (warm-up deletion).
        end_ms: the end of the window (default ``until_ms``); jobs created before it should finish by
            ``until_ms``.
        measure: ``measure(sim, warmup_ms, end_ms) -> {metric: value}`` (default: :func:`default_measure`).
        drain: after ``until_ms``, stop arrivals and run until the queues are empty.
        executor: where to run (default: a process pool with one process per core).
        progress: show a progress bar.
        confidence: the level of the intervals (0.95).
    """
    tasks = _tasks(model, replications, seed, backend, until_ms, warmup_ms, end_ms, measure, drain)
    rows = _execute(tasks, executor, progress, getattr(model, "__name__", "replications"))
    return Replications(pd.DataFrame(rows), confidence)


class Comparison:
    """Replications of several variants run with common random numbers."""

    def __init__(self, runs: dict[str, Replications]) -> None:
        self.runs = runs

    def __getitem__(self, name: str) -> Replications:
        return self.runs[name]

    def difference(self, a: str, b: str, metric: str) -> Estimate:
        """CI of (variant a - variant b) for ``metric``, paired replication by replication."""
        return paired_difference(list(self.runs[a].results[metric]), list(self.runs[b].results[metric]),
                                 self.runs[a].confidence)

    def table(self, metric: str) -> pd.DataFrame:
        """``metric`` of every variant, with its interval."""
        rows = {}
        for name, reps in self.runs.items():
            e = reps.estimate(metric)
            rows[name] = {"mean": e.mean, "half_width": e.half_width, "low": e.low, "high": e.high}
        return pd.DataFrame.from_dict(rows, orient="index")


def compare(variants: Mapping[str, Model], *, replications: int = 20, seed: int = 0, backend: str = "fakeredis",
            until_ms: int, warmup_ms: int = 0, end_ms: int | None = None, measure: Measure | None = None,
            drain: bool = False, executor: Executor | None = None, progress: bool = True,
            confidence: float = 0.95) -> Comparison:
    """Run every variant with the same R seed sequences (common random numbers); see :func:`replicate`."""
    if not variants:
        raise OptionError("variants", "needs at least one named model")
    all_tasks: list[_Task] = []
    for model in variants.values():
        all_tasks.extend(_tasks(model, replications, seed, backend, until_ms, warmup_ms, end_ms, measure, drain))
    rows = _execute(all_tasks, executor, progress, "variants")
    runs = {}
    for k, name in enumerate(variants):
        part = rows[k * replications:(k + 1) * replications]
        runs[name] = Replications(pd.DataFrame(part), confidence)
    return Comparison(runs)
