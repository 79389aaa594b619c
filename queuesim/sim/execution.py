"""Running one attempt of a simulated job in virtual time.

An attempt is a SimPy generator: it waits (``yield env.timeout(ms)``) for as long as the work takes, then returns
an :class:`Outcome` — success, or the exception the processor would have raised. The worker then reports the
outcome to the engine (``complete`` or ``fail``), exactly as a live worker reports its processor's result.

Random numbers: the service time and the failure draw of a job's *first* attempt are drawn when the job
arrives (see :class:`FirstAttempt`), so two variants of a scenario run with the same seed give every job the
same first-attempt work, whatever order the workers take jobs in (common random numbers). Later attempts draw
when they start.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from queuesim.errors import RateLimitError, RetryableError, UnrecoverableError
from queuesim.job import Job
from queuesim.sim.jobs import Dependency, Failures, JobType, Saga
from queuesim.worker import JobTimeoutError

__all__ = ["AttemptContext", "DependencyCalls", "FirstAttempt", "Outcome", "run_attempt"]

Attempt = Generator[simpy.Event, Any, "Outcome"]


@dataclass(slots=True)
class Outcome:
    """What an attempt ended with: ``error`` None for a success (then ``value`` is the return value)."""

    error: BaseException | None = None
    value: Any = None


@dataclass(slots=True)
class FirstAttempt:
    """The random draws of a job's first attempt, made when it arrives: service time (ms) and failure draw."""

    service_ms: int
    u: float | None


class DependencyCalls:
    """The call counters of the dependencies of one simulation (fixed windows)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    def call(self, dep: Dependency, now: int) -> tuple[str | None, int]:
        """Make one call at ``now``: returns (error class or None, retry-after ms for a rate-limited answer)."""
        if dep.down_at(now):
            end = min(e for s, e in dep.outages if s <= now < e)
            return dep.outage_error, max(1, end - now)
        if dep.max_calls is None:
            return None, 0
        window = now // dep.window_ms
        current, count = self._windows.get(dep.name, (window, 0))
        if current != window:
            count = 0
        if count >= dep.max_calls:
            self._windows[dep.name] = (window, count)
            return "rate-limited", max(1, (window + 1) * dep.window_ms - now)
        self._windows[dep.name] = (window, count + 1)
        return None, 0


def _error(kind: str, what: str, retry_after_ms: int) -> BaseException:
    if kind == "retryable":
        return RetryableError(f"{what}: temporary error")
    if kind == "permanent":
        return UnrecoverableError(f"{what}: permanent error")
    return RateLimitError(f"{what}: rate limited", retry_after_ms=retry_after_ms)


@dataclass(slots=True)
class AttemptContext:
    """Everything an attempt needs: the environment, its random streams and where to record saga steps.

    A job type's attempts draw through ``draws`` (its service and failure streams, drawn a block at a time,
    see :class:`queuesim.sim.streams.Draws`); a saga's steps, each with its own law, draw from the generators.
    """

    env: simpy.Environment
    service_rng: np.random.Generator
    failure_rng: np.random.Generator
    dependencies: DependencyCalls
    record_step: Callable[[str, str, str, int], None]
    draws: tuple[Callable[[], float], Callable[[], float]] | None = None


def _decide(ctx: AttemptContext, what: str, failures: Failures | None, dependency: Dependency | None,
            u: float | None) -> BaseException | None:
    """The outcome at the decision point: the dependency answers first, then the job's own failure draw."""
    now = int(ctx.env.now)
    if dependency is not None:
        kind, retry_after = ctx.dependencies.call(dependency, now)
        if kind is not None:
            return _error(kind, f"{what} ({dependency.name})", retry_after)
    if failures is not None and u is not None:
        kind = failures.error_class(u)
        if kind is not None:
            return _error(kind, what, failures.retry_after_ms)
    return None


def _work(ctx: AttemptContext, what: str, duration_ms: int, failures: Failures | None,
          dependency: Dependency | None, u: float | None, timeout_ms: int | None) -> Attempt:
    """Work for ``duration_ms``, deciding the outcome at ``decide_at`` of it; a job ``timeout`` cuts it short."""
    decide = duration_ms
    if failures is not None and failures.decide_at < 1:
        decide = int(failures.decide_at * duration_ms + 0.5)
    if timeout_ms is not None and timeout_ms < decide:
        yield ctx.env.timeout(timeout_ms)
        return Outcome(JobTimeoutError(f"{what} timed out after {timeout_ms} ms"))
    if decide:
        yield ctx.env.timeout(decide)
    error = _decide(ctx, what, failures, dependency, u)
    if error is not None:
        return Outcome(error)
    if timeout_ms is not None and duration_ms > timeout_ms:
        yield ctx.env.timeout(timeout_ms - decide)
        return Outcome(JobTimeoutError(f"{what} timed out after {timeout_ms} ms"))
    if duration_ms > decide:
        yield ctx.env.timeout(duration_ms - decide)
    return Outcome()


def _ms(value: float) -> int:
    return int(value + 0.5) if value > 0 else 0


def run_attempt(ctx: AttemptContext, spec: JobType | Saga, job: Job, first: FirstAttempt | None) -> Attempt:
    """Run one attempt of ``job`` (a :class:`JobType` or a :class:`Saga`) and return its outcome."""
    if isinstance(spec, Saga):
        return (yield from _run_saga(ctx, spec, job))
    if first is not None:
        duration, u = first.service_ms, first.u
    else:
        if ctx.draws is None:
            raise ValueError("a job type's attempt needs the job type's draws (AttemptContext.draws)")
        service, failure = ctx.draws
        duration = _ms(service())
        u = failure() if spec.failures is not None else None
    return (yield from _work(ctx, f"job {job.id}", duration, spec.failures, spec.dependency, u, job.opts.timeout))


def _run_saga(ctx: AttemptContext, saga: Saga, job: Job) -> Attempt:
    done = []
    for step in saga.steps:
        start = int(ctx.env.now)
        duration = _ms(step.service.sample(ctx.service_rng))
        u = ctx.failure_rng.random() if step.failures is not None else None
        outcome = yield from _work(ctx, f"job {job.id} step {step.name}", duration, step.failures, step.dependency,
                                   u, None)
        ctx.record_step(step.name, "execute", "ok" if outcome.error is None else "failed", start)
        if outcome.error is not None:
            # undo what was done, newest first; a failed undo is recorded and the others still run
            for previous in reversed(done):
                if previous.compensation is None:
                    continue
                begin = int(ctx.env.now)
                undo_ms = _ms(previous.compensation.sample(ctx.service_rng))
                undo_failed = ctx.failure_rng.random() < previous.compensation_failure
                if undo_ms:
                    yield ctx.env.timeout(undo_ms)
                ctx.record_step(previous.name, "compensate", "failed" if undo_failed else "ok", begin)
            return outcome
        done.append(step)
    return Outcome()
