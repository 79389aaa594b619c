"""The simulations the exercises run: small queue set-ups on the real engine, in virtual time.

Each function runs independent replications on the memory backend (the same engine as the embedded Redis, in
plain Python, much faster) and returns each metric's mean over the replications with its 95% confidence
interval. A run depends only on its arguments (fixed seeds), so the result is cached: checking a second file
against the same exercise does not simulate again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from queuesim.analysis.stats import Estimate
from queuesim.sim import Exponential, Failures, JobType, Poisson, SerialExecutor, Simulation, replicate

__all__ = ["mmc_run", "priority_run", "retry_run"]

#: The metrics kept from each replication.
METRICS = ("mean_wait_ms", "p_wait", "p95_wait_ms", "utilisation", "throughput_per_s", "goodput_per_s",
           "mean_attempts")


def _mmc(sim: Simulation, rate_per_s: float, mean_ms: float, workers: int) -> None:
    sim.queue("jobs")
    sim.add_workers("jobs", count=workers)
    sim.add_arrivals("jobs", JobType("job", Exponential(mean_ms)), Poisson(rate_per_s))


def _retry(sim: Simulation, rate_per_s: float, mean_ms: float, workers: int, p_fail: float, attempts: int,
           backoff_ms: int) -> None:
    sim.queue("jobs", dead_letter_queue="jobs-dlq")
    sim.add_workers("jobs", count=workers)
    job = JobType("job", Exponential(mean_ms), failures=Failures(retryable=p_fail),
                  options={"attempts": attempts, "backoff": {"type": "fixed", "delay": backoff_ms}})
    sim.add_arrivals("jobs", job, Poisson(rate_per_s))


def _priorities(sim: Simulation, rates_per_s: Sequence[float], means_ms: Sequence[float]) -> None:
    sim.queue("jobs")
    sim.add_workers("jobs", count=1)
    for k, (rate, mean) in enumerate(zip(rates_per_s, means_ms, strict=True)):
        # BullMQ: priority 1 is the highest; 0 would mean "no priority" and run before every prioritized job
        sim.add_arrivals("jobs", JobType(f"class-{k}", Exponential(mean), priority=k + 1), Poisson(rate))


def _standard(sim: Simulation, warmup_ms: int, end_ms: int) -> dict[str, float]:
    summary = sim.summary(warmup_ms, end_ms)
    return {m: summary[m] for m in METRICS}


def _per_class(sim: Simulation, warmup_ms: int, end_ms: int) -> dict[str, float]:
    jobs = sim.jobs()
    window = jobs[(jobs["created_ms"] >= warmup_ms) & (jobs["created_ms"] < end_ms)]
    return {f"wait_class_{int(p) - 1}_ms": float(part["wait_ms"].astype("float64").mean())
            for p, part in window.groupby("priority")}


Measure = Callable[[Simulation, int, int], dict[str, float]]


def _replicate(model: Callable[[Simulation], None], measure: Measure, replications: int, seed: int, until_ms: int,
               warmup_ms: int, end_ms: int) -> dict[str, Estimate]:
    reps = replicate(model, replications=replications, seed=seed, backend="memory", until_ms=until_ms,
                     warmup_ms=warmup_ms, end_ms=end_ms, measure=measure, executor=SerialExecutor(), progress=False)
    return {metric: reps.estimate(metric) for metric in reps.results.columns}


@functools.lru_cache(maxsize=64)
def mmc_run(rate_per_s: float, mean_ms: float, workers: int, *, replications: int = 6, seed: int = 1,
            until_ms: int = 1_600_000, warmup_ms: int = 100_000, end_ms: int = 1_500_000) -> dict[str, Estimate]:
    """An M/M/c queue: Poisson arrivals, exponential service, ``workers`` workers of concurrency 1."""
    model = functools.partial(_mmc, rate_per_s=rate_per_s, mean_ms=mean_ms, workers=workers)
    return _replicate(model, _standard, replications, seed, until_ms, warmup_ms, end_ms)


@functools.lru_cache(maxsize=16)
def retry_run(rate_per_s: float, mean_ms: float, workers: int, p_fail: float, attempts: int, backoff_ms: int, *,
              replications: int = 6, seed: int = 1, until_ms: int = 700_000, warmup_ms: int = 60_000,
              end_ms: int = 600_000) -> dict[str, Estimate]:
    """M/M/c whose attempts fail with probability ``p_fail``; a failed job retries through the delayed set
    (fixed backoff) up to ``attempts`` tries, then goes to the dead-letter queue."""
    model = functools.partial(_retry, rate_per_s=rate_per_s, mean_ms=mean_ms, workers=workers, p_fail=p_fail,
                              attempts=attempts, backoff_ms=backoff_ms)
    return _replicate(model, _standard, replications, seed, until_ms, warmup_ms, end_ms)


@functools.lru_cache(maxsize=16)
def priority_run(rates_per_s: tuple[float, ...], means_ms: tuple[float, ...], *, replications: int = 10,
                 seed: int = 1, until_ms: int = 3_200_000, warmup_ms: int = 200_000,
                 end_ms: int = 3_000_000) -> dict[str, Estimate]:
    """One worker, one job class per priority (class 0 gets BullMQ priority 1, the highest), exponential service."""
    model = functools.partial(_priorities, rates_per_s=rates_per_s, means_ms=means_ms)
    return _replicate(model, _per_class, replications, seed, until_ms, warmup_ms, end_ms)
