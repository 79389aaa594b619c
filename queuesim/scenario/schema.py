"""The scenario file format: what a TOML scenario may contain, field by field, with units in the names.

A scenario describes one queue set-up under load: its queues and their workers, the kinds of jobs producers add
(when they arrive, how long an attempt takes, how attempts fail, BullMQ job options, sagas), external services
the jobs call, a timeline of faults, how long to run, the warm-up, the number of replications, the seed and the
backend. Every duration says its unit in its name: ``_ms`` for milliseconds, ``_s`` for seconds.

Each class below is one table of the file. The classes are `pydantic <https://docs.pydantic.dev>`_ models:
they check types, ranges and allowed values, refuse unknown fields (a misspelt ``rate_per_sec`` is an error,
not silently ignored), and turn the file into the objects of :mod:`queuesim.sim`. The reference page
``docs/reference/scenario-schema.md`` is generated from these classes (:func:`queuesim.scenario.docs.schema_reference`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from queuesim import defaults
from queuesim.sim import arrivals as arr
from queuesim.sim import laws
from queuesim.sim.jobs import Dependency, Failures, JobType, Saga, SagaStep

__all__ = [
    "ArrivalSpec",
    "DependencySpec",
    "FailuresSpec",
    "FaultSpec",
    "HealthSpec",
    "HorizonSpec",
    "JobOptionsSpec",
    "JobSpec",
    "LawSpec",
    "QueueSpec",
    "ReportSpec",
    "Scenario",
    "WorkersSpec",
    "ms",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
#: The error classes a failing attempt can raise, by their names in scenario files.
ERROR_CLASSES = ("retryable", "permanent", "rate-limited")


def ms(seconds: float) -> int:
    """Seconds to whole milliseconds (the simulation's unit of time)."""
    return round(seconds * 1000)


class Spec(BaseModel):
    """Common settings: unknown fields are errors, and no silent type conversion ("5" is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=100)]
Probability = Annotated[float, Field(ge=0, le=1)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: Above this a number's square leaves floating point (about 1.3e154): the bound for what gets squared (the
#: durations of an empirical law, the sd/mean ratio of a lognormal one) when a variance is computed.
MAX_SQUARABLE = 1e150


# --- service-time laws -----------------------------------------------------------------------------------------


class ExponentialLaw(Spec):
    """Memoryless durations (the textbook M/M/c assumption); scv 1."""

    law: Literal["exponential"]
    mean_ms: PositiveFloat = Field(description="mean duration of one attempt")

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Exponential(self.mean_ms)


class DeterministicLaw(Spec):
    """Every attempt takes exactly the same time; scv 0."""

    law: Literal["deterministic"]
    value_ms: NonNegativeFloat = Field(description="the duration of every attempt")

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Deterministic(self.value_ms)


class UniformLaw(Spec):
    """Any duration between two bounds, equally likely."""

    law: Literal["uniform"]
    low_ms: NonNegativeFloat = Field(description="shortest duration")
    high_ms: PositiveFloat = Field(description="longest duration (> low_ms)")

    @model_validator(mode="after")
    def _order(self) -> UniformLaw:
        if self.high_ms <= self.low_ms:
            raise ValueError(f"high_ms must be greater than low_ms ({self.low_ms}), got {self.high_ms}")
        return self

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Uniform(self.low_ms, self.high_ms)


class ErlangLaw(Spec):
    """The sum of k similar exponential steps; scv 1/k."""

    law: Literal["erlang"]
    k: int = Field(ge=1, description="number of phases")
    mean_ms: PositiveFloat = Field(description="mean total duration")

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Erlang(self.k, self.mean_ms)


class GammaLaw(Spec):
    """A smooth law with any variability; scv 1/shape."""

    law: Literal["gamma"]
    shape: PositiveFloat = Field(description="shape parameter (scv = 1/shape)")
    mean_ms: PositiveFloat = Field(description="mean duration")

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Gamma(self.shape, self.mean_ms)


class LognormalLaw(Spec):
    """Mostly fast with a long tail, like calls over a network."""

    law: Literal["lognormal"]
    mean_ms: PositiveFloat = Field(description="mean duration (of the law itself, not of its log)")
    sd_ms: PositiveFloat = Field(description="standard deviation")

    @model_validator(mode="after")
    def _spread(self) -> LognormalLaw:
        ratio = self.sd_ms / self.mean_ms
        if ratio >= MAX_SQUARABLE:  # scv = (sd/mean)² would leave floating point: no law could be drawn
            raise ValueError(f"sd_ms / mean_ms is too large to compute ({self.sd_ms:g} / {self.mean_ms:g}); "
                             f"keep the ratio below {MAX_SQUARABLE:g}")
        return self

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.Lognormal(self.mean_ms, self.sd_ms)


class HyperExponentialLaw(Spec):
    """A mix of many short and a few very long jobs (two balanced exponential phases); scv > 1."""

    law: Literal["hyperexponential"]
    mean_ms: PositiveFloat = Field(description="mean duration")
    scv: float = Field(gt=1, allow_inf_nan=False, description="squared coefficient of variation (> 1)")

    def build(self, base: Path | None = None) -> laws.Law:
        return laws.HyperExponential.balanced(self.mean_ms, self.scv)


class EmpiricalLaw(Spec):
    """Replay measured durations: given inline (``values_ms``) or read from a CSV column (``path``)."""

    law: Literal["empirical"]
    values_ms: list[NonNegativeFloat] | None = Field(None, description="measured durations")
    path: str | None = Field(None, description="CSV file (relative to the scenario file) with a header line")
    column: str = Field("duration_ms", description="the CSV column holding durations in ms")

    @model_validator(mode="after")
    def _one_source(self) -> EmpiricalLaw:
        if (self.values_ms is None) == (self.path is None):
            raise ValueError("give exactly one of values_ms (a list) or path (a CSV file)")
        if self.values_ms is not None and not self.values_ms:
            raise ValueError("values_ms needs at least one duration")
        if self.values_ms is not None and max(self.values_ms) >= MAX_SQUARABLE:
            raise ValueError(f"values_ms: a duration of {max(self.values_ms):g} ms is too large to compute the law's "
                             f"variance; keep durations below {MAX_SQUARABLE:g} ms")
        return self

    def build(self, base: Path | None = None) -> laws.Law:
        if self.values_ms is not None:
            return laws.Empirical(tuple(self.values_ms))
        return laws.Empirical.from_csv(_relative(self.path or "", base), self.column)


LawSpec = Annotated[
    ExponentialLaw | DeterministicLaw | UniformLaw | ErlangLaw | GammaLaw | LognormalLaw | HyperExponentialLaw
    | EmpiricalLaw,
    Field(discriminator="law"),
]


def _relative(path: str, base: Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or base is None else base / p


# --- arrival processes -----------------------------------------------------------------------------------------


class _ArrivalCommon(Spec):
    batch_size: int = Field(1, ge=1, description="jobs added together at each arrival (an upload that queues "
                                                 "three resizes: 3)")
    start_s: NonNegativeFloat = Field(0, description="first possible arrival, from the start of the run")
    until_s: NonNegativeFloat | None = Field(None, description="no arrivals from this time on (default: the "
                                                               "horizon)")
    limit: int | None = Field(None, ge=1, description="stop after this many jobs from this source")

    def _batched(self, process: Any) -> Any:
        return arr.Batch(process, self.batch_size) if self.batch_size > 1 else process


#: upper bounds that keep a valid scenario runnable: a rate of 1e300 jobs per second, or a run of 1e300 s, is a
#: typo, not a plan (these are far above any real queue: a million jobs per second, ten years)
MAX_RATE_PER_S = 1_000_000.0
MAX_DURATION_S = 10 * 365 * 86_400.0
MAX_JOBS = 100_000_000
#: worker slots of one queue (count x concurrency); the closed-form model's Erlang C sums over them
MAX_SLOTS = 1_000_000


class PoissonArrivals(_ArrivalCommon):
    """Independent arrivals at a constant rate (exponential gaps): the M of M/M/c."""

    process: Literal["poisson"]
    rate_per_s: PositiveFloat = Field(le=MAX_RATE_PER_S, description="arrivals per second")

    def build(self, base: Path | None = None) -> Any:
        return self._batched(arr.Poisson(self.rate_per_s))


class PeriodicArrivals(_ArrivalCommon):
    """One arrival every ``interval_s``, like a cron."""

    process: Literal["periodic"]
    interval_s: PositiveFloat = Field(description="time between arrivals")
    offset_s: NonNegativeFloat = Field(0, description="first arrival, after start_s")

    def build(self, base: Path | None = None) -> Any:
        return self._batched(arr.Periodic(self.interval_s * 1000, self.offset_s * 1000))


class BurstArrivals(_ArrivalCommon):
    """A flash crowd: ``count`` jobs at each of the times ``at_s``."""

    process: Literal["burst"]
    at_s: list[NonNegativeFloat] = Field(min_length=1, description="times of the bursts")
    count: int = Field(ge=1, description="jobs per burst")

    def build(self, base: Path | None = None) -> Any:
        return self._batched(arr.Burst(tuple(t * 1000 for t in self.at_s), self.count))


class RateStep(Spec):
    start_s: NonNegativeFloat = Field(description="from this time on (within the cycle)")
    rate_per_s: NonNegativeFloat = Field(le=MAX_RATE_PER_S, description="arrivals per second")


class PiecewiseArrivals(_ArrivalCommon):
    """A schedule of constant rates (Poisson within each step), optionally repeated every ``cycle_s``."""

    process: Literal["piecewise"]
    schedule: list[RateStep] = Field(min_length=1, description="rates by start time, increasing")
    cycle_s: PositiveFloat | None = Field(None, description="repeat the schedule with this period")

    def build(self, base: Path | None = None) -> Any:
        pairs = tuple((s.start_s * 1000, s.rate_per_s) for s in self.schedule)
        return self._batched(arr.Piecewise(pairs, self.cycle_s * 1000 if self.cycle_s else None))


class DiurnalArrivals(_ArrivalCommon):
    """A daily cycle around a mean rate, busiest at ``peak_s`` of each period."""

    process: Literal["diurnal"]
    mean_rate_per_s: PositiveFloat = Field(le=MAX_RATE_PER_S, description="average arrivals per second")
    amplitude: Probability = Field(description="swing as a fraction of the mean (0…1)")
    period_s: PositiveFloat = Field(86_400, description="length of one cycle")
    peak_s: NonNegativeFloat = Field(50_400, description="busiest moment of a cycle (14:00 by default)")

    def build(self, base: Path | None = None) -> Any:
        return self._batched(arr.Diurnal(self.mean_rate_per_s, self.amplitude, self.period_s * 1000,
                                         self.peak_s * 1000))


class TraceArrivals(_ArrivalCommon):
    """Arrivals at recorded times read from a CSV column (e.g. a production log)."""

    process: Literal["trace"]
    path: str = Field(description="CSV file, relative to the scenario file")
    column: str = Field("timestamp_ms", description="the column holding the times")
    unit: Literal["ms", "s"] = Field("ms", description="unit of that column")

    def build(self, base: Path | None = None) -> Any:
        return self._batched(arr.TraceReplay.from_csv(_relative(self.path, base), self.column, self.unit))


ArrivalSpec = Annotated[
    PoissonArrivals | PeriodicArrivals | BurstArrivals | PiecewiseArrivals | DiurnalArrivals | TraceArrivals,
    Field(discriminator="process"),
]


# --- failures, dependencies, options ---------------------------------------------------------------------------


class OverloadSpec(Spec):
    """A busier downstream fails more: while more than ``above_active`` attempts of the job's queue are running
    when an attempt's outcome is decided, these probabilities replace the normal ones. This is the feedback
    behind retry storms: failures cause retries, retries keep the workers busy, busy workers cause failures."""

    above_active: int = Field(ge=0, description="the overload threshold: running attempts in the queue")
    retryable: Probability = Field(0.0, description="probability of a RetryableError while overloaded")
    permanent: Probability = Field(0.0, description="probability of an UnrecoverableError while overloaded")
    rate_limited: Probability = Field(0.0, description="probability of a RateLimitError while overloaded")

    @model_validator(mode="after")
    def _total(self) -> OverloadSpec:
        if self.retryable + self.permanent + self.rate_limited > 1 + 1e-12:
            raise ValueError("retryable + permanent + rate_limited must be <= 1")
        return self


class FailuresSpec(Spec):
    """Per-attempt probabilities of each error class (what the processor would throw)."""

    retryable: Probability = Field(0.0, description="RetryableError: attempts and backoff decide what happens")
    permanent: Probability = Field(0.0, description="UnrecoverableError: the job fails for good at once")
    rate_limited: Probability = Field(0.0, description="RateLimitError: back to the queue without using an "
                                                       "attempt; the queue waits retry_after_ms")
    retry_after_ms: int = Field(1000, ge=1, description="the wait a rate-limited answer asks for")
    decide_at: float = Field(1.0, gt=0, le=1, description="fraction of the attempt after which the outcome is "
                                                         "known (1: at the end; 0.1: failing attempts end early)")
    overload: OverloadSpec | None = Field(None, description="load-dependent failures (see the table below)")

    @model_validator(mode="after")
    def _total(self) -> FailuresSpec:
        if self.retryable + self.permanent + self.rate_limited > 1 + 1e-12:
            raise ValueError("retryable + permanent + rate_limited must be <= 1")
        return self


class OutageSpec(Spec):
    start_s: NonNegativeFloat = Field(description="the service goes down")
    end_s: NonNegativeFloat = Field(description="it is back (> start_s)")

    @model_validator(mode="after")
    def _order(self) -> OutageSpec:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s must be after start_s ({self.start_s}), got {self.end_s}")
        return self


class DependencySpec(Spec):
    """An external service (an email provider, a payment gateway) that attempts call when their outcome is
    decided: during an outage every call fails; beyond ``max_calls`` per window a call is rate limited."""

    name: Name = Field(description="referred to by jobs.dependency")
    outages: list[OutageSpec] = Field(default_factory=list, description="windows when every call fails")
    outage_error: Literal["retryable", "permanent", "rate-limited"] = Field(
        "retryable", description="error class of a call during an outage")
    max_calls: int | None = Field(None, ge=1, description="calls accepted per window (none: no quota)")
    window_ms: int = Field(1000, ge=1, description="length of the quota window")

    def build(self) -> Dependency:
        return Dependency(self.name, tuple((ms(o.start_s), ms(o.end_s)) for o in self.outages),
                          self.outage_error, self.max_calls, self.window_ms)


class BackoffSpec(Spec):
    """BullMQ's backoff: the wait before the next attempt of a failed job."""

    type: Literal["fixed", "exponential"] = Field(description="fixed: delay_ms every time; exponential: "
                                                              "delay_ms, 2·delay_ms, 4·delay_ms…")
    delay_ms: int = Field(ge=0, description="the (first) wait")
    jitter: Probability = Field(0.0, description="spread each wait over [d·(1-jitter), d]")


class KeepSpec(Spec):
    count: int | None = Field(None, ge=0, description="keep this many newest jobs")
    age_s: int | None = Field(None, ge=0, description="keep jobs younger than this")


class JobOptionsSpec(Spec):
    """BullMQ job options, with units in the names (``delay_ms`` is BullMQ's ``delay``)."""

    attempts: int | None = Field(None, ge=0, le=1_000_000, description="total tries (1: no retry)")
    backoff: BackoffSpec | None = Field(None, description="wait between tries")
    delay_ms: int | None = Field(None, ge=0, description="wait before the job becomes ready")
    delay_s: NonNegativeFloat | None = Field(None, description="the same in seconds (give one of the two)")
    timeout_ms: int | None = Field(None, ge=1, description="an attempt running longer fails (queuesim extension)")
    lifo: bool | None = Field(None, description="add at the head of the wait list")
    remove_on_complete: bool | int | KeepSpec | None = Field(None, description="finished jobs to keep")
    remove_on_fail: bool | int | KeepSpec | None = Field(None, description="failed jobs to keep")

    @model_validator(mode="after")
    def _one_delay(self) -> JobOptionsSpec:
        if self.delay_ms is not None and self.delay_s is not None:
            raise ValueError("give delay_ms or delay_s, not both")
        return self

    def engine(self) -> dict[str, Any]:
        """The options in the engine's form (BullMQ names, ms)."""
        out: dict[str, Any] = {}
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.backoff is not None:
            out["backoff"] = {"type": self.backoff.type, "delay": self.backoff.delay_ms}
            if self.backoff.jitter:
                out["backoff"]["jitter"] = self.backoff.jitter
        if self.delay_ms is not None:
            out["delay"] = self.delay_ms
        elif self.delay_s is not None:
            out["delay"] = ms(self.delay_s)
        if self.timeout_ms is not None:
            out["timeout"] = self.timeout_ms
        if self.lifo is not None:
            out["lifo"] = self.lifo
        for key in ("remove_on_complete", "remove_on_fail"):
            value = getattr(self, key)
            if isinstance(value, KeepSpec):
                keep: dict[str, int] = {}
                if value.count is not None:
                    keep["count"] = value.count
                if value.age_s is not None:
                    keep["age"] = value.age_s
                out[key] = keep
            elif value is not None:
                out[key] = value
        return out


class SagaStepSpec(Spec):
    """One step of a saga; when a later step fails, the finished steps are undone newest first."""

    name: Name = Field(description="the step's name (reserve-stock)")
    service: LawSpec = Field(description="duration of the step")
    failures: FailuresSpec | None = Field(None, description="how the step fails")
    dependency: Name | None = Field(None, description="an external service the step calls")
    compensation: LawSpec | None = Field(None, description="duration of the undo (none: nothing to undo)")
    compensation_failure: Probability = Field(0.0, description="probability that the undo fails (recorded; "
                                                               "the other undos still run)")


class JobSpec(Spec):
    """One kind of job a producer adds: a plain job (``service``) or a saga (``steps``)."""

    name: Name = Field(description="the BullMQ job name")
    queue: Name | None = Field(None, description="its queue (may be left out when there is only one)")
    priority: int = Field(0, ge=0, le=defaults.MAX_PRIORITY,
                          description="BullMQ priority: 0 = none (runs before every prioritized job!), "
                                      "1 = highest, larger = lower")
    service: LawSpec | None = Field(None, description="duration of one attempt")
    steps: list[SagaStepSpec] | None = Field(None, description="saga steps, in order (instead of service)")
    failures: FailuresSpec | None = Field(None, description="how attempts fail")
    dependency: Name | None = Field(None, description="an external service every attempt calls")
    data_bytes: int = Field(0, ge=0, description="size of the job's data")
    options: JobOptionsSpec = Field(default_factory=JobOptionsSpec, description="BullMQ job options")
    arrivals: ArrivalSpec | None = Field(None, description="when producers add jobs of this kind")
    backlog: int = Field(0, ge=0, le=MAX_JOBS, description="jobs already waiting at the start")

    @model_validator(mode="after")
    def _shape(self) -> JobSpec:
        if (self.service is None) == (self.steps is None):
            raise ValueError("give either service (a plain job) or steps (a saga), not both or neither")
        if self.steps is not None:
            if not self.steps:
                raise ValueError("steps needs at least one step")
            if self.failures is not None or self.dependency is not None:
                raise ValueError("a saga's failures and dependency belong to its steps")
            if self.options.timeout_ms is not None:
                raise ValueError("options.timeout_ms is not simulated for sagas; give the steps shorter laws")
            names = [s.name for s in self.steps]
            if len(set(names)) != len(names):
                raise ValueError(f"step names must be unique, got {names}")
        return self


class LimiterSpec(Spec):
    """BullMQ's worker rate limiter: at most ``max`` job starts per ``duration_ms``, shared by all workers."""

    max: int = Field(ge=1, description="job starts per window")
    duration_ms: int = Field(ge=1, description="window length")


class WorkersSpec(Spec):
    """The worker processes of a queue (BullMQ worker options, with units in the names)."""

    count: int = Field(1, ge=1, le=10_000, description="worker processes (ids <queue>-w1, <queue>-w2…)")
    concurrency: int = Field(1, ge=1, le=100_000, description="jobs each worker runs at once")
    lock_duration_ms: int = Field(defaults.LOCK_DURATION_MS, ge=1, description="lock on an active job")
    lock_renew_time_ms: int | None = Field(None, ge=1, description="renewal period (default lock_duration/2)")
    stalled_interval_ms: int = Field(defaults.STALLED_INTERVAL_MS, ge=1, description="period of the stalled check")
    max_stalled_count: int = Field(defaults.MAX_STALLED_COUNT, ge=0,
                                   description="stalls allowed before the job fails")
    max_started_attempts: int | None = Field(None, ge=0, description="starts allowed (none: no limit)")
    skip_lock_renewal: bool = Field(False, description="never renew locks")
    skip_stalled_check: bool = Field(False, description="never run the stalled check")
    limiter: LimiterSpec | None = Field(None, description="rate limit of job starts")

    def engine(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lock_duration": self.lock_duration_ms, "stalled_interval": self.stalled_interval_ms,
                               "max_stalled_count": self.max_stalled_count}
        if self.lock_renew_time_ms is not None:
            out["lock_renew_time"] = self.lock_renew_time_ms
        if self.max_started_attempts is not None:
            out["max_started_attempts"] = self.max_started_attempts
        if self.skip_lock_renewal:
            out["skip_lock_renewal"] = True
        if self.skip_stalled_check:
            out["skip_stalled_check"] = True
        if self.limiter is not None:
            out["limiter"] = {"max": self.limiter.max, "duration": self.limiter.duration_ms}
        return out


class QueueSpec(Spec):
    """A queue, its workers and where its dead jobs go."""

    name: Name = Field(description="the queue name")
    dead_letter_queue: Name | None = Field(None, description="queue receiving the jobs that fail for good")
    default_job_options: JobOptionsSpec | None = Field(None, description="options under every job's own")
    workers: WorkersSpec = Field(default_factory=WorkersSpec, description="its workers")


# --- faults timeline -------------------------------------------------------------------------------------------


class CrashWorker(Spec):
    """The worker process dies; its jobs keep their locks until they expire, then a stalled check of another
    worker puts them back."""

    action: Literal["crash-worker"]
    at_s: NonNegativeFloat = Field(description="when")
    worker: Name = Field(description="worker id, <queue>-w<n>")


class FreezeWorker(Spec):
    """The worker's event loop is blocked (no lock renewal, no calls) for a while."""

    action: Literal["freeze-worker"]
    at_s: NonNegativeFloat = Field(description="when")
    worker: Name = Field(description="worker id, <queue>-w<n>")
    duration_s: PositiveFloat = Field(description="how long it stays frozen")


class AddWorkers(Spec):
    """More workers start (same settings as the queue's workers unless given)."""

    action: Literal["add-workers"]
    at_s: NonNegativeFloat = Field(description="when")
    queue: Name | None = Field(None, description="which queue (may be left out when there is only one)")
    count: int = Field(1, ge=1, description="how many")
    concurrency: int | None = Field(None, ge=1, description="their concurrency (default: the queue's)")


class RemoveWorkers(Spec):
    """Workers stop: gracefully (finish running jobs) or by force (like a crash)."""

    action: Literal["remove-workers"]
    at_s: NonNegativeFloat = Field(description="when")
    workers: list[Name] = Field(min_length=1, description="worker ids")
    graceful: bool = Field(True, description="finish running jobs first")


class PauseQueue(Spec):
    """The queue is paused: running jobs finish, nothing new starts."""

    action: Literal["pause-queue"]
    at_s: NonNegativeFloat = Field(description="when")
    queue: Name | None = Field(None, description="which queue (may be left out when there is only one)")


class ResumeQueue(Spec):
    """The queue is resumed."""

    action: Literal["resume-queue"]
    at_s: NonNegativeFloat = Field(description="when")
    queue: Name | None = Field(None, description="which queue (may be left out when there is only one)")


class AddBacklog(Spec):
    """A pile of jobs arrives at once (start mid-incident, or a batch import)."""

    action: Literal["backlog"]
    at_s: NonNegativeFloat = Field(description="when")
    job: Name = Field(description="name of a job type of the scenario")
    count: int = Field(ge=1, le=MAX_JOBS, description="how many jobs")


FaultSpec = Annotated[
    CrashWorker | FreezeWorker | AddWorkers | RemoveWorkers | PauseQueue | ResumeQueue | AddBacklog,
    Field(discriminator="action"),
]


# --- run settings ----------------------------------------------------------------------------------------------


class HorizonSpec(Spec):
    """How long to run: a duration or a number of jobs, the warm-up left out of the metrics, and the drain."""

    duration_s: PositiveFloat | None = Field(None, le=MAX_DURATION_S, description="producers add jobs for this long")
    jobs: int | None = Field(None, ge=1, le=MAX_JOBS,
                             description="or: producers stop once this many jobs were added")
    warmup_s: NonNegativeFloat = Field(0, description="left out of the metrics (the run starts empty)")
    tail_s: NonNegativeFloat = Field(0, description="arrivals go on this long after the measurement window, so "
                                                    "that the last measured jobs meet the same competition as the "
                                                    "others (matters with priorities: later urgent jobs overtake)")
    drain: bool = Field(True, description="after the horizon, stop arrivals and let the queues empty")
    drain_limit_s: PositiveFloat = Field(3_600, description="longest drain")
    max_duration_s: PositiveFloat = Field(30 * 86_400, description="safety limit for a horizon in jobs")

    @model_validator(mode="after")
    def _one(self) -> HorizonSpec:
        if (self.duration_s is None) == (self.jobs is None):
            raise ValueError("give exactly one of duration_s (a time) or jobs (a number of jobs)")
        if self.duration_s is not None and self.warmup_s + self.tail_s >= self.duration_s:
            raise ValueError(f"warmup_s + tail_s ({self.warmup_s + self.tail_s}) must be shorter than duration_s "
                             f"({self.duration_s})")
        return self


class HealthSpec(Spec):
    """The seed's health rules, checked every ``interval_s``; the alerts go into the summary."""

    enabled: bool = Field(True, description="run the health checks")
    interval_s: PositiveFloat = Field(30, description="time between checks")
    window_s: PositiveFloat = Field(60, description="recent-window length of the rates")
    waiting_warning: int = Field(1000, ge=0, description="backlog above which a warning is raised")
    error_rate_warning: Probability = Field(0.2, description="error rate of a warning")
    error_rate_critical: Probability = Field(0.5, description="error rate of a critical alert")
    slow_processing_ms: int = Field(30_000, ge=1, description="average processing time of a warning")


class ReportSpec(Spec):
    """Chart settings (all optional)."""

    timeline_start_s: NonNegativeFloat | None = Field(None, description="start of the swimlane timeline "
                                                                       "(default: around the first incident)")
    timeline_span_s: PositiveFloat | None = Field(None, description="length of the swimlane timeline")
    bin_s: PositiveFloat | None = Field(None, description="width of the time bins of timeseries.csv")


class Scenario(Spec):
    """A whole scenario file."""

    name: Name = Field(description="short name (used for the output and in reports)")
    title: str = Field("", max_length=200, description="one-line title")
    description: str = Field("", description="what the scenario shows, in plain words")
    seed: int = Field(1, ge=0, description="root seed: the same seed gives the same run")
    backend: Literal["fakeredis", "memory"] = Field("fakeredis", description="the embedded Redis (Lua scripts) "
                                                                             "or the faster memory backend")
    replications: int = Field(1, ge=1, le=10_000, description="independent runs (2+ give confidence intervals)")
    horizon: HorizonSpec = Field(description="how long to run")
    queues: list[QueueSpec] = Field(min_length=1, description="the queues")
    jobs: list[JobSpec] = Field(min_length=1, description="the kinds of jobs")
    dependencies: list[DependencySpec] = Field(default_factory=list, description="external services")
    faults: list[FaultSpec] = Field(default_factory=list, description="the faults timeline")
    health: HealthSpec = Field(default_factory=HealthSpec, description="health checks")
    report: ReportSpec = Field(default_factory=ReportSpec, description="chart settings")

    @field_validator("queues")
    @classmethod
    def _unique_queues(cls, value: list[QueueSpec]) -> list[QueueSpec]:
        names = [q.name for q in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"queue names must be unique, repeated: {dupes}")
        return value

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        queues = [q.name for q in self.queues]
        deps = [d.name for d in self.dependencies]
        served: dict[str, str] = {}
        for i, q in enumerate(self.queues):
            if q.dead_letter_queue in queues:
                raise ValueError(f"queues[{i}] ({q.name}).dead_letter_queue: a dead-letter queue cannot also be a "
                                 f"worked queue: {q.dead_letter_queue!r}")
            if q.dead_letter_queue is not None:
                owner = served.setdefault(q.dead_letter_queue, q.name)
                if owner != q.name:
                    raise ValueError(f"queues[{i}] ({q.name}).dead_letter_queue: {q.dead_letter_queue!r} already "
                                     f"serves queue {owner!r}; a dead-letter queue serves one queue (give each "
                                     "queue its own)")
            slots = q.workers.count * q.workers.concurrency if q.workers is not None else 0
            if slots > MAX_SLOTS:
                raise ValueError(f"queues[{i}] ({q.name}).workers: count x concurrency = {slots:,} worker slots; "
                                 f"at most {MAX_SLOTS:,}")
        seen: set[tuple[str, str]] = set()
        for i, job in enumerate(self.jobs):
            q = self.queue_of(job.queue, f"jobs[{i}].queue")
            if (q, job.name) in seen:
                raise ValueError(f"jobs[{i}]: queue {q!r} already has a job type named {job.name!r}")
            seen.add((q, job.name))
            refs = [job.dependency] + [s.dependency for s in job.steps or []]
            for ref in refs:
                if ref is not None and ref not in deps:
                    raise ValueError(f"jobs[{i}].dependency: unknown dependency {ref!r}; allowed: "
                                     f"{', '.join(deps) or 'none (add a [[dependencies]] table)'}")
            if job.arrivals is None and job.backlog == 0 and not any(
                    isinstance(f, AddBacklog) and f.job == job.name for f in self.faults):
                raise ValueError(f"jobs[{i}] ({job.name}): no arrivals, no backlog and no backlog fault: no job "
                                 "of this kind would ever be added")
        workers = self.worker_ids()
        names = [j.name for j in self.jobs]
        for i, fault in enumerate(self.faults):
            where = f"faults[{i}]"
            if isinstance(fault, CrashWorker | FreezeWorker) and fault.worker not in workers:
                raise ValueError(f"{where}.worker: unknown worker {fault.worker!r}; allowed: {', '.join(workers)}")
            if isinstance(fault, RemoveWorkers):
                for w in fault.workers:
                    if w not in workers:
                        raise ValueError(f"{where}.workers: unknown worker {w!r}; allowed: {', '.join(workers)}")
            if isinstance(fault, AddWorkers | PauseQueue | ResumeQueue):
                self.queue_of(fault.queue, f"{where}.queue")
            if isinstance(fault, AddBacklog) and fault.job not in names:
                raise ValueError(f"{where}.job: unknown job type {fault.job!r}; allowed: {', '.join(names)}")
        if self.horizon.duration_s is not None:
            end = self.horizon.duration_s
            for i, fault in enumerate(self.faults):
                if fault.at_s > end + self.horizon.drain_limit_s:
                    raise ValueError(f"faults[{i}].at_s: {fault.at_s} s is after the end of the run ({end} s)")
        return self

    def queue_of(self, name: str | None, where: str = "queue") -> str:
        """The queue a job or fault refers to (the only queue when ``name`` is None)."""
        queues = [q.name for q in self.queues]
        if name is None:
            if len(queues) > 1:
                raise ValueError(f"{where}: required when there are several queues; allowed: {', '.join(queues)}")
            return queues[0]
        if name not in queues:
            raise ValueError(f"{where}: unknown queue {name!r}; allowed: {', '.join(queues)}")
        return name

    def worker_ids(self) -> list[str]:
        """Every worker id the scenario starts (at the start and by add-workers faults), in order."""
        counts = {q.name: q.workers.count for q in self.queues}
        ids = [f"{q}-w{n}" for q, c in counts.items() for n in range(1, c + 1)]
        for fault in sorted((f for f in self.faults if isinstance(f, AddWorkers)), key=lambda f: f.at_s):
            try:
                q = self.queue_of(fault.queue)
            except ValueError:
                continue
            first = counts[q] + 1
            counts[q] += fault.count
            ids.extend(f"{q}-w{n}" for n in range(first, counts[q] + 1))
        return ids

    def queue_spec(self, name: str) -> QueueSpec:
        return next(q for q in self.queues if q.name == name)

    def job_spec(self, name: str) -> JobSpec:
        return next(j for j in self.jobs if j.name == name)

    # --- to simulation objects ---------------------------------------------------------------------------------

    def job_types(self, base: Path | None = None, overload_probe: Any = None) -> dict[str, JobType | Saga]:
        """The :mod:`queuesim.sim` job types of the scenario, by job name."""
        deps = {d.name: d.build() for d in self.dependencies}
        out: dict[str, JobType | Saga] = {}
        for job in self.jobs:
            opts = job.options.engine()
            if job.steps is not None:
                steps = [SagaStep(s.name, s.service.build(base), _failures(s.failures, None),
                                  deps.get(s.dependency) if s.dependency else None,
                                  s.compensation.build(base) if s.compensation is not None else None,
                                  s.compensation_failure) for s in job.steps]
                out[job.name] = Saga(job.name, steps, job.priority, job.data_bytes, opts)
            else:
                assert job.service is not None
                probe = overload_probe(self.queue_of(job.queue)) if overload_probe and job.failures and \
                    job.failures.overload else None
                out[job.name] = JobType(job.name, job.service.build(base), _failures(job.failures, probe),
                                        deps.get(job.dependency) if job.dependency else None, job.priority,
                                        job.data_bytes, opts)
        return out


class OverloadFailures(Failures):
    """:class:`~queuesim.sim.jobs.Failures` whose probabilities switch to the ``overload`` ones while the queue
    has more than ``above_active`` running attempts (read through ``probe`` when the outcome is decided)."""

    __slots__ = ("_overload", "_probe")

    def __init__(self, base: FailuresSpec, probe: Any) -> None:
        Failures.__init__(self, base.retryable, base.permanent, base.rate_limited, base.retry_after_ms,
                          base.decide_at)
        assert base.overload is not None
        object.__setattr__(self, "_overload", base.overload)
        object.__setattr__(self, "_probe", probe)

    def error_class(self, u: float) -> str | None:
        over = self._overload
        if self._probe() <= over.above_active:
            return Failures.error_class(self, u)
        if u < over.retryable:
            return "retryable"
        if u < over.retryable + over.permanent:
            return "permanent"
        if u < over.retryable + over.permanent + over.rate_limited:
            return "rate-limited"
        return None

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def _failures(spec: FailuresSpec | None, probe: Any) -> Failures | None:
    if spec is None:
        return None
    if spec.overload is not None and probe is not None:
        return OverloadFailures(spec, probe)
    return Failures(spec.retryable, spec.permanent, spec.rate_limited, spec.retry_after_ms, spec.decide_at)


def law_summary(law: laws.Law) -> str:
    """``mean 800 ms, scv 0.25``: what the queueing formulas see of a law."""
    scv = law.scv
    return f"mean {law.mean_ms:,.0f} ms, scv {scv:.3g}" if math.isfinite(scv) else f"mean {law.mean_ms:,.0f} ms"


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "scenario"
