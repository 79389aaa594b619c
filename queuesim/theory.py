"""Closed-form queueing results: what a simulation of a simple set-up must reproduce.

Every function here is a pure formula (no simulation, no randomness). Rates and times may be in any unit as long
as they agree: with an arrival rate per second and a service rate per second, waits come out in seconds.

Vocabulary (Kendall's notation and the usual letters):

* ``M/M/c`` — Poisson arrivals (rate λ), exponential service (rate μ), ``c`` servers, unlimited waiting room.
* ``M/G/1`` — the same with any service-time law, described by its mean and its squared coefficient of
  variation ``scv = Var[S] / E[S]²`` (0 for a constant, 1 for an exponential).
* ρ (``rho``) — utilisation of one server, λ·E[S]/c. Above 1 the queue grows without bound.
* Lq / Wq — mean number waiting / mean time waiting (before service starts);
  L / W — the same counting the time in service too (W is the *sojourn* time). Little's law: L = λW, Lq = λWq.

The retry results follow BullMQ's semantics: a failure is known at the end of a full service time, a retried
job goes back to the tail of the queue (or through the delayed set for its backoff, freeing the worker), and the
first try counts as attempt 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from queuesim.errors import OptionError

__all__ = [
    "LossMetrics",
    "QueueMetrics",
    "RetryMetrics",
    "TheoryCheck",
    "check",
    "erlang_b",
    "erlang_c",
    "md1",
    "mg1",
    "mm1",
    "mm1_sojourn_quantile",
    "mm1k",
    "mmc",
    "mmc_wait_quantile",
    "mmck",
    "priority_nonpreemptive",
    "priority_preemptive_resume",
    "relaxation_time",
    "retry_same_worker",
    "retry_unlimited",
    "retry_via_queue",
]


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Steady-state means of a queue with unlimited waiting room.

    Attributes:
        rho: utilisation of one server (also the fraction of time a server is busy).
        p_wait: probability that an arrival has to wait (Erlang C for M/M/c).
        mean_queue: Lq, the mean number of jobs waiting (not in service).
        mean_in_system: L, the mean number of jobs waiting or in service.
        mean_wait: Wq, the mean time from arrival to the start of service.
        mean_sojourn: W, the mean time from arrival to departure.
    """

    rho: float
    p_wait: float
    mean_queue: float
    mean_in_system: float
    mean_wait: float
    mean_sojourn: float


@dataclass(frozen=True, slots=True)
class LossMetrics:
    """Steady-state results of a queue with a finite capacity (arrivals that find it full are lost).

    Attributes:
        p_block: probability that an arrival finds the system full and is turned away.
        mean_in_system: L (jobs waiting or in service).
        mean_sojourn: W of the jobs that got in (L / accepted rate).
        throughput: rate of accepted jobs, λ(1 - p_block) (for a loss system: the carried load times μ).
    """

    p_block: float
    mean_in_system: float
    mean_sojourn: float
    throughput: float


@dataclass(frozen=True, slots=True)
class RetryMetrics:
    """Steady-state results of a queue whose jobs may fail and be retried.

    Attributes:
        mean_attempts: E[K], the mean number of attempts per job (the first try counts as 1).
        p_dead: probability that a job fails for good (every allowed attempt failed).
        rho: utilisation of one server, counting every attempt.
        mean_in_queue_node: jobs at the workers (waiting or in service), on average.
        mean_backoff: mean total time a job spends waiting out backoffs (off the workers).
        mean_sojourn: W, from the first arrival to completion or final failure.
        goodput: rate of jobs that eventually complete.
    """

    mean_attempts: float
    p_dead: float
    rho: float
    mean_in_queue_node: float
    mean_backoff: float
    mean_sojourn: float
    goodput: float


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or not math.isfinite(value):
        raise OptionError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


def _servers(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(name, f"must be an integer >= 1, got {value!r}")
    return value


def _probability(name: str, value: float, *, below_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise OptionError(name, f"must be a probability between 0 and 1, got {value!r}")
    if below_one and value >= 1:
        raise OptionError(name, f"must be < 1 (every attempt failing means no job ever completes), got {value!r}")
    return float(value)


def _stable(rho: float) -> None:
    if rho >= 1:
        raise OptionError("arrival_rate", f"the queue is unstable: utilisation rho = {rho:.6g} >= 1 (it grows "
                                          "without bound, so no steady state exists)")


# --- Erlang's formulas --------------------------------------------------------------------------------------


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B: the probability that an arrival finds all ``servers`` busy in a loss system (M/M/c/c).

    ``offered_load`` is a = λ/μ (in erlangs). Computed with the stable recursion B(k) = a·B(k-1)/(k + a·B(k-1)).
    """
    c = _servers("servers", servers)
    a = _positive("offered_load", offered_load)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: the probability that an arrival has to wait in an M/M/c queue (offered load a = λ/μ < c)."""
    c = _servers("servers", servers)
    a = _positive("offered_load", offered_load)
    _stable(a / c)
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


# --- queues with unlimited waiting room ---------------------------------------------------------------------


def mmc(arrival_rate: float, service_rate: float, servers: int) -> QueueMetrics:
    """M/M/c: Poisson arrivals, exponential service, ``servers`` identical servers, first come first served."""
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    c = _servers("servers", servers)
    a = lam / mu
    rho = a / c
    _stable(rho)
    p_wait = erlang_c(c, a)
    wq = p_wait / (c * mu - lam)
    return QueueMetrics(rho=rho, p_wait=p_wait, mean_queue=lam * wq, mean_in_system=lam * (wq + 1 / mu),
                        mean_wait=wq, mean_sojourn=wq + 1 / mu)


def mm1(arrival_rate: float, service_rate: float) -> QueueMetrics:
    """M/M/1: Lq = ρ²/(1-ρ), Wq = ρ/(μ-λ), W = 1/(μ-λ), L = ρ/(1-ρ)."""
    return mmc(arrival_rate, service_rate, 1)


def mg1(arrival_rate: float, mean_service: float, scv: float) -> QueueMetrics:
    """M/G/1 by the Pollaczek-Khinchine formula: Wq = λ·E[S²] / (2(1-ρ)) with E[S²] = (1 + scv)·E[S]².

    Only the first two moments of the service law matter for the means.
    """
    lam = _positive("arrival_rate", arrival_rate)
    es = _positive("mean_service", mean_service)
    if isinstance(scv, bool) or not isinstance(scv, int | float) or scv < 0:
        raise OptionError("scv", f"must be a number >= 0 (squared coefficient of variation), got {scv!r}")
    rho = lam * es
    _stable(rho)
    es2 = (1 + scv) * es * es
    wq = lam * es2 / (2 * (1 - rho))
    return QueueMetrics(rho=rho, p_wait=rho, mean_queue=lam * wq, mean_in_system=lam * (wq + es), mean_wait=wq,
                        mean_sojourn=wq + es)


def md1(arrival_rate: float, service_time: float) -> QueueMetrics:
    """M/D/1: every service takes exactly ``service_time`` (P-K with scv 0: half the M/M/1 wait)."""
    return mg1(arrival_rate, service_time, 0.0)


def mm1_sojourn_quantile(arrival_rate: float, service_rate: float, q: float) -> float:
    """The q-quantile of the M/M/1 sojourn time, which is exponential with rate μ - λ."""
    m = mm1(arrival_rate, service_rate)
    p = _probability("q", q, below_one=True)
    return -math.log(1 - p) * m.mean_sojourn


def mmc_wait_quantile(arrival_rate: float, service_rate: float, servers: int, q: float) -> float:
    """The q-quantile of the M/M/c waiting time: P(Wq > t) = C·e^{-(cμ-λ)t}; 0 when q ≤ 1 - C."""
    m = mmc(arrival_rate, service_rate, servers)
    p = _probability("q", q, below_one=True)
    if 1 - p >= m.p_wait:
        return 0.0
    return math.log(m.p_wait / (1 - p)) / (servers * service_rate - arrival_rate)


# --- finite capacity ----------------------------------------------------------------------------------------


def mmck(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> LossMetrics:
    """M/M/c/K: at most ``capacity`` jobs in the system (those in service included); the rest are lost.

    Solved as a birth-death chain: p_n ∝ Π λ / (min(k, c)·μ). With ``capacity == servers`` this is the Erlang
    loss system and ``p_block`` equals :func:`erlang_b`.
    """
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    c = _servers("servers", servers)
    k = _servers("capacity", capacity)
    if k < c:
        raise OptionError("capacity", f"must be >= servers ({c}), got {k}")
    weights = [1.0]
    for n in range(1, k + 1):
        weights.append(weights[-1] * lam / (min(n, c) * mu))
    total = math.fsum(weights)
    probs = [w / total for w in weights]
    p_block = probs[-1]
    mean_n = math.fsum(n * p for n, p in enumerate(probs))
    accepted = lam * (1 - p_block)
    return LossMetrics(p_block=p_block, mean_in_system=mean_n, mean_sojourn=mean_n / accepted, throughput=accepted)


def mm1k(arrival_rate: float, service_rate: float, capacity: int) -> LossMetrics:
    """M/M/1/K: P_K = (1-ρ)ρᴷ / (1-ρᴷ⁺¹) (K counts the job in service)."""
    return mmck(arrival_rate, service_rate, 1, capacity)


# --- priorities ---------------------------------------------------------------------------------------------


def _classes(arrival_rates: Sequence[float], mean_services: Sequence[float],
             second_moments: Sequence[float] | None) -> tuple[list[float], list[float], list[float]]:
    lams = [_positive(f"arrival_rates[{i}]", v) for i, v in enumerate(arrival_rates)]
    means = [_positive(f"mean_services[{i}]", v) for i, v in enumerate(mean_services)]
    if len(lams) != len(means) or not lams:
        raise OptionError("mean_services", f"needs one entry per class ({len(lams)}), got {len(means)}")
    if second_moments is None:
        seconds = [2 * m * m for m in means]  # exponential: E[S²] = 2·E[S]²
    else:
        seconds = [_positive(f"second_moments[{i}]", v) for i, v in enumerate(second_moments)]
        if len(seconds) != len(lams):
            raise OptionError("second_moments", f"needs one entry per class ({len(lams)}), got {len(seconds)}")
    _stable(math.fsum(lam * m for lam, m in zip(lams, means, strict=True)))
    return lams, means, seconds


def priority_nonpreemptive(arrival_rates: Sequence[float], mean_services: Sequence[float],
                           second_moments: Sequence[float] | None = None) -> list[float]:
    """Cobham's formula: mean waits of a single server with non-preemptive priority classes.

    Class 0 is served first (BullMQ: the lowest priority number). A job in service always finishes. With
    W₀ = Σ λᵢE[Sᵢ²]/2 and σₖ = Σ_{i≤k} ρᵢ: Wqₖ = W₀ / ((1 - σₖ₋₁)(1 - σₖ)).

    Args:
        arrival_rates: λ of each class, highest priority first.
        mean_services: E[S] of each class.
        second_moments: E[S²] of each class (default: exponential service, 2·E[S]²).

    Returns:
        The mean wait Wq of each class (add E[S] for the sojourn time).
    """
    lams, means, seconds = _classes(arrival_rates, mean_services, second_moments)
    w0 = math.fsum(lam * s2 for lam, s2 in zip(lams, seconds, strict=True)) / 2
    waits = []
    sigma = 0.0
    for lam, m in zip(lams, means, strict=True):
        before = sigma
        sigma += lam * m
        waits.append(w0 / ((1 - before) * (1 - sigma)))
    return waits


def priority_preemptive_resume(arrival_rates: Sequence[float], mean_services: Sequence[float],
                               second_moments: Sequence[float] | None = None) -> list[float]:
    """Mean sojourn times with preemptive-resume priorities (for contrast: BullMQ's priorities are *not*
    preemptive, use :func:`priority_nonpreemptive`). Wₖ = E[Sₖ]/(1-σₖ₋₁) + Rₖ/((1-σₖ₋₁)(1-σₖ)),
    Rₖ = Σ_{i≤k} λᵢE[Sᵢ²]/2."""
    lams, means, seconds = _classes(arrival_rates, mean_services, second_moments)
    out = []
    sigma = 0.0
    residual = 0.0
    for lam, m, s2 in zip(lams, means, seconds, strict=True):
        before = sigma
        sigma += lam * m
        residual += lam * s2 / 2
        out.append(m / (1 - before) + residual / ((1 - before) * (1 - sigma)))
    return out


# --- retries ------------------------------------------------------------------------------------------------


def _attempt_distribution(p_fail: float, max_attempts: int) -> list[float]:
    """P(K = k) for k = 1..N: every attempt fails independently with probability p; at most N attempts."""
    return [p_fail ** (k - 1) * (1 - p_fail) for k in range(1, max_attempts)] + [p_fail ** (max_attempts - 1)]


def retry_unlimited(arrival_rate: float, service_rate: float, p_fail: float) -> RetryMetrics:
    """Unlimited immediate retries on one exponential server (an M/M/1 queue with Bernoulli feedback).

    Each attempt fails with probability ``p_fail`` at the end of a full service; the job then joins the queue
    again. The number of attempts is geometric with mean 1/(1-p); the server sees λ/(1-p) attempts per unit of
    time, so ρ = λ/(μ(1-p)) and W = 1/(μ(1-p) - λ), whether the retry stays on the worker or goes to the tail.
    """
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    p = _probability("p_fail", p_fail, below_one=True)
    rho = lam / (mu * (1 - p))
    _stable(rho)
    w = 1 / (mu * (1 - p) - lam)
    return RetryMetrics(mean_attempts=1 / (1 - p), p_dead=0.0, rho=rho, mean_in_queue_node=lam * w,
                        mean_backoff=0.0, mean_sojourn=w, goodput=lam)


def retry_same_worker(arrival_rate: float, service_rate: float, p_fail: float, max_attempts: int) -> RetryMetrics:
    """At most N attempts, each retried at once *on the same worker* (one server).

    The job holds the server for K exponential attempts, so this is an M/G/1 queue whose service time is a sum
    of K exponentials: E[T] = E[K]/μ and E[T²] = (E[K] + E[K²])/μ²; Pollaczek-Khinchine gives the wait.
    E[K] = (1 - pᴺ)/(1 - p) and P(dead) = pᴺ. (BullMQ sends a retry to the tail of the queue instead:
    :func:`retry_via_queue` with no backoff.)
    """
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    p = _probability("p_fail", p_fail)
    n = _servers("max_attempts", max_attempts)
    dist = _attempt_distribution(p, n)
    ek = math.fsum(k * q for k, q in enumerate(dist, start=1))
    ek2 = math.fsum(k * k * q for k, q in enumerate(dist, start=1))
    et = ek / mu
    et2 = (ek + ek2) / (mu * mu)
    rho = lam * et
    _stable(rho)
    wq = lam * et2 / (2 * (1 - rho))
    return RetryMetrics(mean_attempts=ek, p_dead=p**n, rho=rho, mean_in_queue_node=lam * (wq + et),
                        mean_backoff=0.0, mean_sojourn=wq + et, goodput=lam * (1 - p**n))


def retry_via_queue(arrival_rate: float, service_rate: float, p_fail: float, max_attempts: int,
                    backoff: Sequence[float] = (), servers: int = 1) -> RetryMetrics:
    """At most N attempts; a failed attempt frees the worker, waits out its backoff off the workers (BullMQ's
    delayed set) and rejoins the tail of the queue.

    This is a BCMP product-form network: an FCFS node of ``servers`` exponential workers, visited λ·E[K] times
    per unit of time, plus an infinite-server delay node for the backoffs. The worker node behaves as an M/M/c
    queue fed at rate λ·E[K]; each job spends Σ_{k<N} pᵏ·d_k in backoff on average (d_k = the wait after the
    k-th failure). W = L_workers/λ + mean backoff (Little's law). It holds for constant or exponential backoff.

    Args:
        arrival_rate: λ, new jobs per unit of time.
        service_rate: μ of one attempt.
        p_fail: probability that an attempt fails (independently of the others).
        max_attempts: N (BullMQ's ``attempts``).
        backoff: d_1 … d_{N-1}, the backoff after the 1st, 2nd … failure (missing entries count as 0: an
            immediate retry to the tail of the queue).
        servers: number of workers c.
    """
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    p = _probability("p_fail", p_fail)
    n = _servers("max_attempts", max_attempts)
    c = _servers("servers", servers)
    delays = [float(d) for d in backoff]
    if any(d < 0 or not math.isfinite(d) for d in delays):
        raise OptionError("backoff", f"every delay must be a finite number >= 0, got {list(backoff)!r}")
    if len(delays) > n - 1:
        raise OptionError("backoff", f"gives {len(delays)} delays but only {n - 1} retries are possible")
    ek = (1 - p**n) / (1 - p) if p < 1 else float(n)
    node = mmc(lam * ek, mu, c)
    mean_backoff = math.fsum(p**k * d for k, d in enumerate(delays, start=1))
    return RetryMetrics(mean_attempts=ek, p_dead=p**n, rho=node.rho, mean_in_queue_node=node.mean_in_system,
                        mean_backoff=mean_backoff, mean_sojourn=node.mean_in_system / lam + mean_backoff,
                        goodput=lam * (1 - p**n))


# --- practicalities -----------------------------------------------------------------------------------------


def relaxation_time(rho: float, service_rate: float = 1.0) -> float:
    """Rough time an M/M/1-like queue needs to forget its start, 1/(μ(1-√ρ)²).

    Drop about 20 of these as warm-up before measuring: about 12 mean service times at ρ = 0.5, 90 at 0.8 and
    380 at 0.9. For c servers use the per-server ρ as a rough guide.
    """
    r = _probability("rho", rho, below_one=True)
    mu = _positive("service_rate", service_rate)
    return 1 / (mu * (1 - math.sqrt(r)) ** 2)


@dataclass(frozen=True, slots=True)
class TheoryCheck:
    """A simulated estimate next to the exact value.

    Attributes:
        exact: the closed-form value.
        estimate: the simulated mean (over replications).
        half_width: half the width of its confidence interval.
        ok: the exact value lies inside [estimate - half_width, estimate + half_width].
        relative_error: (estimate - exact) / exact.
        relative_half_width: half_width / |exact|: how sharp the test was.
    """

    exact: float
    estimate: float
    half_width: float
    ok: bool
    relative_error: float
    relative_half_width: float

    def __str__(self) -> str:
        verdict = "inside" if self.ok else "OUTSIDE"
        return (f"exact {self.exact:.6g}: estimate {self.estimate:.6g} ± {self.half_width:.3g} "
                f"({100 * self.relative_error:+.2f}%, CI ±{100 * self.relative_half_width:.2f}%) -> {verdict}")


def check(exact: float, estimate: float, half_width: float) -> TheoryCheck:
    """Compare a simulated estimate and its confidence-interval half-width with the exact value."""
    if half_width < 0 or not math.isfinite(half_width):
        raise OptionError("half_width", f"must be a finite number >= 0, got {half_width!r}")
    scale = abs(exact) if exact else 1.0
    return TheoryCheck(exact=exact, estimate=estimate, half_width=half_width,
                       ok=abs(estimate - exact) <= half_width, relative_error=(estimate - exact) / scale,
                       relative_half_width=half_width / scale)
