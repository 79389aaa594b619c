"""What each part of a simulation costs: the M/M/4 benchmark scenario with parts switched off.

A profiler slows small functions down more than big ones; switching a part off and timing the run without a
profiler shows what the part really costs. Each variant runs in a fresh process; the rounds alternate between
the variants so that the load of a shared machine falls on all of them alike, and the best round counts. The
runs with a part switched off give wrong results on purpose: only their time is meaningful.

Variants (memory backend, streaming statistics):

* ``everything`` — the benchmark as ``bench/suite.py`` runs it;
* ``no recorder`` — the recorder never reads the events streams;
* ``no packing`` — the events stream keeps its entries but is never packed into nodes nor trimmed
  (``MAXLEN ~`` does nothing);
* ``no recorder, no packing`` — both;
* ``no events`` — the backend writes no events at all (so the recorder has nothing to read).

On a shared machine the CPU time of a run varies by 10 % or more from one minute to the next, which hides
the smaller parts. ``--instructions`` counts instead the machine instructions each variant executes per job,
under valgrind (``cachegrind`` without cache simulation), the way ``bench/instructions.py`` counts them: two
runs per variant, of ``--jobs`` and of three times as many jobs, whose difference leaves out Python's start-up.
The count is the same from one run to the next (string hashing is fixed with ``PYTHONHASHSEED=0``). These runs
cap the events stream at 2,000 entries, so that they pack and trim it as a long run does.

Usage::

    python bench/ablation_sim.py [--jobs 60000] [--rounds 3]
    python bench/ablation_sim.py --instructions [--jobs 2000]      # needs valgrind; a few minutes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instructions import EVENTS_CAP, count, per_job

VARIANTS = ("everything", "no recorder", "no packing", "no recorder, no packing", "no events")


def child(variant: str, jobs: int, max_len_events: int | None = None) -> dict[str, float]:
    """One run of ``variant``: CPU seconds per job (``max_len_events``: the events stream's cap, the
    simulation's default when None), and the jobs added."""
    from suite import bench_simulation, until_ms_for

    from queuesim.backends import memory

    if "no packing" in variant:
        memory._Stream.trim = lambda self, max_len, approx, limit: 0  # type: ignore[method-assign]
        memory._Stream.maybe_trim = lambda self, max_len: None  # type: ignore[method-assign]
    if variant == "no events":
        memory.MemoryBackend._emit = lambda self, q, now, fields, capped=True: None  # type: ignore[method-assign]
    sim = bench_simulation("memory", 1, "stats", max_len_events)
    if "no recorder" in variant or variant == "no events":
        sim.recorder.pull = lambda: None
        sim._check_complete = lambda: None
    start = time.process_time()
    sim.run(until_ms=until_ms_for(jobs))
    cpu = time.process_time() - start
    return {"us_per_job": 1e6 * cpu / jobs, "arrivals": sim.queues["bench"].arrivals}


def instructions(variant: str, jobs: int) -> tuple[int, int]:
    """Machine instructions of one run of ``variant`` (start-up included), counted by valgrind, and the jobs
    it added."""
    n, out = count([sys.executable, __file__, "--child", variant, str(jobs), str(EVENTS_CAP)])
    return n, int(json.loads(out.strip().splitlines()[-1])["arrivals"])


def count_instructions(jobs: int) -> None:
    counts = {v: per_job(lambda n, v=v: instructions(v, n), jobs) for v in VARIANTS}
    print(f"M/M/4 at rho=0.9, memory backend, streaming statistics; machine instructions per job "
          f"(runs of {jobs:,} and {3 * jobs:,} jobs)")
    base = counts["everything"]
    for variant in VARIANTS:
        n = counts[variant]
        print(f"  {variant:<26}{n:12,.0f}   {100 * (base - n) / base:5.1f} % less than everything")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        cap = int(sys.argv[4]) if len(sys.argv) > 4 else None
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), cap)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=None, help="jobs per run (60,000; 2,000 with --instructions)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instructions", action="store_true", help="count instructions under valgrind")
    args = ap.parse_args()
    if args.instructions:
        count_instructions(args.jobs or 2_000)
        return
    args.jobs = args.jobs or 60_000
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, str(args.jobs)],
                                 capture_output=True, text=True, check=True)
            us = json.loads(out.stdout.strip().splitlines()[-1])["us_per_job"]
            best[variant] = min(us, best.get(variant, us))
    print(f"{args.jobs:,} jobs, M/M/4 at rho=0.9, memory backend, streaming statistics; "
          f"CPU µs per job, best of {args.rounds}")
    base = best["everything"]
    for variant in VARIANTS:
        us = best[variant]
        print(f"  {variant:<26}{us:8.1f} µs/job   {1e6 / us:9,.0f} jobs per CPU second   "
              f"{100 * (base - us) / base:5.1f} % less than everything")


if __name__ == "__main__":
    main()
