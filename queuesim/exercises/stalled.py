"""Exercise 6: lock duration, stalled checks and crashed workers.

Two opposite misconceptions meet here:

* "the lock must outlive the longest job" — no: a worker renews its locks while the job runs, at the latest
  every ``lock_duration / 2``. A long lock only delays the recovery of a crashed worker's jobs, which come back
  when the lock has expired and a stalled check has seen it: up to about ``lock_duration + 2 * stalled_interval``
  after the crash;
* "a short lock makes recovery fast, at no cost" — a worker whose event loop is blocked (a CPU-heavy step)
  cannot renew. When the block starts the lock may have only half its duration left, so a block longer than
  ``lock_duration / 2`` can let the lock expire: the stalled check hands the job to another worker while the
  first one is still working on it, and the job is processed twice.

And ``max_stalled_count`` must allow as many stalls as crashes may hit one job, or the job fails for good.

The check calls ``worker_settings(longest_block_ms, recovery_bound_ms, crashes_per_job)`` for two workloads and
runs each on the embedded Redis (fakeredis, the engine's Lua scripts) in virtual time: long jobs on four workers
whose event loops block now and then for the longest block, and three crashes (each crashed worker is replaced
5 s later), with the same job crashed again when ``crashes_per_job`` is 2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from queuesim.errors import OptionError
from queuesim.exercises.base import Exercise, Line, Solution, StudentError, answer_line, settings
from queuesim.options import WorkerOptions
from queuesim.sim import JobType, Poisson, Simulation, Uniform

__all__ = ["EXERCISE", "StallRun", "stall_run"]

KEYS = ("lock_duration", "stalled_interval", "max_stalled_count")
#: (longest block ms, recovery bound ms, crashes per job)
CASES = ((20_000, 120_000, 2), (5_000, 30_000, 1))
#: the shortest lock and check period accepted (a busier check costs Redis work on every worker, every time)
MIN_MS = 1_000
MAX_MS = 3_600_000
MAX_STALLED = 100

QUEUE = "reports"
WORKERS = 4
JOB = JobType("render-report", Uniform(60_000, 180_000))
ARRIVALS_PER_S = 0.025
HORIZON_MS = 1_200_000
#: mean time between two blocks of one worker's event loop
BLOCK_EVERY_MS = 120_000
CRASH_TIMES_MS = (240_000, 600_000, 900_000)
RESTART_AFTER_MS = 5_000
#: the second crash of the same job comes this long after it restarted elsewhere
SECOND_CRASH_AFTER_MS = 10_000
STALL_LIMIT_REASON = "stalled more than allowable limit"


@dataclass(frozen=True, slots=True)
class StallRun:
    """What one run of the workload showed.

    Attributes:
        jobs: jobs added.
        completed: jobs that completed.
        twice: ids of the jobs a live worker lost to another one (processed twice).
        crashes: (crash time ms, job id, ms until the job was back in the queue or None) per crash.
        stall_failures: ids of the jobs that failed because they stalled too often.
    """

    jobs: int
    completed: int
    twice: tuple[str, ...]
    crashes: tuple[tuple[int, str, int | None], ...]
    stall_failures: tuple[str, ...]


def _freezes(sim: Simulation, worker_ids: list[str], start_ms: int, block_ms: int,
             rng: np.random.Generator) -> None:
    for wid in worker_ids:
        t = start_ms
        while True:
            t += int(rng.exponential(BLOCK_EVERY_MS)) + 1
            if t >= HORIZON_MS:
                break
            sim.freeze_worker(wid, at_ms=t, duration_ms=block_ms)


def _holder(sim: Simulation, job_id: str | None = None) -> tuple[str, str] | None:
    """(worker id, job id) of the first running, unblocked worker holding ``job_id`` (any job when None)."""
    for w in sim.workers.values():
        if w.state != "running" or w.frozen:
            continue
        for held in w.held:
            if job_id is None or held == job_id:
                return w.id, held
    return None


@functools.lru_cache(maxsize=32)
def stall_run(lock_duration: int, stalled_interval: int, max_stalled_count: int, block_ms: int,
              crashes_per_job: int, seed: int = 3) -> StallRun:
    """Run the workload with these worker settings on fakeredis, in virtual time."""
    options = {"lock_duration": lock_duration, "stalled_interval": stalled_interval,
               "max_stalled_count": max_stalled_count}
    sim = Simulation(seed=seed, backend="fakeredis")
    sim.queue(QUEUE)
    rng = np.random.default_rng(seed)
    _freezes(sim, sim.add_workers(QUEUE, count=WORKERS, **options), 0, block_ms, rng)
    sim.add_arrivals(QUEUE, JOB, Poisson(ARRIVALS_PER_S), until_ms=HORIZON_MS)
    crashes: list[tuple[int, str]] = []

    def crash(worker_id: str, job_id: str) -> None:
        now = sim.now_ms
        sim.crash_worker(worker_id, at_ms=now)
        crashes.append((now, job_id))
        _freezes(sim, sim.add_workers(QUEUE, 1, at_ms=now + RESTART_AFTER_MS, **options), now + RESTART_AFTER_MS,
                 block_ms, rng)

    for t in CRASH_TIMES_MS:
        if sim.now_ms >= t:
            continue
        sim.run(t)
        target = _holder(sim)
        if target is None:
            continue
        crash(*target)
        job_id = target[1]
        for _ in range(1, crashes_per_job):
            # follow the job: once another worker runs it, crash that one too
            found = None
            while found is None and sim.now_ms < t + 600_000:
                sim.run(sim.now_ms + 1_000)
                found = _holder(sim, job_id)
            if found is None:
                break
            sim.run(sim.now_ms + SECOND_CRASH_AFTER_MS)
            again = _holder(sim, job_id)
            if again is None:
                break
            crash(*again)
    sim.run(max(sim.now_ms, HORIZON_MS), drain=True, drain_limit_ms=HORIZON_MS)
    log = sim.event_log()
    jobs = sim.jobs()
    incidents = sim.recorder.incident_log()
    lost = set(incidents.loc[incidents["kind"].isin(("lock-lost", "lock-renewal-failed")), "job_id"].dropna())
    hits: dict[str, int] = {}
    for _, job_id in crashes:
        hits[job_id] = hits.get(job_id, 0) + 1
    extra = {str(r.job_id) for r in jobs.itertuples() if r.stalls > hits.get(str(r.job_id), 0)}
    recovered: list[tuple[int, str, int | None]] = []
    for at, job_id in crashes:
        rows = log[(log["job_id"] == job_id) & (log["time_ms"] >= at) & (log["from"] == "active")]
        first = rows.iloc[0] if len(rows) else None
        back = first is not None and first["to"] == "waiting" and first["reason"] == "stalled"
        recovered.append((at, job_id, int(first["time_ms"]) - at if back else None))
    failures = log[(log["to"] == "failed") & log["reason"].astype(str).str.contains(STALL_LIMIT_REASON)]
    stall_failed = tuple(sorted({str(j) for j in failures["job_id"]}, key=_job_order))
    return StallRun(jobs=len(jobs), completed=int((jobs["final_state"] == "completed").sum()),
                    twice=tuple(sorted(lost | extra, key=_job_order)), crashes=tuple(recovered),
                    stall_failures=stall_failed)


def _job_order(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (1 << 30, job_id)


def _validate(answer: dict[str, int]) -> None:
    for key in ("lock_duration", "stalled_interval"):
        if not MIN_MS <= answer[key] <= MAX_MS:
            raise StudentError(f"worker_settings: {key} must be between {MIN_MS:,} and {MAX_MS:,} ms, got "
                               f"{answer[key]:,}")
    if answer["max_stalled_count"] > MAX_STALLED:
        raise StudentError(f"worker_settings: max_stalled_count must be between 0 and {MAX_STALLED}, got "
                           f"{answer['max_stalled_count']}")
    try:
        WorkerOptions.build(**answer)
    except OptionError as exc:
        raise StudentError(f"worker_settings: {exc}") from None


def check(solution: Solution) -> list[Line]:
    lines: list[Line] = []
    for block, bound, per_job in CASES:
        crashes = f"{per_job} crash{'es' if per_job != 1 else ''}"
        where = f"blocks <= {block / 1000:g} s, recovery <= {bound / 1000:g} s, {crashes} per job"
        label = f"worker_settings({block:,}, {bound:,}, {per_job})"
        try:
            answer = settings(solution.call("worker_settings", block, bound, per_job), "worker_settings", KEYS)
            _validate(answer)
        except StudentError as exc:
            lines.append(answer_line(label, exc))
            continue
        shown = ", ".join(f"{k}={v:,}" for k, v in answer.items())
        run = stall_run(answer["lock_duration"], answer["stalled_interval"], answer["max_stalled_count"], block,
                        per_job)
        lock_hint = ("A blocked worker cannot renew its locks, and a lock is renewed at the latest every "
                     "lock_duration / 2, so a block may start when the lock has only half its duration left: "
                     f"lock_duration must be more than twice the longest block (here more than {2 * block / 1000:g} "
                     "s). It does NOT need to outlive the job: the lock is renewed while the job runs.")
        recovery_hint = (f"A crashed worker's job comes back only when its lock has expired (up to lock_duration "
                         f"after the crash) and a stalled check has seen it (up to about two stalled_interval more): "
                         f"keep lock_duration + 2 * stalled_interval within {bound / 1000:g} s. A lock longer than "
                         "the longest job only makes the recovery slower.")
        count_hint = (f"A job hit by {crashes} stalls {per_job} time{'s' if per_job != 1 else ''}; with "
                      f"max_stalled_count = n, stall number n + 1 fails the job for good: set it to at least "
                      f"{per_job}.")
        twice = ", ".join(run.twice[:8]) + (" ..." if len(run.twice) > 8 else "")
        lines.append(Line(f"{where}: jobs processed twice ({shown})", not run.twice, "0",
                          f"{len(run.twice)} (jobs {twice})" if run.twice else "0", lock_hint, "simulation"))
        if run.crashes:
            slow = [d for *_, d in run.crashes if d is not None and d > bound]
            never = [job for _, job, d in run.crashes if d is None]
            worst = max((d for *_, d in run.crashes if d is not None), default=None)
            got = f"slowest {worst / 1000:g} s over {len(run.crashes)} crashes" if worst is not None else "-"
            if never:
                got += f"; job {', '.join(never)} never came back"
            lines.append(Line(f"{where}: crashed jobs back in the queue", not slow and not never,
                              f"within {bound / 1000:g} s of each crash", got,
                              recovery_hint if slow else count_hint, "simulation"))
        lines.append(Line(f"{where}: jobs failed for stalling too often", not run.stall_failures, "0",
                          f"{len(run.stall_failures)} (jobs {', '.join(run.stall_failures)})" if run.stall_failures
                          else "0", count_hint, "simulation"))
    return lines


EXERCISE = Exercise(
    number=6,
    slug="stalled-jobs",
    title="Locks and stalled jobs: recover crashes fast, never run a job twice",
    misconception="\"The lock must outlive the longest job\" / \"a short lock makes recovery fast at no cost.\"",
    task=(
        "Report jobs take 1 to 3 minutes. Now and then a worker's event loop is blocked for up to "
        "longest_block_ms (it cannot renew its locks meanwhile), and now and then a worker crashes, sometimes "
        "twice on the same job. Write worker_settings(longest_block_ms, recovery_bound_ms, crashes_per_job) "
        "returning lock_duration, stalled_interval and max_stalled_count (ms, ms, count) such that no job is "
        "processed twice, a crashed worker's job is back in the queue within the bound, and no job fails for "
        "stalling too often.\n\n"
        "The check runs two workloads on the embedded Redis (the engine's Lua scripts) in virtual time: four "
        "workers, blocks at random moments, three crashes with a replacement worker 5 s later. It reads the "
        "engine's record: lost locks, stalls, and when each crashed job went back to the queue."),
    predict=(
        "With BullMQ's defaults (lock 30 s, stalled check every 30 s, 1 stall allowed) and blocks of up to 20 s: "
        "will a blocked worker lose its jobs? How long after a crash is its job back in the queue? And with a "
        "lock of 5 minutes, 'longer than any job'? Guess, then check the defaults first."),
    starter="ex6_stalled_jobs.py",
    functions=("worker_settings",),
    check=check,
    runs="two 20-minute workloads (about 30 jobs each) on fakeredis in virtual time",
)
