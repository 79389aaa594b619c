"""Exercise 3: retries are extra load.

The misconception: "retries are free: the workers see the same jobs, a failed one just goes round again". Every
retry is one more attempt that takes a worker for a whole service time. With a per-attempt failure probability
p and at most N attempts, a job makes 1 + p + p² + … + p^(N-1) = (1 - p^N)/(1 - p) attempts on average, so the
workers run λ·(1 - p^N)/(1 - p) attempts per second: 75% more than λ at p = 0.5 with 3 attempts, and N times λ
during an outage (p = 1).

The check compares the student's ``attempts_per_second`` and ``utilisation`` with
:func:`queuesim.theory.retry_via_queue`, then simulates a queue with retryable failures on the engine (each failed
attempt goes through the delayed set for its backoff and back to the queue, as in BullMQ) and compares the
predictions with the measured attempt rate and utilisation.
"""

from __future__ import annotations

from queuesim import theory
from queuesim.exercises.base import (
    Exercise,
    Line,
    Solution,
    StudentError,
    answer_line,
    close,
    fmt,
    near_simulation,
    number,
)
from queuesim.exercises.models import retry_run

__all__ = ["EXERCISE", "mean_attempts"]

#: attempts_per_second cases: (arrival rate per s, p_fail, attempts)
RATE_CASES = ((2.0, 0.5, 3), (2.0, 0.3, 5), (1.0, 0.0, 3), (1.0, 0.9, 1), (0.5, 1.0, 4), (4.0, 0.2, 10))
#: utilisation cases: (arrival rate per s, mean service s, p_fail, attempts, workers)
LOAD_CASES = ((2.0, 1.0, 0.5, 3, 5), (3.0, 0.5, 0.25, 4, 2), (1.0, 2.0, 1.0, 3, 8))
#: the queue simulated on the engine (the first utilisation case), with a fixed 1 s backoff between tries
SIMULATED = LOAD_CASES[0]
BACKOFF_MS = 1_000
TOLERANCE = 0.01
SIM_SLACK = 0.03


def _exact(lam: float, s: float, p: float, n: int, c: int) -> theory.RetryMetrics:
    return theory.retry_via_queue(lam, 1 / s, p, n, servers=c)


def mean_attempts(p_fail: float, attempts: int) -> float:
    """E[K] = 1 + p + … + p^(N-1): the mean number of tries per job (N when every try fails)."""
    return float(attempts) if p_fail >= 1 else (1 - p_fail**attempts) / (1 - p_fail)


def _hint() -> str:
    lam, s, p, n, c = SIMULATED
    m = _exact(lam, s, p, n, c)
    return (f"Every retry is one more attempt on a worker: a job makes 1 + p + p^2 + ... + p^(N-1) = "
            f"(1 - p^N)/(1 - p) attempts on average (N = attempts; N when p = 1). At p = {p} with {n} attempts "
            f"that is {fmt(m.mean_attempts, 3)}: {fmt(lam)} jobs/s need {fmt(lam * m.mean_attempts, 3)} attempts/s, "
            f"and {c} workers are {m.rho:.0%} busy, not {lam * s / c:.0%}. Retries are extra load, and during an "
            "outage every job uses all its attempts.")


def check(solution: Solution) -> list[Line]:
    hint = _hint()
    lines: list[Line] = []
    for lam, p, n in RATE_CASES:
        label = f"attempts_per_second({fmt(lam)} jobs/s, p_fail {fmt(p)}, {n} attempts)"
        want = lam * mean_attempts(p, n)
        try:
            got = number(solution.call("attempts_per_second", lam, p, n), "attempts_per_second")
        except StudentError as exc:
            lines.append(answer_line(label, exc, hint))
            continue
        lines.append(Line(label, close(got, want, TOLERANCE), f"{fmt(want)} (±{TOLERANCE:.0%})", fmt(got), hint))
    predicted: dict[str, float] = {}
    for case in LOAD_CASES:
        lam, s, p, n, c = case
        label = f"utilisation({fmt(lam)} jobs/s, {fmt(s)} s, p_fail {fmt(p)}, {n} attempts, {c} workers)"
        want = _exact(lam, s, p, n, c).rho
        try:
            got = number(solution.call("utilisation", lam, s, p, n, c), "utilisation")
            if case == SIMULATED:
                predicted["utilisation"] = got
                predicted["attempts"] = number(solution.call("attempts_per_second", lam, p, n), "attempts_per_second")
        except StudentError as exc:
            lines.append(answer_line(label, exc, hint))
            continue
        lines.append(Line(label, close(got, want, TOLERANCE), f"{fmt(want)} (±{TOLERANCE:.0%})", fmt(got), hint))
    if len(predicted) == 2:
        lam, s, p, n, c = SIMULATED
        sim = retry_run(lam, s * 1000, c, p, n, BACKOFF_MS)
        for key, metric, what in (("attempts", "throughput_per_s", "attempts per second"),
                                  ("utilisation", "utilisation", "utilisation")):
            est = sim[metric]
            lines.append(near_simulation(f"simulated {what} ({c} workers, p_fail {p}, {n} attempts, {est.n} runs)",
                                         predicted[key], est.mean, est.half_width, SIM_SLACK, hint))
    return lines


EXERCISE = Exercise(
    number=3,
    slug="retry-load",
    title="What retries cost: the load the workers really see",
    misconception="\"Retries are free: the workers still see the same jobs.\"",
    task=(
        "Each attempt of a job fails with probability p_fail; a failed job is retried up to `attempts` tries in "
        "total (BullMQ's attempts option), and every try takes a worker for a whole service time. Write "
        "attempts_per_second(arrival_rate, p_fail, attempts) and utilisation(arrival_rate, mean_service_s, "
        "p_fail, attempts, workers).\n\n"
        "The check compares them with the closed form on several cases (an outage, p_fail = 1, included), then "
        "runs a queue with retryable failures on the engine (2 jobs/s, 1 s attempts, p_fail 0.5, 3 attempts, "
        "5 workers, 1 s backoff through the delayed set) and puts your prediction next to the measured attempt "
        "rate and utilisation."),
    predict=(
        "2 jobs per second, half of the attempts fail, 3 attempts allowed, 1 s per attempt, 5 workers. Without "
        "retries the workers would be 40% busy. Guess how busy they really are, then compare with the simulated "
        "utilisation in the check's output."),
    starter="ex3_retry_load.py",
    functions=("attempts_per_second", "utilisation"),
    check=check,
    runs="retryable failures through the delayed set on the memory backend: 6 replications of 540 s",
)
