"""Simulation against queueing theory: the checks behind ``queuesim verify``.

Each check is a small scenario whose closed form is known (M/M/1, M/M/3 with Erlang C, M/D/1 with
Pollaczek-Khinchine, two priority classes with Cobham's formula, retries through the queue with a backoff). It
is run in R independent replications on the memory backend; each metric's exact value must lie inside the
simulated confidence interval.

The default run is short (a few seconds on two cores): its intervals are wide, so it catches gross errors. The
``full`` run uses eight times longer replications and more of them. The confidence level is 99% by default:
with about twenty metrics checked at once, 95% intervals would miss the exact value about once per run by chance
alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from queuesim.analysis.stats import t_interval
from queuesim.scenario.loader import load_scenario
from queuesim.scenario.runner import run_scenario, scenario_laws
from queuesim.scenario.theory import theory_for

__all__ = ["CHECKS", "CheckResult", "checks", "run_checks"]


def _base(name: str, rate: float, workers: int, service: dict[str, Any], duration_s: float,
          warmup_s: float) -> dict[str, Any]:
    return {
        "name": name, "backend": "memory",
        "horizon": {"duration_s": duration_s, "warmup_s": warmup_s},
        "queues": [{"name": "q", "workers": {"count": workers}}],
        "jobs": [{"name": "job", "service": service, "arrivals": {"process": "poisson", "rate_per_s": rate}}],
        "health": {"enabled": False},
    }


def _mm1(d: float) -> dict[str, Any]:
    return _base("mm1-rho-0.5", 0.5, 1, {"law": "exponential", "mean_ms": 1000}, 3000 * d, 200)


def _mm3(d: float) -> dict[str, Any]:
    return _base("mm3-erlang-c-rho-0.7", 2.1, 3, {"law": "exponential", "mean_ms": 1000}, 1000 * d, 150)


def _md1(d: float) -> dict[str, Any]:
    return _base("md1-pollaczek-khinchine", 0.6, 1, {"law": "deterministic", "value_ms": 1000}, 2500 * d, 200)


def _priorities(d: float) -> dict[str, Any]:
    cfg = _base("cobham-priority-0-first", 0.3, 1, {"law": "exponential", "mean_ms": 1000}, 4000 * d, 300)
    cfg["horizon"]["tail_s"] = 200
    cfg["jobs"] = [
        {"name": "urgent", "priority": 1, "service": {"law": "exponential", "mean_ms": 1000},
         "arrivals": {"process": "poisson", "rate_per_s": 0.2}},
        {"name": "no-priority", "service": {"law": "exponential", "mean_ms": 1000},
         "arrivals": {"process": "poisson", "rate_per_s": 0.3}},
    ]
    return cfg


def _retries(d: float) -> dict[str, Any]:
    cfg = _base("retries-through-the-queue", 0.4, 1, {"law": "exponential", "mean_ms": 1000}, 3000 * d, 200)
    cfg["queues"][0]["dead_letter_queue"] = "q-dlq"
    cfg["jobs"][0]["failures"] = {"retryable": 0.2}
    cfg["jobs"][0]["options"] = {"attempts": 3, "backoff": {"type": "fixed", "delay_ms": 1000}}
    return cfg


#: (name, what it checks, scenario builder taking a duration factor)
CHECKS: tuple[tuple[str, str, Callable[[float], dict[str, Any]]], ...] = (
    ("M/M/1", "Poisson arrivals, exponential service, one worker, ρ = 0.5", _mm1),
    ("M/M/3", "Erlang C: three workers, ρ = 0.7", _mm3),
    ("M/D/1", "Pollaczek-Khinchine: constant 1 s service, ρ = 0.6", _md1),
    ("priorities", "Cobham: priority-0 jobs before priority-1 jobs on one worker, ρ = 0.5", _priorities),
    ("retries", "retryable failures (p = 0.2, 3 attempts, 1 s backoff) through the queue", _retries),
)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One metric of one check: the exact value, the simulated mean and half-width, and the verdict."""

    check: str
    description: str
    metric: str
    exact: float
    mean: float
    half_width: float
    replications: int

    @property
    def ok(self) -> bool:
        return abs(self.mean - self.exact) <= self.half_width

    @property
    def relative_error(self) -> float:
        return (self.mean - self.exact) / self.exact if self.exact else 0.0


def checks(full: bool = False) -> list[tuple[str, str, dict[str, Any], int]]:
    """The checks as (name, description, scenario config, replications)."""
    factor, reps = (8.0, 10) if full else (1.0, 6)
    return [(name, text, build(factor), reps) for name, text, build in CHECKS]


def run_checks(*, full: bool = False, seed: int = 1, backend: str = "memory", confidence: float = 0.99,
               only: list[str] | None = None, on_progress: Callable[[str, float], None] | None = None,
               ) -> list[CheckResult]:
    """Run the checks; returns one result per metric compared."""
    out: list[CheckResult] = []
    for index, (name, text, config, reps) in enumerate(checks(full)):
        if only and name not in only:
            continue
        cfg = copy.deepcopy(config)
        cfg["backend"] = backend
        loaded = load_scenario(cfg)
        # a seed of its own per check: the checks share job names, so one seed would give them the same
        # random numbers and make their errors move together
        result = run_scenario(loaded, seed=seed * 1000 + index, replications=reps, tables=False,
                              on_progress=(lambda f, n=name: on_progress(n, f)) if on_progress else None)
        model = theory_for(loaded.scenario, scenario_laws(loaded.scenario))
        assert model is not None, f"check {name}: no closed form applies (a bug in the check)"
        for metric, exact in model.metrics.items():
            e = t_interval(result.metric_values(metric), confidence)
            out.append(CheckResult(name, text, metric, exact, e.mean, e.half_width, e.n))
        for job, metrics in model.by_name.items():
            for metric, exact in metrics.items():
                e = t_interval(result.metric_values(metric, "by_name", job), confidence)
                out.append(CheckResult(name, text, f"{metric} of {job}", exact, e.mean, e.half_width, e.n))
    return out
