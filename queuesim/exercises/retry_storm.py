"""Exercise 5: a backoff that lets a queue recover from a retry storm.

The misconception: "retrying quickly gets the work done sooner; a backoff only delays the jobs". In the built-in
``retry-storm`` scenario a 30-second outage leaves a backlog that keeps all 20 worker slots busy; above 17 busy
slots the downstream times out 70% of the calls, so the jobs retry, so the slots stay busy. With fixed 1 s
retries the queue never recovers: the trigger is gone, the failure stays (a metastable state). What lets it
recover is giving the downstream room: retries must come back slower than the spare capacity absorbs them.
Exponential backoff from 1 s is not enough here, and "full jitter" (a delay anywhere between 0 and the
exponential value) sends many retries straight back; a first delay of several seconds, growing, with partial
jitter ("equal jitter": between half and all of the value) recovers within a minute or two.

The check plugs the student's ``retry_delay_ms(attempt, u)`` into the workers as a custom BullMQ backoff
strategy, runs the scenario (loaded with :func:`queuesim.scenario.load_scenario`, its own numbers, on the memory
backend) with its own seed and one more, and grades the recovery: how soon the backlog is back to normal after
the outage, the peak backlog, the backlog at the end, and that no job was given up on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from queuesim.analysis.metrics import state_counts
from queuesim.exercises.base import Exercise, Line, NotDone, Solution, StudentError, answer_line, fmt, whole
from queuesim.scenario import load_scenario
from queuesim.scenario.schema import ms
from queuesim.sim import Simulation

__all__ = ["EXERCISE", "StormRun", "storm_run"]

SCENARIO = "retry-storm"
#: the longest delay accepted: beyond it a "retry" is giving up slowly
MAX_DELAY_MS = 300_000
#: the backlog must be back to normal within this long after the outage ends
RECOVERY_LIMIT_S = 180
#: most jobs in the system at any time
PEAK_LIMIT = 150
#: delays shorter than this count as "came straight back" in the diagnosis
SHORT_DELAY_MS = 5_000
#: the name the strategy is registered under on the workers
STRATEGY = "classroom"
#: the jitter values the shape check tries with every attempt number 1..19
SHAPE_U = (0.0, 0.5, 0.999)


@dataclass(frozen=True, slots=True)
class StormRun:
    """What one run of the retry-storm scenario showed.

    Attributes:
        seed: the run's seed.
        outage_end_s: when the downstream came back.
        normal: the "back to normal" level: twice the mean number of jobs in the system without trouble.
        peak: most jobs in the system (waiting, delayed for a backoff, or active) at any time.
        recovery_s: seconds from the end of the outage until the backlog first fell to ``normal`` (None: never).
        end_backlog: jobs in the system when the run ended.
        dlq: jobs given up on (sent to the dead-letter queue).
        delays: how many backoff delays the strategy returned.
        short_share: the share of those delays shorter than :data:`SHORT_DELAY_MS`.
    """

    seed: int
    outage_end_s: float
    normal: int
    peak: int
    recovery_s: float | None
    end_backlog: int
    dlq: int
    delays: int
    short_share: float


def storm_run(delay_ms: Callable[[int, float], int] | None, seed: int | None = None) -> StormRun:
    """Run the retry-storm scenario with ``delay_ms(attempt, u)`` as the backoff of every job (None: the
    scenario's own backoff), on the memory backend."""
    loaded = load_scenario(SCENARIO)
    scenario = loaded.scenario
    run_seed = scenario.seed if seed is None else seed
    sim = Simulation(seed=run_seed, backend="memory")
    q = scenario.queues[0]
    options = q.default_job_options.engine() if q.default_job_options is not None else {}
    given: list[int] = []
    strategies: dict[str, Any] = {}
    if delay_ms is not None:
        jitter = np.random.default_rng(run_seed)

        def strategy(attempt: int, _type: str, _error: BaseException | None, _job: Any) -> int:
            u = float(jitter.random())
            d = _delay(delay_ms, attempt, u)
            given.append(d)
            return d

        options["backoff"] = {"type": STRATEGY}
        strategies[STRATEGY] = strategy
    sim.queue(q.name, dead_letter_queue=q.dead_letter_queue, default_job_options=options)
    sim.add_workers(q.name, count=q.workers.count, concurrency=q.workers.concurrency, **q.workers.engine(),
                    backoff_strategies=strategies)

    def active() -> int:  # the downstream's overload probe: attempts running now
        return sum(len(w.held) for w in sim.workers.values() if w.state != "crashed")

    job_types = scenario.job_types(loaded.base_dir, overload_probe=lambda _queue: active)
    assert scenario.horizon.duration_s is not None
    horizon = ms(scenario.horizon.duration_s)
    normal_load = 0.0
    for job in scenario.jobs:
        assert job.arrivals is not None
        jt = job_types[job.name]
        sim.add_arrivals(q.name, jt, job.arrivals.build(loaded.base_dir), until_ms=horizon)
        normal_load += getattr(job.arrivals, "rate_per_s", 0.0) * jt.service.mean_ms / 1000  # type: ignore[union-attr]
    sim.run(horizon)
    outage_end = max(o.end_s for d in scenario.dependencies for o in d.outages)
    counts = state_counts(sim.event_log())["in_system"]
    normal = max(1, round(2 * normal_load))
    after = counts[counts.index >= ms(outage_end)]
    back = after[after <= normal]
    jobs = sim.jobs()
    short = sum(1 for d in given if d < SHORT_DELAY_MS)
    return StormRun(seed=run_seed, outage_end_s=outage_end, normal=normal, peak=int(counts.max()),
                    recovery_s=(int(back.index[0]) - ms(outage_end)) / 1000 if len(back) else None,
                    end_backlog=int(counts.iloc[-1]), dlq=int((jobs["final_state"] == "dlq").sum()),
                    delays=len(given), short_share=short / len(given) if given else 0.0)


@functools.lru_cache(maxsize=4)
def baseline(seed: int | None = None) -> StormRun:
    """The scenario with its own fixed backoff (cached: it does not depend on the student)."""
    return storm_run(None, seed)


def _delay(fn: Callable[[int, float], int], attempt: int, u: float) -> int:
    try:
        value = fn(attempt, u)
    except NotImplementedError:
        raise NotDone("retry_delay_ms") from None
    except Exception as exc:  # the student's strategy may raise anything
        raise StudentError(f"retry_delay_ms({attempt}, {u!r}) raised {type(exc).__name__}: {exc}") from None
    d = whole(value, "retry_delay_ms")
    if d > MAX_DELAY_MS:
        raise StudentError(f"retry_delay_ms({attempt}, {u!r}) returned {d:,} ms; at most {MAX_DELAY_MS:,} ms "
                           "(5 minutes) is allowed: a longer wait is giving up slowly")
    return d


def _hint(runs: list[StormRun]) -> str:
    base = baseline()
    start = (f"With the scenario's fixed 1 s backoff the backlog is {base.end_backlog} jobs at the end and never "
             "recovers: after the outage every slot is busy, 70% of the calls fail, and fast retries keep it that "
             "way (a metastable retry storm). ")
    delays = sum(r.delays for r in runs)
    if delays:
        short = sum(r.short_share * r.delays for r in runs) / delays
        start += f"In your runs {short:.0%} of the retries came back within {SHORT_DELAY_MS // 1000} s. "
    return start + ("Give the downstream room: wait several seconds before the first retry and grow from there "
                    "(e.g. exponential from 10 s, capped at a couple of minutes), and keep the jitter partial "
                    "(between half and all of the delay): full jitter, from 0 up, sends many retries straight back.")


def check(solution: Solution) -> list[Line]:
    fn = solution.function("retry_delay_ms")
    lines: list[Line] = []
    shape: list[str] = []
    try:
        for attempt in range(1, 20):
            for u in SHAPE_U:
                _delay(fn, attempt, u)
        first = [_delay(fn, attempt, 0.5) for attempt in (1, 2, 3, 4)]
        shape.append(", ".join(f"{d / 1000:g} s" for d in first) + ", ...")
    except StudentError as exc:
        return [answer_line("retry_delay_ms(attempt, u) for attempts 1..19", exc)]
    lines.append(Line("retry_delay_ms(attempt, u) for attempts 1..19", True,
                      f"whole ms between 0 and {MAX_DELAY_MS:,}", f"with u = 0.5: {shape[0]}", "", "answer"))
    scenario_seed = load_scenario(SCENARIO).scenario.seed
    runs: list[StormRun] = []
    for seed in (scenario_seed, scenario_seed + 1):
        try:
            runs.append(storm_run(fn, seed))
        except StudentError as exc:
            lines.append(answer_line(f"retry-storm, seed {seed}", exc))
    checks: list[tuple[str, bool, str, str]] = []
    for run in runs:
        where = f"seed {run.seed}"
        recovered = run.recovery_s is not None and run.recovery_s <= RECOVERY_LIMIT_S
        got = (f"after {fmt(run.recovery_s, 3)} s" if run.recovery_s is not None
               else f"never (backlog {run.end_backlog} at the end)")
        checks += [
            (f"{where}: backlog back to normal (<= {run.normal} jobs) after the outage ends at "
             f"{fmt(run.outage_end_s)} s", recovered, f"within {RECOVERY_LIMIT_S} s", got),
            (f"{where}: peak backlog", run.peak <= PEAK_LIMIT, f"<= {PEAK_LIMIT} jobs", f"{run.peak} jobs"),
            (f"{where}: backlog at the end of the run", run.end_backlog <= 2 * run.normal,
             f"<= {2 * run.normal} jobs (it stays recovered)", f"{run.end_backlog} jobs"),
        ]
    hint = "" if all(ok for _, ok, _, _ in checks) else _hint(runs)  # the hint runs the baseline: only if needed
    lines.extend(Line(label, ok, want, got, hint, "simulation") for label, ok, want, got in checks)
    dlq_hint = ("Every job has 20 attempts: a backoff that spreads retries out should not need to use them all. "
                "Keep the delays growing but below the 5-minute cap.")
    lines.extend(Line(f"seed {run.seed}: jobs given up on (dead-letter queue)", run.dlq == 0, "0", str(run.dlq),
                      dlq_hint, "simulation") for run in runs)
    return lines


EXERCISE = Exercise(
    number=5,
    slug="backoff",
    title="A backoff that ends a retry storm",
    misconception="\"Retrying quickly gets the work done sooner; backoff only delays jobs.\"",
    task=(
        "In the built-in retry-storm scenario (queuesim show retry-storm) a 30-second outage tips the queue into "
        "a retry storm it never leaves: above 17 busy slots the downstream fails 70% of the calls, and with "
        "fixed 1 s retries the slots never get below that. Write retry_delay_ms(attempt, u): the wait in ms "
        "before the next attempt, after attempt number `attempt` failed; u is a uniform random number in "
        "[0, 1) for jitter.\n\n"
        "The check runs the scenario on the engine with your strategy as a custom BullMQ backoff, with the "
        f"scenario's seed and one more. It passes when, on both, the backlog is back to normal within "
        f"{RECOVERY_LIMIT_S} s of the outage's end and stays there, never exceeds {PEAK_LIMIT} jobs, and no job "
        "is given up on."),
    predict=(
        "The scenario's description suggests exponential backoff. Will exponential backoff from 1 s recover? "
        "Will 'full jitter' (a delay anywhere between 0 and the exponential value) help or hurt? Guess, then try "
        "each idea in your file and read the recovery times in the check's output."),
    starter="ex5_backoff.py",
    functions=("retry_delay_ms",),
    check=check,
    runs="the retry-storm scenario (900 s, about 1,600 jobs) on the memory backend, twice",
)
