"""Exercise 2: near saturation, one worker more changes a lot.

The misconception: "at 90% utilisation one more worker only takes 10% off the load, so it helps only a little;
to cut waits a lot you need many more workers". Waits are not proportional to the load: they blow up as ρ → 1.
At 3.6 jobs/s with 1 s jobs, 4 workers (ρ = 0.9) give a mean wait of 2.0 s and a p95 wait of 6.9 s; a 5th
worker (ρ = 0.72) cuts them to 0.29 s and 1.5 s. The cheapest answer is often one or two workers above the
load, and rules of thumb ("keep ρ below 0.9", "below 0.5") miss it in both directions.

The check compares ``workers_needed`` with the exact smallest count (from :func:`queuesim.theory.mmc_wait_quantile`)
on several queues, then simulates the first queue on the engine with the student's count and with one worker
fewer: the first must meet the target, the second must not.
"""

from __future__ import annotations

import math

from queuesim import theory
from queuesim.exercises.base import Exercise, Line, Solution, StudentError, answer_line, fmt, whole
from queuesim.exercises.models import mmc_run

__all__ = ["EXERCISE", "smallest_workers"]

#: (arrival rate per s, mean service s, target p95 wait s)
CASES = ((3.6, 1.0, 2.0), (9.0, 1.0, 1.0), (45.0, 0.2, 0.1), (0.5, 1.5, 2.0), (18.0, 0.5, 0.0))
SIMULATED = CASES[0]
#: above this many workers the simulation is not run (the theory lines already tell the story)
MAX_SIMULATED_WORKERS = 60
QUANTILE = 0.95
#: the simulation: replications of 800 s after a 100 s warm-up (the run goes on 100 s so the last jobs start)
SIM = {"replications": 6, "until_ms": 900_000, "warmup_ms": 100_000, "end_ms": 800_000}


def p95_wait(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    """The exact 95th percentile of the wait in M/M/c (infinite when the queue is unstable)."""
    if workers <= arrival_rate * mean_service_s:
        return math.inf
    return theory.mmc_wait_quantile(arrival_rate, 1 / mean_service_s, workers, QUANTILE)


def smallest_workers(arrival_rate: float, mean_service_s: float, target_s: float) -> int:
    """The smallest c whose exact p95 wait is at most ``target_s``."""
    c = math.floor(arrival_rate * mean_service_s) + 1
    while p95_wait(arrival_rate, mean_service_s, c) > target_s:
        c += 1
    return c


def _hint() -> str:
    lam, s, _ = SIMULATED
    c = math.floor(lam * s)
    if c <= lam * s:
        c += 1
    now, more = theory.mmc(lam, 1 / s, c), theory.mmc(lam, 1 / s, c + 1)
    return (f"Near saturation one worker more changes a lot: at {fmt(lam)} jobs/s and {fmt(s)} s jobs, {c} workers "
            f"(rho = {now.rho:.2f}) wait {fmt(now.mean_wait, 2)} s on average, p95 {fmt(p95_wait(lam, s, c), 2)} s; "
            f"a worker more (rho = {more.rho:.2f}) cuts that to {fmt(more.mean_wait, 2)} s and "
            f"{fmt(p95_wait(lam, s, c + 1), 2)} s. Search upwards from the first stable count (more workers than "
            "the offered load lambda * E[S]) and stop at the first whose p95 wait meets the target: "
            "P(wait > t) = C * exp(-(c*mu - lambda) * t); rules like 'keep rho under 0.9' miss it.")


def _wait_text(lam: float, s: float, c: int) -> str:
    w = p95_wait(lam, s, c)
    return "unstable (rho >= 1)" if math.isinf(w) else f"p95 {fmt(w, 3)} s"


def check(solution: Solution) -> list[Line]:
    hint = _hint()
    lines: list[Line] = []
    simulated_answer: int | None = None
    for lam, s, target in CASES:
        label = f"workers_needed({fmt(lam)} jobs/s, {fmt(s)} s, p95 wait <= {fmt(target)} s)"
        try:
            got = whole(solution.call("workers_needed", lam, s, target), "workers_needed", minimum=1)
        except StudentError as exc:
            lines.append(answer_line(label, exc, hint))
            continue
        want = smallest_workers(lam, s, target)
        if (lam, s, target) == SIMULATED:
            simulated_answer = got
        lines.append(Line(label, got == want, f"{want} workers ({_wait_text(lam, s, want)})",
                          f"{got} workers ({_wait_text(lam, s, got)})", hint))
    if simulated_answer is not None:
        lines.extend(_simulate(simulated_answer, hint))
    return lines


def _simulate(c: int, hint: str) -> list[Line]:
    """Run the first queue on the engine with ``c`` workers and with ``c - 1``."""
    lam, s, target = SIMULATED
    out: list[Line] = []
    offered = lam * s
    if c <= offered:
        out.append(Line(f"simulated with {c} workers", False, f"more than {fmt(offered)} workers (a stable queue)",
                        f"rho = {offered / c:.2f}: the queue grows without bound", hint, "simulation"))
        return out
    if c > MAX_SIMULATED_WORKERS:
        return out
    mine = mmc_run(lam, s * 1000, c, **SIM)["p95_wait_ms"]
    out.append(Line(f"simulated p95 wait with your {c} workers", mine.mean / 1000 <= target,
                    f"<= {fmt(target)} s", f"{fmt(mine.mean / 1000, 3)} s ± {fmt(mine.half_width / 1000, 2)}", hint,
                    "simulation"))
    fewer = c - 1
    if fewer <= offered:
        out.append(Line(f"with one worker fewer ({fewer})", True, "misses the target",
                        f"rho = {offered / fewer:.2f}: unstable", hint, "simulation"))
    else:
        less = mmc_run(lam, s * 1000, fewer, **SIM)["p95_wait_ms"]
        out.append(Line(f"simulated p95 wait with one worker fewer ({fewer})", less.mean / 1000 > target,
                        f"> {fmt(target)} s (else {fewer} would do)",
                        f"{fmt(less.mean / 1000, 3)} s ± {fmt(less.half_width / 1000, 2)}", hint, "simulation"))
    return out


EXERCISE = Exercise(
    number=2,
    slug="workers-needed",
    title="How many workers for a p95 wait target?",
    misconception="\"At 90% load one more worker helps only a little.\"",
    task=(
        "Jobs arrive as a Poisson stream and take an exponential time; each worker runs one job at a time. Write "
        "workers_needed(arrival_rate, mean_service_s, target_p95_wait_s): the smallest number of workers for "
        "which 95% of the jobs start within the target.\n\n"
        "The check compares your answer with the exact smallest count on five queues, then runs the first one "
        "(3.6 jobs/s, 1 s jobs, p95 <= 2 s) on the engine with your count and with one worker fewer: yours must "
        "meet the target, one fewer must not."),
    predict=(
        "3.6 jobs per second, 1 s per job: with 4 workers (rho = 0.9) the p95 wait is about 6.9 s. Guess the p95 "
        "wait with 5 workers before you compute it: 5.5 s? 3.5 s? Less? Then see the simulated values in the "
        "check's output."),
    starter="ex2_workers_needed.py",
    functions=("workers_needed",),
    check=check,
    runs="M/M/c with your count and with one fewer, on the memory backend: 6 replications of 700 s each",
)
