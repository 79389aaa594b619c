"""Exercise 7: a worker limiter that respects an upstream quota without wasting it.

The misconception: "set the limiter to the quota (50 per 10 s) and you stay within the quota". The upstream
counts calls in fixed windows on its own clock; BullMQ's limiter counts job starts in windows that open when a
job starts after the previous window ended. The two sets of windows do not line up, so one upstream window can
catch the end of one limiter window and the start of the next: a limiter of ``max`` per ``duration`` lets up to

    max * (floor((W - 1) / duration) + 2) - 1

calls into one upstream window of W ms — 99 for "50 per 10 s" against a quota of 50. The cure is windows much
shorter than the quota's with a small ``max`` (1 per W/quota ms lets at most the quota through and runs at the
quota's rate); the opposite mistake, a very cautious limiter, wastes the quota and lets bursts pile up.

The check calls ``choose_limiter(quota_calls, quota_window_ms)`` for two quotas, computes the worst case and the
limiter's rate, and runs a workload on the engine (memory backend): ten workers, jobs that call the upstream
400 ms after they start, a steady trickle at 30% of the quota and three bursts of six quotas' worth of jobs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from queuesim.analysis.metrics import state_counts
from queuesim.errors import OptionError
from queuesim.exercises.base import Exercise, Line, Solution, StudentError, answer_line, fmt, settings
from queuesim.options import Limiter
from queuesim.sim import Burst, Dependency, Deterministic, JobType, Poisson, Simulation

__all__ = ["EXERCISE", "LimiterRun", "limiter_run", "worst_case_calls"]

KEYS = ("max", "duration")
#: (quota calls, quota window ms)
CASES = ((50, 10_000), (20, 2_000))
#: the limiter must run at least at this share of the quota's rate
MIN_RATE_SHARE = 0.75
MIN_DURATION_MS = 10
UPSTREAM = "upstream"
QUEUE = "api-calls"
WORKERS = 10
CALL_AFTER_MS = 400
STEADY_SHARE = 0.3
BURST_QUOTAS = 6
BURST_TIMES_MS = (63_700, 241_300, 422_900)
HORIZON_MS = 600_000


def worst_case_calls(max_jobs: int, duration_ms: int, window_ms: int) -> int:
    """The most job starts a BullMQ limiter of ``max_jobs`` per ``duration_ms`` can let into any interval of
    ``window_ms`` ms.

    A limiter window opens at the first start after the previous one ended and lasts ``duration_ms`` (its last
    millisecond included; a start that finds it full in that millisecond opens the next window at once). The
    worst interval begins in the last millisecond of a window (that window's last ``max - 1`` starts), where the
    next window opens too, and then meets a new window every ``duration_ms``.
    """
    return max_jobs * ((window_ms - 1) // duration_ms + 2) - 1


@dataclass(frozen=True, slots=True)
class LimiterRun:
    """What one run showed.

    Attributes:
        jobs: jobs added.
        refused: calls the upstream refused (over its quota).
        clear_s: per burst, seconds until the queue was back to a few waiting jobs (None: not before the end).
        level: the "cleared" level (waiting jobs).
    """

    jobs: int
    refused: int
    clear_s: tuple[float | None, ...]
    level: int


@functools.lru_cache(maxsize=32)
def limiter_run(max_jobs: int, duration_ms: int, quota_calls: int, window_ms: int, seed: int = 5) -> LimiterRun:
    """Run the workload with this limiter against this quota (memory backend, virtual time)."""
    rate = quota_calls / (window_ms / 1000)
    burst = BURST_QUOTAS * quota_calls
    sim = Simulation(seed=seed, backend="memory")
    sim.queue(QUEUE)
    sim.add_workers(QUEUE, count=WORKERS, limiter={"max": max_jobs, "duration": duration_ms})
    job = JobType("call-api", Deterministic(CALL_AFTER_MS),
                  dependency=Dependency(UPSTREAM, max_calls=quota_calls, window_ms=window_ms))
    sim.add_arrivals(QUEUE, job, Poisson(STEADY_SHARE * rate), until_ms=HORIZON_MS)
    sim.add_arrivals(QUEUE, job, Burst(BURST_TIMES_MS, burst))
    sim.run(HORIZON_MS, drain=True, drain_limit_ms=HORIZON_MS)
    log = sim.event_log()
    refused = int(log["reason"].astype(str).str.contains(f"({UPSTREAM}): rate limited", regex=False).sum())
    queued = state_counts(log)["queued"]
    level = max(5, burst // 20)
    clear: list[float | None] = []
    for t in BURST_TIMES_MS:
        after = queued[(queued.index > t) & (queued <= level)]
        clear.append((int(after.index[0]) - t) / 1000 if len(after) else None)
    return LimiterRun(jobs=int(sum(sim.arrivals.values())), refused=refused, clear_s=tuple(clear), level=level)


def _answer(solution: Solution, quota: int, window: int) -> dict[str, int]:
    answer = settings(solution.call("choose_limiter", quota, window), "choose_limiter", KEYS)
    if answer["max"] < 1:
        raise StudentError(f"choose_limiter: max must be at least 1, got {answer['max']}")
    if answer["duration"] < MIN_DURATION_MS:
        raise StudentError(f"choose_limiter: duration must be at least {MIN_DURATION_MS} ms, got "
                           f"{answer['duration']}")
    try:
        Limiter.parse(answer)
    except OptionError as exc:
        raise StudentError(f"choose_limiter: {exc}") from None
    return answer


def check(solution: Solution) -> list[Line]:
    lines: list[Line] = []
    for quota, window in CASES:
        where = f"quota {quota} calls / {window / 1000:g} s"
        try:
            answer = _answer(solution, quota, window)
        except StudentError as exc:
            lines.append(answer_line(f"choose_limiter({quota}, {window:,})", exc))
            continue
        m, d = answer["max"], answer["duration"]
        quota_rate = quota / (window / 1000)
        rate = m / (d / 1000)
        worst = worst_case_calls(m, d, window)
        align_hint = (f"The limiter's windows are not the upstream's: a limiter window opens when a job starts, so "
                      f"one upstream window of {window / 1000:g} s can catch the end of one limiter window and the "
                      f"start of the next. Worst case = max * (floor((W - 1) / duration) + 2) - 1: with max={m}, "
                      f"duration={d:,} that is {worst} calls. Use limiter windows much shorter than the quota's "
                      f"with a small max (e.g. 1 per ceil(W / quota) ms): the overlap then costs at most one call.")
        rate_hint = (f"This limiter starts at most {rate:.3g} jobs/s, {rate / quota_rate:.0%} of the quota's "
                     f"{quota_rate:g} calls/s: bursts pile up. Short windows with a small max keep the worst case "
                     f"within the quota AND the rate close to it.")
        lines.append(Line(f"{where}: worst-case calls in one upstream window (max={m}, duration={d:,})",
                          worst <= quota, f"<= {quota}", str(worst), align_hint))
        want_rate = MIN_RATE_SHARE * quota_rate
        lines.append(Line(f"{where}: limiter rate", rate >= want_rate, f">= {want_rate:g} jobs/s "
                          f"({MIN_RATE_SHARE:.0%} of the quota)", f"{rate:.3g} jobs/s", rate_hint))
        run = limiter_run(m, d, quota, window)
        lines.append(Line(f"{where}: calls refused by the upstream ({run.jobs:,} jobs on the engine)",
                          run.refused == 0, "0", str(run.refused), align_hint, "simulation"))
        burst = BURST_QUOTAS * quota
        bound = burst / (want_rate - STEADY_SHARE * quota_rate)
        cleared = [c for c in run.clear_s if c is not None]
        slowest = max(cleared) if cleared and len(cleared) == len(run.clear_s) else None
        ok = slowest is not None and slowest <= bound
        lines.append(Line(f"{where}: slowest of {len(run.clear_s)} bursts of {burst} jobs cleared "
                          f"(<= {run.level} waiting)", ok, f"within {math.floor(bound)} s",
                          f"{fmt(slowest, 3)} s" if slowest is not None else "not before the end of the run",
                          rate_hint if not ok and rate < want_rate else align_hint, "simulation"))
    return lines


EXERCISE = Exercise(
    number=7,
    slug="rate-limit",
    title="A limiter for an upstream quota: safe, and not wasteful",
    misconception="\"Set the limiter to the quota and you stay within the quota.\"",
    task=(
        "Every job calls an upstream API that accepts quota_calls per quota_window_ms, counted in fixed windows "
        "on its own clock. BullMQ's worker limiter {max, duration} lets at most max jobs start per window of "
        "duration ms; its windows open when a job starts. Write choose_limiter(quota_calls, quota_window_ms) "
        "returning {\"max\": ..., \"duration\": ...} such that the upstream never refuses a call while the "
        f"limiter still runs at >= {MIN_RATE_SHARE:.0%} of the quota's rate.\n\n"
        "The check computes your limiter's worst case (the most calls it can let into one upstream window) and "
        "its rate, then runs it on the engine: ten workers, each job calls the upstream 400 ms after it starts, "
        "a steady trickle at 30% of the quota and three bursts of six quotas' worth of jobs. It counts the calls "
        "the upstream refused and how long each burst took to clear."),
    predict=(
        "Quota: 50 calls per 10 s. With the limiter {\"max\": 50, \"duration\": 10000}, what is the largest "
        "number of calls that can land in one upstream window? Guess, then check that limiter first and read "
        "the refused calls in the output."),
    starter="ex7_rate_limit.py",
    functions=("choose_limiter",),
    check=check,
    runs="two 600 s workloads (about 2,000 jobs each) on the memory backend",
)
