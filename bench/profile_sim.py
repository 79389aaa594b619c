"""Where a simulation's time goes: cProfile of the M/M/4 benchmark scenario, grouped by layer.

Each function's own time (cProfile's ``tottime``) is added to the layer its file belongs to:

* ``engine backend`` — ``queuesim/backends`` (the memory backend's transitions, or the Redis backend's calls);
* ``fakeredis + Lua`` — fakeredis' command processing and the Lua runtime (built-ins called from it);
* ``engine API`` — ``Queue``, ``Worker``, ``Job``, options;
* ``simulation`` — ``queuesim/sim`` apart from the recorder (SimPy processes of workers, producers, dispatch);
* ``recorder`` — reading the events stream into the event log / statistics;
* ``SimPy kernel``, ``numpy`` (random draws), ``Python built-ins`` and ``other``.

cProfile slows small functions down more than big ones, so the shares are indicative; the percentages of the
layers are what ``docs/performance.md`` quotes.

Usage::

    python bench/profile_sim.py [--backend memory] [--jobs 40000] [--record log] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats

from queuesim.sim import Exponential, JobType, Poisson, Simulation

LAYERS = (
    ("queuesim/sim/recorder", "recorder"),
    ("queuesim/backends", "engine backend"),
    ("queuesim/sim", "simulation"),
    ("queuesim/", "engine API"),
    ("fakeredis", "fakeredis + Lua"),
    ("lupa", "fakeredis + Lua"),
    ("redis/", "redis-py client"),
    ("simpy", "SimPy kernel"),
    ("numpy", "numpy"),
)


def layer_of(filename: str, backend: str) -> str:
    for marker, layer in LAYERS:
        if marker in filename:
            return layer
    if filename == "~":  # C built-ins; on fakeredis most of them run the Lua scripts (lupa)
        return "fakeredis + Lua" if backend == "fakeredis" else "Python built-ins"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="memory", choices=["memory", "fakeredis"])
    ap.add_argument("--jobs", type=int, default=40_000)
    ap.add_argument("--record", default="log", choices=["log", "stats"])
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    sim = Simulation(seed=1, backend=args.backend, record=args.record)
    sim.queue("bench")
    sim.add_workers("bench", count=4)
    sim.add_arrivals("bench", JobType("work", Exponential(1000), options={"remove_on_complete": True}),
                     Poisson(3.6))
    profile = cProfile.Profile()
    profile.runcall(sim.run, until_ms=int(args.jobs / 3.6 * 1000))
    stats = pstats.Stats(profile)
    layers: collections.Counter[str] = collections.Counter()
    calls = 0
    for (filename, _, _), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        layers[layer_of(filename, args.backend)] += tottime
        calls += ncalls
    total = sum(layers.values())
    print(f"{args.jobs:,} jobs on {args.backend} ({args.record}): {total:.2f} s under cProfile, "
          f"{calls / args.jobs:.0f} Python function calls per job")
    for layer, seconds in layers.most_common():
        print(f"  {layer:<18}{100 * seconds / total:6.1f} %   {1e6 * seconds / args.jobs:7.1f} µs/job")
    print(f"\ntop {args.top} functions by own time:")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
