"""Which closed-form queueing result, if any, describes a scenario, and its exact values.

A formula applies only when the scenario is exactly the textbook model: one queue, Poisson arrivals from the
start and for the whole horizon, no faults, no rate limiter, no external services, no delays, first come first
served within a priority. Then:

| scenario | model | formula (:mod:`queuesim.theory`) |
|---|---|---|
| exponential service, c = workers x concurrency | M/M/c | Erlang C (``mmc``) |
| any service law, one slot | M/G/1 | Pollaczek-Khinchine (``mg1``) |
| several priorities, one slot | non-preemptive priorities | Cobham (``priority_nonpreemptive``) |
| exponential service, retryable failures, fixed or exponential backoff | retries via the queue | ``retry_via_queue`` |

BullMQ runs priority-0 jobs (no priority) before every prioritized job, then priority 1, 2, …: that is the class
order given to Cobham's formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from queuesim import theory
from queuesim.scenario.schema import JobSpec, PoissonArrivals, Scenario
from queuesim.sim.laws import Law, second_moment

__all__ = ["TheoryModel", "mmc_sojourn_cdf", "quantile_from_cdf", "theory_for"]


@dataclass
class TheoryModel:
    """The exact values a scenario's metrics should approach in the long run.

    Attributes:
        model: the model's name (``M/M/4``).
        formula: which result gives the values.
        metrics: exact long-run values, under the names of the summary metrics (times in ms).
        by_name: exact values per job name (for priority classes).
        sojourn_cdf: P(sojourn ≤ t ms), when known in closed form.
        notes: caveats worth showing next to the comparison.
    """

    model: str
    formula: str
    metrics: dict[str, float]
    by_name: dict[str, dict[str, float]] = field(default_factory=dict)
    sojourn_cdf: Callable[[float], float] | None = None
    notes: list[str] = field(default_factory=list)

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the sojourn time in ms (None without a closed-form CDF)."""
        if self.sojourn_cdf is None:
            return None
        return quantile_from_cdf(self.sojourn_cdf, q, self.metrics.get("mean_sojourn_ms", 1000.0))


def mmc_sojourn_cdf(lam: float, mu: float, c: int) -> Callable[[float], float]:
    """P(T ≤ t) of the M/M/c sojourn time (FCFS), t and rates in the same unit.

    T = Wq + S: with probability 1 - C the job does not wait (T = S, exponential with rate μ); otherwise Wq is
    exponential with rate a = cμ - λ and T is the sum of two exponentials (a hypoexponential law).
    """
    m = theory.mmc(lam, mu, c)
    p_wait = m.p_wait
    a = c * mu - lam

    def cdf(t: float) -> float:
        if t <= 0:
            return 0.0
        service = 1 - math.exp(-mu * t)
        if abs(a - mu) < 1e-12 * mu:
            both = 1 - math.exp(-mu * t) * (1 + mu * t)
        else:
            both = 1 - (mu * math.exp(-a * t) - a * math.exp(-mu * t)) / (mu - a)
        return (1 - p_wait) * service + p_wait * both

    return cdf


def quantile_from_cdf(cdf: Callable[[float], float], q: float, scale: float) -> float:
    """Solve cdf(t) = q by bisection (``scale`` is a rough size of t to start from)."""
    lo, hi = 0.0, max(scale, 1e-9)
    while cdf(hi) < q:
        hi *= 2
        if hi > 1e15:
            return math.inf
    for _ in range(200):
        mid = (lo + hi) / 2
        if cdf(mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _plain(scenario: Scenario) -> list[str]:
    """Why the scenario is not a textbook model (empty: it is one)."""
    why = []
    if len(scenario.queues) != 1:
        why.append("more than one queue")
    if scenario.faults:
        why.append("a faults timeline")
    if scenario.dependencies:
        why.append("external services")
    q = scenario.queues[0]
    if q.workers.limiter is not None:
        why.append("a rate limiter")
    if q.default_job_options is not None and (q.default_job_options.delay_ms or q.default_job_options.delay_s
                                              or q.default_job_options.lifo or q.default_job_options.timeout_ms):
        why.append("default delays, LIFO or timeouts")
    for job in scenario.jobs:
        a = job.arrivals
        if not isinstance(a, PoissonArrivals) or a.batch_size != 1 or a.start_s or a.until_s is not None \
                or a.limit is not None:
            why.append(f"{job.name}: arrivals are not plain Poisson")
        if job.backlog:
            why.append(f"{job.name}: a starting backlog")
        if job.steps is not None:
            why.append(f"{job.name}: a saga")
        o = job.options
        if o.delay_ms or o.delay_s or o.lifo or o.timeout_ms:
            why.append(f"{job.name}: delays, LIFO or timeouts")
    return why


def _retry_settings(job: JobSpec, scenario: Scenario) -> tuple[int, list[float]] | None:
    """(attempts, backoff delays in ms) when the job's retries fit ``retry_via_queue``."""
    q = scenario.queues[0]
    defaults = q.default_job_options
    attempts = job.options.attempts if job.options.attempts is not None else (
        defaults.attempts if defaults is not None and defaults.attempts is not None else 1)
    backoff = job.options.backoff if job.options.backoff is not None else (
        defaults.backoff if defaults is not None else None)
    attempts = max(1, attempts)
    delays: list[float] = []
    if backoff is not None:
        if backoff.jitter:
            return None
        for k in range(1, attempts):  # in seconds, the unit of the rates given to the formula
            delays.append(backoff.delay_ms / 1000 * (2 ** (k - 1) if backoff.type == "exponential" else 1))
    return attempts, delays


def theory_for(scenario: Scenario, laws_by_name: dict[str, Law]) -> TheoryModel | None:
    """The closed-form model of ``scenario``, or None when none applies.

    None too when the scenario's numbers are so extreme that the formulas leave floating point (a mean service
    time of 1e-300 ms squares to zero, one of 1e300 ms overflows): no formula is claimed rather than a wrong one.

    Args:
        scenario: the validated scenario.
        laws_by_name: the service law of each job type (from :meth:`Scenario.job_types`).
    """
    try:
        return _closed_form(scenario, laws_by_name)
    except ArithmeticError:
        return None


def _closed_form(scenario: Scenario, laws_by_name: dict[str, Law]) -> TheoryModel | None:
    if _plain(scenario):
        return None
    q = scenario.queues[0]
    c = q.workers.count * q.workers.concurrency
    jobs = scenario.jobs
    rates = {j.name: j.arrivals.rate_per_s for j in jobs if isinstance(j.arrivals, PoissonArrivals)}
    lam = sum(rates.values())
    failing = [j for j in jobs if j.failures is not None]
    if failing:
        if len(jobs) != 1:
            return None
        job = jobs[0]
        f = job.failures
        assert f is not None
        law = laws_by_name[job.name]
        settings = _retry_settings(job, scenario)
        if (f.permanent or f.rate_limited or f.decide_at != 1 or f.overload is not None or settings is None
                or law.scv != 1.0 or f.retryable >= 1):
            return None
        attempts, delays = settings
        mu = 1000.0 / law.mean_ms
        try:
            r = theory.retry_via_queue(lam, mu, f.retryable, attempts, delays, servers=c)
        except ValueError:
            return None
        dead = "dlq_rate" if q.dead_letter_queue else "failure_rate"
        return TheoryModel(
            model=f"M/M/{c} with retries", formula="retry_via_queue (BCMP network: workers + backoff delay node)",
            metrics={"mean_attempts": r.mean_attempts, dead: r.p_dead, "utilisation": r.rho,
                     "mean_sojourn_ms": r.mean_sojourn * 1000, "goodput_per_s": r.goodput},
            notes=["a failed attempt frees its worker, waits out its backoff off the workers and rejoins the "
                   "tail of the queue, as in BullMQ"])
    priorities = sorted({j.priority for j in jobs}, key=lambda p: (p != 0, p))
    if len(priorities) > 1:
        if c != 1:
            return None
        classes = []
        for p in priorities:
            members = [j for j in jobs if j.priority == p]
            lam_p = sum(rates[j.name] for j in members)
            mean = sum(rates[j.name] * laws_by_name[j.name].mean_ms for j in members) / lam_p / 1000
            second = sum(rates[j.name] * second_moment(laws_by_name[j.name]) for j in members) / lam_p / 1e6
            classes.append((p, members, lam_p, mean, second))
        try:
            waits = theory.priority_nonpreemptive([k[2] for k in classes], [k[3] for k in classes],
                                                  [k[4] for k in classes])
        except ValueError:
            return None
        by_name: dict[str, dict[str, float]] = {}
        total_w = 0.0
        for (_, members, _, _, _), wq in zip(classes, waits, strict=True):
            for j in members:
                s = laws_by_name[j.name].mean_ms / 1000
                by_name[j.name] = {"mean_wait_ms": wq * 1000, "mean_sojourn_ms": (wq + s) * 1000}
                total_w += rates[j.name] * (wq + s)
        rho = sum(k[2] * k[3] for k in classes)
        order = ", then ".join(f"priority {p}" + (" (none)" if p == 0 else "") for p in priorities)
        return TheoryModel(model="M/G/1 with non-preemptive priorities", formula="Cobham's formula",
                           metrics={"utilisation": rho, "mean_sojourn_ms": total_w / lam * 1000,
                                    "mean_in_system": total_w},
                           by_name=by_name, notes=[f"BullMQ's order: {order}"])
    mean_ms = sum(rates[j.name] * laws_by_name[j.name].mean_ms for j in jobs) / lam
    es2 = sum(rates[j.name] * second_moment(laws_by_name[j.name]) for j in jobs) / lam
    scv = es2 / mean_ms**2 - 1
    exponential = all(laws_by_name[j.name].scv == 1.0 for j in jobs) and len(
        {laws_by_name[j.name].mean_ms for j in jobs}) == 1
    try:
        if exponential:
            mu = 1000.0 / mean_ms
            m = theory.mmc(lam, mu, c)
            cdf = mmc_sojourn_cdf(lam / 1000, mu / 1000, c)
            name = f"M/M/{c}"
            formula = "Erlang C" if c > 1 else "M/M/1"
        elif c == 1:
            m = theory.mg1(lam, mean_ms / 1000, scv)
            cdf = None
            name = "M/D/1" if scv == 0 else "M/G/1"
            formula = "Pollaczek-Khinchine"
        else:
            return None
    except ValueError as exc:
        return TheoryModel(model=f"M/M/{c}" if exponential else "M/G/1", formula="none: unstable",
                           metrics={}, notes=[str(exc)])
    return TheoryModel(model=name, formula=formula, sojourn_cdf=cdf, metrics={
        "utilisation": m.rho, "p_wait": m.p_wait, "mean_wait_ms": m.mean_wait * 1000,
        "mean_sojourn_ms": m.mean_sojourn * 1000, "mean_in_system": m.mean_in_system,
        "mean_queued": m.mean_queue})
