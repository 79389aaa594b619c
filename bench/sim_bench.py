"""Simulation speed: simulated jobs per wall-clock second, M/M/4 at ρ = 0.9, on each simulation backend.

The scenario is the one of theory-oracles.md row 4 / row 25: Poisson arrivals at 3.6 jobs/s, 4 workers of
concurrency 1, exponential service with mean 1 s, BullMQ's default lock (30 s) and stalled-check (30 s) timers,
the recorder reading the events stream. Everything the simulation does is counted: arrivals, engine calls,
SimPy scheduling, recording. The recorder's tables are built after the timed run and reported separately.

Usage::

    python bench/sim_bench.py [--jobs-memory 20000] [--jobs-fakeredis 2000] [--runs 3]

Prints a table; no assertion on timings (they depend on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

from queuesim.sim import Exponential, JobType, Poisson, Simulation

RATE_PER_S = 3.6
WORKERS = 4
MEAN_SERVICE_MS = 1_000


def one_run(backend: str, jobs: int, seed: int) -> tuple[float, int, float]:
    """Simulate about ``jobs`` arrivals; returns (wall seconds of the run, jobs finished, seconds for tables)."""
    sim = Simulation(seed=seed, backend=backend)
    sim.queue("bench")
    sim.add_workers("bench", count=WORKERS)
    sim.add_arrivals("bench", JobType("work", Exponential(MEAN_SERVICE_MS), options={"remove_on_complete": True}),
                     Poisson(RATE_PER_S))
    until_ms = int(jobs / RATE_PER_S * 1000)
    start = time.perf_counter()
    sim.run(until_ms=until_ms)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    table = sim.jobs()
    tables = time.perf_counter() - start
    return elapsed, int(table["final_state"].eq("completed").sum()), tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs-memory", type=int, default=20_000)
    parser.add_argument("--jobs-fakeredis", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"M/M/{WORKERS} at rho = {RATE_PER_S / WORKERS:.2f}, mean service {MEAN_SERVICE_MS} ms, "
          f"median of {args.runs} runs")
    print(f"{'backend':<10} {'jobs':>8} {'wall s':>8} {'jobs/s':>9} {'sim s per wall s':>17} {'tables s':>9}")
    for backend, jobs in (("memory", args.jobs_memory), ("fakeredis", args.jobs_fakeredis)):
        results = [one_run(backend, jobs, seed) for seed in range(1, args.runs + 1)]
        rates = [done / wall for wall, done, _ in results]
        rate = statistics.median(rates)
        wall = statistics.median(r[0] for r in results)
        done = int(statistics.median(r[1] for r in results))
        speedup = (jobs / RATE_PER_S) / wall
        tables = statistics.median(r[2] for r in results)
        print(f"{backend:<10} {done:>8} {wall:>8.2f} {rate:>9.0f} {speedup:>17.0f} {tables:>9.2f}")


if __name__ == "__main__":
    main()
