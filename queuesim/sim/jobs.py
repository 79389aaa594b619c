"""What the simulated jobs are: job types, their failure models, external dependencies and sagas.

A **job type** describes one kind of job a producer adds: its BullMQ job name, how long an attempt takes (a
law from :mod:`queuesim.sim.laws`), how attempts fail, its priority, the size of its data and its BullMQ job
options (``attempts``, ``backoff``, ``timeout``, ``remove_on_complete``…).

Failures are decided per attempt, by the error classes of :mod:`queuesim.errors`:

* *retryable* — a :class:`~queuesim.errors.RetryableError`: the job's ``attempts`` and ``backoff`` decide;
* *permanent* — an :class:`~queuesim.errors.UnrecoverableError`: the job fails for good now;
* *rate-limited* — a :class:`~queuesim.errors.RateLimitError` with ``retry_after_ms``: the job goes back to the
  head of the queue without using an attempt and the queue is rate limited for that long.

By default the outcome is known at the end of the service time (the worker worked the whole time, then the call
failed). With ``decide_at=0.1`` it is known after 10% of it, and a failing attempt ends there ("fail fast").

A **dependency** is an external service several job types call: it has outage windows (every call fails) and
may accept at most ``max_calls`` per ``window_ms`` (further calls are rate limited until the window ends).

A **saga** is a job made of named steps (reserve stock, charge the card, send the email). When a step fails,
the steps already done are *compensated* in reverse order (release the stock, refund the card); each
compensation takes time and may itself fail, which is recorded and does not stop the others. Then the attempt
fails with the step's error, and BullMQ's retry rules apply to the whole saga.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from queuesim.errors import OptionError
from queuesim.options import JobOptions
from queuesim.sim.laws import Law

__all__ = ["Dependency", "Failures", "JobType", "Saga", "SagaStep"]

#: Error classes a failure model can produce, by their names in scenarios.
ERROR_CLASSES = ("retryable", "permanent", "rate-limited")


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise OptionError(name, f"must be a probability between 0 and 1, got {value!r}")
    return float(value)


def _law(name: str, value: Any) -> Law:
    if not isinstance(value, Law):
        raise OptionError(name, f"must be a service-time law (Exponential, Deterministic, …), got {value!r}")
    return value


def _ms(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(name, f"must be an integer number of ms >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Failures:
    """Per-attempt failure probabilities of each error class.

    Attributes:
        retryable: probability that an attempt raises a RetryableError (attempts and backoff apply).
        permanent: probability of an UnrecoverableError (fails the job now).
        rate_limited: probability of a RateLimitError; the queue is then rate limited for ``retry_after_ms``.
        retry_after_ms: the wait a rate-limited answer asks for.
        decide_at: fraction of the service time after which the outcome is known (1 = at the end); a failing
            attempt ends there.
    """

    retryable: float = 0.0
    permanent: float = 0.0
    rate_limited: float = 0.0
    retry_after_ms: int = 1000
    decide_at: float = 1.0

    def __post_init__(self) -> None:
        total = 0.0
        for name in ("retryable", "permanent", "rate_limited"):
            total += _probability(name, getattr(self, name))
        if total > 1 + 1e-12:
            raise OptionError("retryable", f"retryable + permanent + rate_limited must be <= 1, got {total}")
        _ms("retry_after_ms", self.retry_after_ms, 1)
        d = self.decide_at
        if isinstance(d, bool) or not isinstance(d, int | float) or not 0 < d <= 1:
            raise OptionError("decide_at", f"must be a fraction in (0, 1], got {d!r}")

    def error_class(self, u: float) -> str | None:
        """The error class for a uniform number ``u`` in [0, 1), or None for a success."""
        if u < self.retryable:
            return "retryable"
        if u < self.retryable + self.permanent:
            return "permanent"
        if u < self.retryable + self.permanent + self.rate_limited:
            return "rate-limited"
        return None


@dataclass(frozen=True, slots=True)
class Dependency:
    """An external service called once per attempt, at the moment the attempt's outcome is decided.

    Attributes:
        name: a label (error messages and the dependency's call counter use it).
        outages: ``(start_ms, end_ms)`` windows during which every call fails.
        outage_error: the error class of a call during an outage (one of ``retryable``, ``permanent``,
            ``rate-limited``).
        max_calls: at most this many accepted calls per window (None: no limit).
        window_ms: the length of the fixed windows ``[k·window_ms, (k+1)·window_ms)``.
    """

    name: str
    outages: tuple[tuple[int, int], ...] = ()
    outage_error: str = "retryable"
    max_calls: int | None = None
    window_ms: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionError("name", f"must be a non-empty string, got {self.name!r}")
        windows = []
        for i, item in enumerate(self.outages):
            try:
                start, end = item
            except (TypeError, ValueError):
                raise OptionError(f"outages[{i}]", f"must be a (start_ms, end_ms) pair, got {item!r}") from None
            _ms(f"outages[{i}].start_ms", start)
            _ms(f"outages[{i}].end_ms", end)
            if end <= start:
                raise OptionError(f"outages[{i}]", f"end_ms must be after start_ms, got {item!r}")
            windows.append((start, end))
        object.__setattr__(self, "outages", tuple(sorted(windows)))
        if self.outage_error not in ERROR_CLASSES:
            raise OptionError("outage_error", f"must be one of {', '.join(ERROR_CLASSES)}, got {self.outage_error!r}")
        if self.max_calls is not None:
            _ms("max_calls", self.max_calls, 1)
        _ms("window_ms", self.window_ms, 1)

    def down_at(self, t_ms: int) -> bool:
        """Whether the service is in an outage at ``t_ms`` (windows are ``[start, end)``)."""
        return any(start <= t_ms < end for start, end in self.outages)


def _check_options(name: str, options: Mapping[str, Any], priority: int) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise OptionError(f"{name}.options", f"must be a mapping of job options, got {options!r}")
    opts = dict(options)
    if "priority" in opts and opts["priority"] != priority and priority != 0:
        raise OptionError(f"{name}.priority", f"given twice with different values ({priority} and "
                                              f"{opts['priority']}); use one of them")
    if priority:
        opts["priority"] = priority
    if "repeat" in opts:
        raise OptionError(f"{name}.options.repeat", "repeatable jobs are not simulated; use an arrival process")
    if "job_id" in opts:
        raise OptionError(f"{name}.options.job_id", "a fixed job id would make every arrival a duplicate")
    JobOptions.build(opts)  # validates every option now, before the simulation starts
    return opts


@dataclass(frozen=True, slots=True)
class JobType:
    """One kind of job.

    Attributes:
        name: the BullMQ job name (unique within a queue).
        service: the law of the duration of one attempt.
        failures: the per-attempt failure model (None: every attempt succeeds).
        dependency: an external service each attempt calls (None: none).
        priority: BullMQ priority (0 = none, 1 = highest).
        data_bytes: size of the job's data (a padding string of this many bytes).
        options: BullMQ job options, snake_case (``attempts``, ``backoff``, ``delay``, ``timeout``, ``lifo``,
            ``remove_on_complete``, ``remove_on_fail``…).
    """

    name: str
    service: Law
    failures: Failures | None = None
    dependency: Dependency | None = None
    priority: int = 0
    data_bytes: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionError("name", f"must be a non-empty string, got {self.name!r}")
        _law(f"{self.name}.service", self.service)
        _ms(f"{self.name}.data_bytes", self.data_bytes)
        if self.failures is not None and not isinstance(self.failures, Failures):
            raise OptionError(f"{self.name}.failures", f"must be a Failures(...), got {self.failures!r}")
        if self.dependency is not None and not isinstance(self.dependency, Dependency):
            raise OptionError(f"{self.name}.dependency", f"must be a Dependency(...), got {self.dependency!r}")
        object.__setattr__(self, "options", _check_options(self.name, self.options, self.priority))

    @property
    def effective_priority(self) -> int:
        return int(self.options.get("priority", 0))


@dataclass(frozen=True, slots=True)
class SagaStep:
    """One step of a saga.

    Attributes:
        name: the step's name (``"reserve-stock"``).
        service: the law of its duration.
        failures: how it fails (its ``decide_at`` applies within the step).
        dependency: an external service the step calls.
        compensation: the law of the duration of its undo (None: nothing to undo, e.g. a read).
        compensation_failure: probability that the undo fails (recorded; the other undos still run).
    """

    name: str
    service: Law
    failures: Failures | None = None
    dependency: Dependency | None = None
    compensation: Law | None = None
    compensation_failure: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionError("name", f"must be a non-empty string, got {self.name!r}")
        _law(f"{self.name}.service", self.service)
        if self.compensation is not None:
            _law(f"{self.name}.compensation", self.compensation)
        _probability(f"{self.name}.compensation_failure", self.compensation_failure)
        if self.failures is not None and not isinstance(self.failures, Failures):
            raise OptionError(f"{self.name}.failures", f"must be a Failures(...), got {self.failures!r}")


@dataclass(frozen=True, slots=True)
class Saga:
    """A job made of steps run in order, with compensation of the finished steps when one fails.

    Attributes:
        name: the BullMQ job name.
        steps: the steps, in execution order.
        priority, data_bytes, options: as for :class:`JobType`.
    """

    name: str
    steps: Sequence[SagaStep]
    priority: int = 0
    data_bytes: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionError("name", f"must be a non-empty string, got {self.name!r}")
        steps = tuple(self.steps)
        if not steps or not all(isinstance(s, SagaStep) for s in steps):
            raise OptionError(f"{self.name}.steps", "must be a non-empty list of SagaStep(...)")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise OptionError(f"{self.name}.steps", f"step names must be unique, got {names}")
        object.__setattr__(self, "steps", steps)
        _ms(f"{self.name}.data_bytes", self.data_bytes)
        if "timeout" in self.options:
            raise OptionError(f"{self.name}.options.timeout", "is not simulated for sagas (a step cannot be cut "
                                                              "short); give each step a shorter law instead")
        object.__setattr__(self, "options", _check_options(self.name, self.options, self.priority))

    @property
    def effective_priority(self) -> int:
        return int(self.options.get("priority", 0))

    @property
    def mean_ms(self) -> float:
        """Mean duration of a successful run (the sum of the steps' means)."""
        return math.fsum(s.service.mean_ms for s in self.steps)
