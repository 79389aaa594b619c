"""Exercise 4: priorities move waiting time from one class to another; they do not share it fairly.

The misconception: "with priorities everyone still gets served in reasonable time; the low class waits a little
longer". With one worker and non-preemptive priorities (BullMQ's), Cobham's formula gives the mean wait of class
k: Wq_k = W0 / ((1 - σ_{k-1})(1 - σ_k)), where W0 is the mean residual work found in service and σ_k the load of
classes 0..k. The low class pays for the whole load of the classes above it: at a total ρ of 0.8 split evenly,
the high class waits 1.3 s and the low class 6.7 s (FIFO would give everyone 4 s); at ρ = 0.9 the low class
waits 18 s — it starves as the load nears 1.

The check compares ``class_waits`` with :func:`queuesim.theory.priority_nonpreemptive` on several mixes, then
simulates two classes with BullMQ priorities 1 and 2 on the engine and compares the prediction with the measured
per-class waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from queuesim.exercises.models import priority_run

__all__ = ["EXERCISE"]

#: (arrival rates per s, mean services s), class 0 (highest priority) first
CASES: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = (
    ((0.4, 0.4), (1.0, 1.0)),
    ((0.5, 0.4), (1.0, 1.0)),
    ((0.2, 0.3, 0.3), (0.5, 1.0, 1.5)),
    ((0.1, 0.7), (2.0, 0.5)),
)
SIMULATED = CASES[0]
TOLERANCE = 0.01
SIM_SLACK = 0.10


def _listed(values: Sequence[float]) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "] s"


def _hint() -> str:
    rates, means = SIMULATED
    waits = theory.priority_nonpreemptive(rates, means)
    rho = sum(r * m for r, m in zip(rates, means, strict=True))
    residual = sum(r * m * m for r, m in zip(rates, means, strict=True))  # W0 = sum of lambda * 2 E[S]^2 / 2
    fifo = residual / (1 - rho)  # Pollaczek-Khinchine for the whole mix, first come first served
    busy_rates, busy_means = CASES[1]
    busy = theory.priority_nonpreemptive(busy_rates, busy_means)
    return (f"Priorities are not fair: a low-priority job waits for every higher-priority job that arrives before "
            f"it starts. Cobham: W0 = sum of lambda_i * E[S_i^2] / 2 (E[S^2] = 2 E[S]^2 for an exponential law), "
            f"Wq_k = W0 / ((1 - sigma_(k-1)) * (1 - sigma_k)). At rho = {rho:.1f} split evenly the high class waits "
            f"{fmt(waits[0], 2)} s and the low class {fmt(waits[1], 2)} s (FIFO: {fmt(fifo, 2)} s for everyone); at "
            f"rho = 0.9 the low class waits {fmt(busy[1], 2)} s — it starves as the load nears 1.")


def _answer(value: Any, classes: int) -> list[float]:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        raise StudentError(f"class_waits must return a list of {classes} numbers, got {type(value).__name__} "
                           f"{value!r}")
    items = list(value)
    if len(items) != classes:
        raise StudentError(f"class_waits must return one wait per class ({classes}), got {len(items)}: {value!r}")
    return [number(v, "class_waits") for v in items]


def check(solution: Solution) -> list[Line]:
    hint = _hint()
    lines: list[Line] = []
    predicted: list[float] | None = None
    for rates, means in CASES:
        load = sum(r * m for r, m in zip(rates, means, strict=True))
        label = f"class_waits({list(rates)} jobs/s, {list(means)} s) at rho = {load:.2f}"
        want = theory.priority_nonpreemptive(rates, means)
        try:
            got = _answer(solution.call("class_waits", list(rates), list(means)), len(rates))
        except StudentError as exc:
            lines.append(answer_line(label, exc, hint))
            continue
        if (rates, means) == SIMULATED:
            predicted = got
        ok = all(close(g, w, TOLERANCE) for g, w in zip(got, want, strict=True))
        lines.append(Line(label, ok, f"{_listed(want)} (±{TOLERANCE:.0%})", _listed(got), hint))
    if predicted is not None:
        rates, means = SIMULATED
        sim = priority_run(rates, tuple(m * 1000 for m in means))
        for k, got in enumerate(predicted):
            est = sim[f"wait_class_{k}_ms"]
            mean, half = est.mean / 1000, est.half_width / 1000
            lines.append(near_simulation(f"simulated mean wait of class {k} (BullMQ priority {k + 1}, {est.n} runs)",
                                         got, mean, half, SIM_SLACK, hint, unit=" s"))
    return lines


EXERCISE = Exercise(
    number=4,
    slug="priorities",
    title="Who pays for priorities? Per-class waits on one worker",
    misconception="\"Priorities are fair: the low-priority jobs just wait a little longer.\"",
    task=(
        "One worker serves several classes of jobs, class 0 first (BullMQ priority 1, then 2, ...). BullMQ's "
        "priorities are non-preemptive: a started job always finishes. Write class_waits(arrival_rates, "
        "mean_services_s): the mean wait of each class, for Poisson arrivals and exponential job durations.\n\n"
        "The check compares your answer with Cobham's formula on four mixes (one at rho = 0.9), then runs two "
        "classes with priorities 1 and 2 on the engine and puts your prediction next to the measured waits. "
        "(Careful in your own set-ups: BullMQ's priority 0 means 'no priority' and runs before every "
        "prioritized job.)"),
    predict=(
        "Two classes of 0.4 jobs per second each, 1 s per job, one worker (busy 80% of the time). Without "
        "priorities every job waits 4 s on average. Guess each class's mean wait with priorities, then compare "
        "with the simulated waits in the check's output."),
    starter="ex4_priority_waits.py",
    functions=("class_waits",),
    check=check,
    runs="two priority classes on one worker, memory backend: 10 replications of 2,800 s (about 22,000 jobs)",
)
