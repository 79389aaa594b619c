"""Every benchmark of ``docs/performance.md``, side by side with the peer programs, in one run (``make bench``).

Four sections, each reported as medians over ``--runs`` runs with ratios against peers measured in the same run
(the machines are shared and noisy: the ratios mean more than the absolute figures):

a. **Simulation on the memory backend** — M/M/4 at ρ = 0.9 (λ = 3.6/s, mean service 1 s), ``--sim-jobs`` jobs
   (200,000 by default), end to end: arrivals, the engine's transitions, the workers' SimPy processes and the
   recorder (event log mode, the default, and streaming statistics). Peers: Ciw and a hand-written SimPy M/M/c
   (``bench_ciw.py``, ``bench_simpy.py``). Unit: simulated jobs per wall second. The mean wait is printed next
   to Erlang C's exact 1.969 s as a check that the fast run is also a right one.
b. **Simulation on fakeredis** — the same scenario with ``--fake-jobs`` jobs (20,000) on the embedded fakeredis,
   every transition a Lua script. Peer: the official Python ``bullmq`` package running its own scripts on
   fakeredis (``py_bullmq_bench.py fake``); its jobs/s end to end is one add plus one processing per job:
   ``1 / (1/add + 1/process)`` with its faster processing figure (concurrency 1 or 50).
c. **Live on a real Redis** (a private ``redis-server`` on a free port) — no-op jobs: add_bulk, add, process at
   concurrency 1 and 50 (``bench/engine_bench.py``'s protocol). Peers: the Python ``bullmq`` package and, when
   ``npm`` is available, Node BullMQ (``node_bullmq_bench.js``).
d. **Scaling on the memory backend** — 10k / 100k / 1M jobs with streaming statistics, each run in a fresh
   process, ``--runs`` times per size, the sizes alternating: median wall and CPU time (they should grow
   linearly) and peak RSS. The share of time the hypervisor took from the machine (steal) is printed next to
   each size: wall time holds it, CPU time does not.

Usage::

    python bench/suite.py [--only abcd] [--runs 3] [--sim-jobs 200000] [--fake-jobs 20000]
                          [--peer-fake-jobs 2000] [--n-real 20000] [--scaling 10000,100000,1000000]

The peers come from ``$QUEUESIM_PEERS_DIR`` (a folder of the peer programs; copied to a temporary folder to run)
and run in their own virtual environment, ``bench/.peers-venv``; Node BullMQ is installed with npm into
``bench/.node-peers``. Results are printed and written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import engine_bench  # noqa: E402  (a sibling script, not a package)

NODE_PEERS = BENCH / ".node-peers"
#: M/M/4 at rho = 0.9: the peers' scenario (common.py)
LAMBDA_PER_S = 3.6
SERVERS = 4
MEAN_SERVICE_MS = 1000
EXACT_WQ_S = 1.969383


# --- one measurement in a fresh process ---------------------------------------------------------------------


def steal_ticks() -> int | None:
    """CPU time the hypervisor gave to other machines (the "steal" column of ``/proc/stat``, in clock ticks
    summed over the cores), or None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return None


def steal_share(before: int | None, after: int | None, wall_s: float) -> float | None:
    """The share of the cores' time the hypervisor took over ``wall_s`` seconds, from two :func:`steal_ticks`
    readings (None when either is missing)."""
    if before is None or after is None:
        return None
    return (after - before) / os.sysconf("SC_CLK_TCK") / (wall_s * (os.cpu_count() or 1))


def bench_simulation(backend: str, seed: int, record: str, max_len_events: int | None = None) -> Any:
    """The M/M/4 benchmark scenario, set up and not run yet (``max_len_events``: the events stream's cap, the
    simulation's default when None)."""
    from queuesim.sim import Exponential, JobType, Poisson, Simulation

    sim = Simulation(seed=seed, backend=backend, record=record)
    if max_len_events is None:
        sim.queue("bench")
    else:
        sim.queue("bench", max_len_events=max_len_events)
    sim.add_workers("bench", count=SERVERS)
    sim.add_arrivals("bench", JobType("work", Exponential(MEAN_SERVICE_MS), options={"remove_on_complete": True}),
                     Poisson(LAMBDA_PER_S))
    return sim


def until_ms_for(jobs: int) -> int:
    """The simulated time in which about ``jobs`` jobs arrive."""
    return int(jobs / LAMBDA_PER_S * 1000)


def child_sim(backend: str, jobs: int, seed: int, record: str) -> dict[str, Any]:
    """Run the M/M/4 scenario for about ``jobs`` arrivals; returns jobs finished, wall and CPU seconds, the
    share of the wall time the hypervisor took away from the machine's cores (steal), the mean wait and the
    peak RSS."""
    sim = bench_simulation(backend, seed, record)
    until_ms = until_ms_for(jobs)
    steal_before = steal_ticks()
    cpu_start = time.process_time()
    start = time.perf_counter()
    sim.run(until_ms=until_ms)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    steal_after = steal_ticks()
    steal = steal_share(steal_before, steal_after, wall)
    summary = sim.summary()
    return {"jobs": int(summary["completed"]), "wall_s": wall, "cpu_s": cpu, "steal": steal,
            "mean_wait_s": summary["mean_wait_ms"] / 1000,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def in_child(backend: str, jobs: int, seed: int, record: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", backend, str(jobs), str(seed), record],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- peers --------------------------------------------------------------------------------------------------


def peers_dir() -> Path:
    path = engine_bench.PEERS_DEFAULT
    if not path.is_dir():
        raise SystemExit(f"the peer programs are not at {path}; set QUEUESIM_PEERS_DIR")
    return path


@functools.cache
def peers_python() -> Path:
    """The peers' interpreter, with Ciw and SimPy installed (checked once per run of the suite)."""
    py = engine_bench.peers_python()
    check = subprocess.run([str(py), "-c", "import ciw, simpy"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "ciw", "simpy"], check=True)
    return py


def run_peer_program(args: list[str], python: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        for f in peers_dir().iterdir():
            if f.is_file():
                shutil.copy(f, tmp)
        if not python:
            os.symlink(NODE_PEERS / "node_modules", Path(tmp) / "node_modules")
        cmd = [str(peers_python()), *args] if python else args
        out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=True, timeout=7200)
    return json.loads(out.stdout.strip().splitlines()[-1])


def node_available() -> bool:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return False
    if not (NODE_PEERS / "node_modules" / "bullmq").is_dir():
        NODE_PEERS.mkdir(exist_ok=True)
        done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE_PEERS),
                               "bullmq@5", "ioredis"], capture_output=True)
        if done.returncode != 0:
            return False
    return True


def interleaved(runs: int, measures: dict[str, Callable[[int], Any]]) -> dict[str, list[Any]]:
    """Run every measure once per run, alternating them (run 1 of each, then run 2 of each…), so that the
    load other programs put on a shared machine falls on all of them alike."""
    out: dict[str, list[Any]] = {name: [] for name in measures}
    for seed in range(1, runs + 1):
        for name, measure in measures.items():
            out[name].append(measure(seed))
    return out


# --- sections -----------------------------------------------------------------------------------------------


def section_a(args: argparse.Namespace, results: dict[str, Any]) -> None:
    n = args.sim_jobs
    print(f"\n(a) M/M/4 at rho=0.9, {n:,} jobs, simulated jobs per wall second (median of {args.runs})")
    waits: dict[str, list[float]] = {}

    def ours(record: str) -> Callable[[int], float]:
        def run(seed: int) -> float:
            r = in_child("memory", n, seed, record)
            waits.setdefault(record, []).append(r["mean_wait_s"])
            return r["jobs"] / r["wall_s"]
        return run

    def peer(program: str) -> Callable[[int], float]:
        return lambda seed: float(run_peer_program([program, str(seed)])["customers_per_s"])

    values = interleaved(args.runs, {
        "queuesim memory, event log": ours("log"),
        "queuesim memory, streaming stats": ours("stats"),
        "Ciw": peer("bench_ciw.py"),
        "SimPy, hand-written M/M/c": peer("bench_simpy.py"),
    })
    rows = {name: (statistics.median(v), v) for name, v in values.items()}
    ciw, simpy = rows["Ciw"][0], rows["SimPy, hand-written M/M/c"][0]
    for name, (rate, values) in rows.items():
        print(f"  {name:<34}{rate:>10,.0f}/s   x Ciw {rate / ciw:5.2f}   x SimPy {rate / simpy:5.2f}   "
              f"runs {[round(v) for v in values]}")
    for record, w in waits.items():
        print(f"  mean wait ({record}): {statistics.mean(w):.3f} s over the runs (Erlang C: {EXACT_WQ_S} s)")
    results["a"] = {name: {"median": rate, "runs": values} for name, (rate, values) in rows.items()}
    results["a"]["mean_wait_s"] = {k: statistics.mean(v) for k, v in waits.items()}


def section_b(args: argparse.Namespace, results: dict[str, Any]) -> None:
    n = args.fake_jobs
    print(f"\n(b) the same scenario on fakeredis: queuesim {n:,} jobs, bullmq-py {args.peer_fake_jobs:,} jobs "
          f"(median of {args.runs}), jobs per wall second")
    def peer_run(_seed: int) -> dict[str, Any]:
        return run_peer_program(["py_bullmq_bench.py", "fake", str(args.peer_fake_jobs), "1"])

    values = interleaved(args.runs, {
        "ours": lambda seed: (lambda r: r["jobs"] / r["wall_s"])(in_child("fakeredis", n, seed, "log")),
        "peer": peer_run,
    })
    our_runs = values["ours"]
    ours = statistics.median(our_runs)
    add = statistics.median(float(p["addSingle"]["median"]) for p in values["peer"])
    process = statistics.median(max(float(p["procC1"]["median"]), float(p["procC50"]["median"]))
                                for p in values["peer"])
    peer = {"addSingle": add, "process": process}
    peer_rate = 1 / (1 / add + 1 / process)
    print(f"  queuesim simulation on fakeredis {ours:10,.0f}/s   runs {[round(v) for v in our_runs]}")
    print(f"  bullmq-py on fakeredis           {peer_rate:10,.0f}/s   (add {add:,.0f}/s, process {process:,.0f}/s)")
    print(f"  ratio {ours / peer_rate:.2f}x")
    results["b"] = {"queuesim": ours, "queuesim_runs": our_runs, "bullmq_py": peer_rate, "bullmq_py_raw": peer,
                    "ratio": ours / peer_rate}


def section_c(args: argparse.Namespace, results: dict[str, Any]) -> None:
    n = args.n_real
    print(f"\n(c) live on a real Redis (private redis-server), no-op jobs, N={n:,}, jobs/s (median of {args.runs})")
    proc, port = engine_bench.start_redis()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        measures: dict[str, Callable[[int], Any]] = {
            "ours": lambda _seed: engine_bench.queuesim_run(url, n, 1),
            "py": lambda _seed: engine_bench.run_peer(peers_dir(), "real", n, 1, port),
        }
        if node_available():
            def node_run(_seed: int) -> dict[str, float]:
                raw = run_peer_program(["node", "node_bullmq_bench.js", str(n), "1", str(port)], python=False)
                return {k: float(raw[k]["median"]) for k in ("addBulk", "addSingle", "procC1", "procC50")}
            measures["node"] = node_run
        else:
            print("  (Node BullMQ skipped: node/npm not available)")
        values = interleaved(args.runs, measures)
        ours, py = ({k: statistics.median(r[k] for r in values[who]) for k in values[who][0]} for who in ("ours", "py"))
        node = ({k: statistics.median(r[k] for r in values["node"]) for k in values["node"][0]}
                if "node" in values else None)
    finally:
        proc.terminate()
    print(f"  {'measure':<12}{'queuesim':>10}{'bullmq-py':>11}{'ratio':>8}{'Node':>10}{'ratio':>8}")
    rows = [(k, k) for k in ("addBulk", "addSingle", "procC1", "procC50")]
    rows += [("syncC1", "procC1"), ("syncC50", "procC50")]  # a plain processor against the peers' async one
    for k, peer_k in rows:
        node_part = f"{node[peer_k]:10,.0f}{ours[k] / node[peer_k]:7.2f}x" if node else ""
        print(f"  {k:<12}{ours[k]:10,.0f}{py[peer_k]:11,.0f}{ours[k] / py[peer_k]:7.2f}x{node_part}")
    results["c"] = {"queuesim": ours, "bullmq_py": py, "node": node}


def section_d(args: argparse.Namespace, results: dict[str, Any]) -> None:
    sizes = [int(s) for s in args.scaling.split(",")]
    print(f"\n(d) scaling on the memory backend, streaming statistics, a fresh process per run (median of "
          f"{args.runs} runs per size, the sizes alternating)")
    # the sizes alternate (10k, 100k, 1M, then again…) like the measures of the other sections: a machine
    # whose speed wanders from one minute to the next then slows every size alike, not just the one it ran
    all_runs = interleaved(args.runs, {str(n): (lambda _seed, n=n: in_child("memory", n, 1, "stats"))
                                       for n in sizes})
    rows = []
    for n in sizes:
        runs = all_runs[str(n)]
        r = dict(runs[0])
        r["wall_s"] = statistics.median(x["wall_s"] for x in runs)
        r["cpu_s"] = statistics.median(x["cpu_s"] for x in runs)
        r["max_rss_mib"] = max(x["max_rss_mib"] for x in runs)
        r["walls"] = [x["wall_s"] for x in runs]
        steals = [x["steal"] for x in runs if x.get("steal") is not None]
        r["steal"] = statistics.median(steals) if steals else None
        rows.append((n, r))
        steal = f"  steal {100 * r['steal']:4.1f} %" if r["steal"] is not None else ""
        print(f"  {n:>10,} jobs  wall {r['wall_s']:8.2f} s  CPU {r['cpu_s']:8.2f} s  "
              f"{r['jobs'] / r['wall_s']:9,.0f}/s  peak RSS {r['max_rss_mib']:7.1f} MiB  "
              f"mean wait {r['mean_wait_s']:.3f} s  runs {[round(w, 2) for w in r['walls']]}{steal}")
    # CPU time is the steadier measure of how the work grows: wall time also holds what a shared machine's
    # hypervisor takes away (steal), which a long run catches more of than a short one
    for (n1, r1), (n2, r2) in itertools.pairwise(rows):
        print(f"  time {n2:,} / {n1:,} = {r2['wall_s'] / r1['wall_s']:.2f}x wall, "
              f"{r2['cpu_s'] / r1['cpu_s']:.2f}x CPU (jobs x{n2 / n1:.0f})")
    results["d"] = [{"jobs": n, **r} for n, r in rows]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        backend, jobs, seed, record = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        print(json.dumps(child_sim(backend, jobs, seed, record)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="abcd", help="sections to run, e.g. 'ad'")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sim-jobs", type=int, default=200_000)
    ap.add_argument("--fake-jobs", type=int, default=20_000)
    ap.add_argument("--peer-fake-jobs", type=int, default=2_000)
    ap.add_argument("--n-real", type=int, default=20_000)
    ap.add_argument("--scaling", default="10000,100000,1000000")
    args = ap.parse_args()
    unknown = set(args.only) - set("abcd")
    if unknown:
        raise SystemExit(f"--only: unknown sections {sorted(unknown)}; allowed: a, b, c, d")
    print(f"machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "python": platform.python_version(), "cores": os.cpu_count()}
    for key, section in (("a", section_a), ("b", section_b), ("c", section_c), ("d", section_d)):
        if key in args.only:
            steal_before, start = steal_ticks(), time.perf_counter()
            section(args, results)
            steal_after, wall = steal_ticks(), time.perf_counter() - start
            share = steal_share(steal_before, steal_after, wall)
            if share is not None:
                results[f"steal_{key}"] = share
                print(f"  (the hypervisor took {100 * share:.1f} % of the cores' time during this section)")
    (BENCH / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
