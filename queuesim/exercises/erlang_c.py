"""Exercise 1: utilisation is not the share of jobs that wait (Erlang C).

The misconception: "the workers are busy 90% of the time, so about 10% of the jobs wait, and not for long".
Utilisation is the share of *time* a worker is busy. Whether a job waits depends on whether *all* workers are
busy when it arrives, and near saturation that is most of the time: with 4 workers at ρ = 0.9, about 79% of the
jobs wait, on average about two service times.

The check compares the student's ``p_wait`` and ``mean_wait_s`` with Erlang C (:func:`queuesim.theory.mmc`) on
several queues, then simulates the 4-worker queue at ρ = 0.9 on the engine and compares the prediction with
what the simulation measured (with its 95% confidence interval).
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
from queuesim.exercises.models import mmc_run

__all__ = ["EXERCISE"]

#: (arrival rate per s, mean service s, workers): ρ = 0.9 with 4, 1 and 10 workers, and a calm queue at ρ = 0.5
CASES = ((3.6, 1.0, 4), (0.9, 1.0, 1), (45.0, 0.2, 10), (2.0, 1.0, 4))
#: the queue simulated on the engine (the first case)
SIMULATED = CASES[0]
#: relative tolerance against the exact formula
TOLERANCE = 0.01
#: besides the confidence interval, a prediction may be this far (relative) from the simulated mean
SIM_SLACK = 0.10


def _hint() -> str:
    lam, s, c = SIMULATED
    m = theory.mmc(lam, 1 / s, c)
    return (f"At rho = {m.rho:.1f} with {c} workers, {m.p_wait:.0%} of the jobs wait (not {1 - m.rho:.0%}) and the "
            f"mean wait is {m.mean_wait / s:.1f} service times: utilisation is the share of time a worker is busy, "
            "but a job waits whenever ALL workers are busy when it arrives. Erlang C: P(wait) = C(c, a) with "
            "a = lambda * E[S]; mean wait = P(wait) / (c * mu - lambda).")


def _label(name: str, case: tuple[float, float, int]) -> str:
    lam, s, c = case
    return f"{name}({fmt(lam)} jobs/s, {fmt(s)} s, {c} worker{'s' if c != 1 else ''}) at rho = {lam * s / c:.2f}"


def check(solution: Solution) -> list[Line]:
    hint = _hint()
    lines: list[Line] = []
    predictions: dict[str, float] = {}
    for case in CASES:
        lam, s, c = case
        exact = theory.mmc(lam, 1 / s, c)
        for name, want in (("p_wait", exact.p_wait), ("mean_wait_s", exact.mean_wait)):
            label = _label(name, case)
            try:
                got = number(solution.call(name, lam, s, c), name)
            except StudentError as exc:
                lines.append(answer_line(label, exc, hint))
                continue
            if case == SIMULATED:
                predictions[name] = got
            lines.append(Line(label, close(got, want, TOLERANCE), f"{fmt(want)} (±{TOLERANCE:.0%})", fmt(got), hint))
    if not predictions:
        return lines
    # then run: the engine in virtual time, several independent replications
    lam, s, c = SIMULATED
    sim = mmc_run(lam, s * 1000, c)
    for name, metric, scale in (("p_wait", "p_wait", 1.0), ("mean_wait_s", "mean_wait_ms", 1000.0)):
        if name not in predictions:
            continue
        est = sim[metric]
        mean, half = est.mean / scale, est.half_width / scale
        label = f"simulated {name} of the {c}-worker queue ({est.n} runs on the engine)"
        lines.append(near_simulation(label, predictions[name], mean, half, SIM_SLACK, hint))
    return lines


EXERCISE = Exercise(
    number=1,
    slug="erlang-c",
    title="Busy 90% of the time: how many jobs wait, and how long?",
    misconception="\"90% utilisation means about 10% of the jobs wait, briefly.\"",
    task=(
        "A queue gets Poisson arrivals and has c identical workers; job durations are exponential (an M/M/c "
        "queue). Write p_wait(arrival_rate, mean_service_s, workers), the probability that an arriving job finds "
        "every worker busy, and mean_wait_s(...), the mean time a job waits before it starts (over all jobs).\n\n"
        "The check compares your functions with Erlang's C formula on four queues (rho = 0.9 with 1, 4 and 10 "
        "workers, and rho = 0.5), then runs the 4-worker queue at rho = 0.9 on the engine in virtual time and "
        "puts your prediction next to what the workers really did."),
    predict=(
        "Before writing any code: 3.6 jobs per second, 1 s per job, 4 workers (busy 90% of the time). What share "
        "of the jobs has to wait for a worker? How long is the mean wait, in seconds? Write both numbers down, "
        "then compare them with the simulated values in the check's output."),
    starter="ex1_erlang_c.py",
    functions=("p_wait", "mean_wait_s"),
    check=check,
    runs="M/M/4 at rho = 0.9 on the memory backend: 6 replications of 1,500 s (about 32,000 jobs)",
)
