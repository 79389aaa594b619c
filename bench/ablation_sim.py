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

Usage::

    python bench/ablation_sim.py [--jobs 60000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

VARIANTS = ("everything", "no recorder", "no packing", "no recorder, no packing", "no events")


def child(variant: str, jobs: int) -> dict[str, float]:
    """One run of ``variant``: CPU seconds per job."""
    from queuesim.backends import memory
    from queuesim.sim import Exponential, JobType, Poisson, Simulation

    if "no packing" in variant:
        memory._Stream.trim = lambda self, max_len, approx, limit: 0  # type: ignore[method-assign]
        memory._Stream.maybe_trim = lambda self, max_len: None  # type: ignore[method-assign]
    if variant == "no events":
        memory.MemoryBackend._emit = lambda self, q, now, fields, capped=True: None  # type: ignore[method-assign]
    sim = Simulation(seed=1, backend="memory", record="stats")
    if "no recorder" in variant or variant == "no events":
        sim.recorder.pull = lambda: None  # type: ignore[method-assign]
        sim._check_complete = lambda: None  # type: ignore[method-assign]
    sim.queue("bench")
    sim.add_workers("bench", count=4)
    sim.add_arrivals("bench", JobType("work", Exponential(1000), options={"remove_on_complete": True}),
                     Poisson(3.6))
    start = time.process_time()
    sim.run(until_ms=int(jobs / 3.6 * 1000))
    cpu = time.process_time() - start
    return {"us_per_job": 1e6 * cpu / jobs}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
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
