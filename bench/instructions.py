"""Machine instructions per simulated job: queuesim's M/M/4 benchmark beside Ciw and a hand-written SimPy model.

Section (a) of ``bench/suite.py`` compares jobs per wall second, measured side by side; on a shared machine
those figures wander by 10 to 15 % from one minute to the next, for every program alike, so one ratio carries
that much uncertainty. This script counts instead the machine instructions each program executes per job,
under valgrind (``cachegrind`` without cache simulation): a count that repeats to within a few instructions
whatever else the machine is doing. Each program runs twice, with ``--jobs`` and three times as many jobs, and
the difference of the two counts divided by the difference of the jobs leaves Python's start-up and the imports
out.

An instruction is not a unit of time: a program that misses the caches more often takes longer per
instruction. The ratio of instructions is therefore a steady companion to the timed ratio, not a substitute for
it; both are printed in ``docs/performance.md``.

The queuesim runs cap the events stream at 2,000 entries, so that these short runs pack and trim it as a long
run does (each entry is packed once and dropped once whatever the cap). The peers run from a temporary copy of
``$QUEUESIM_PEERS_DIR`` with their own interpreter (``bench/.peers-venv``), their customer count set through
their shared ``common.N_CUSTOMERS``.

Usage::

    python bench/instructions.py [--jobs 2000]      # needs valgrind; a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

#: the events stream's cap in the queuesim runs, far below the simulation's 50,000 so that short runs pack and
#: trim the stream too
EVENTS_CAP = 2_000

#: fixed string hashing, and no idle BLAS threads spinning (their instructions would count too)
_STEADY_ENV = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

#: runs a peer program with its customer count changed (the peers read it from their shared ``common`` module)
_PEER_LAUNCHER = (
    "import runpy, sys; sys.path.insert(0, '.'); import common; common.N_CUSTOMERS = {n}; "
    "sys.argv = [{program!r}, '1']; runpy.run_path({program!r}, run_name='__main__')"
)


def count(cmd: list[str], cwd: str | None = None) -> tuple[int, str]:
    """Run ``cmd`` under valgrind; returns the machine instructions it executed (start-up included) and what
    it printed."""
    if shutil.which("valgrind") is None:
        raise SystemExit("counting instructions needs valgrind on the PATH")
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                          *cmd], capture_output=True, text=True, check=True, cwd=cwd,
                         env={**os.environ, **_STEADY_ENV})
    match = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(match.group(1).replace(",", "")), out.stdout


def per_job(run: Callable[[int], tuple[int, int]], jobs: int) -> float:
    """Instructions per job: ``run(n)`` gives (instructions, jobs done) for a run asked for ``n`` jobs; the
    difference between runs of ``jobs`` and ``3 * jobs`` leaves the fixed costs out."""
    small, done_small = run(jobs)
    large, done_large = run(3 * jobs)
    return (large - small) / (done_large - done_small)


def queuesim_run(record: str) -> Callable[[int], tuple[int, int]]:
    """A run of the M/M/4 benchmark on the memory backend (``record``: ``log`` or ``stats``)."""
    def run(jobs: int) -> tuple[int, int]:
        n, out = count([sys.executable, __file__, "--child", record, str(jobs)])
        return n, int(json.loads(out.strip().splitlines()[-1])["arrivals"])
    return run


def peer_run(program: str, peers: Path, python: Path) -> Callable[[int], tuple[int, int]]:
    """A run of a peer program with its customer count set to the jobs asked for."""
    def run(jobs: int) -> tuple[int, int]:
        with tempfile.TemporaryDirectory() as tmp:
            for f in peers.iterdir():
                if f.is_file():
                    shutil.copy(f, tmp)
            n, out = count([str(python), "-c", _PEER_LAUNCHER.format(n=jobs, program=program)], cwd=tmp)
        return n, int(json.loads(out.strip().splitlines()[-1])["customers"])
    return run


def child(record: str, jobs: int) -> None:
    from suite import bench_simulation, until_ms_for

    sim = bench_simulation("memory", 1, record, EVENTS_CAP)
    sim.run(until_ms=until_ms_for(jobs))
    print(json.dumps({"arrivals": sim.queues["bench"].arrivals}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2_000, help="jobs in the smaller run of each program (2,000)")
    args = ap.parse_args()
    import suite

    peers, python = suite.peers_dir(), suite.peers_python()
    programs = {
        "queuesim memory, event log": queuesim_run("log"),
        "queuesim memory, streaming stats": queuesim_run("stats"),
        "Ciw": peer_run("bench_ciw.py", peers, python),
        "SimPy, hand-written M/M/c": peer_run("bench_simpy.py", peers, python),
    }
    counts = {name: per_job(run, args.jobs) for name, run in programs.items()}
    ciw, simpy = counts["Ciw"], counts["SimPy, hand-written M/M/c"]
    print(f"M/M/4 at rho=0.9: machine instructions per job (runs of {args.jobs:,} and {3 * args.jobs:,} jobs); "
          f"'x Ciw' is Ciw's count over the program's, as a throughput ratio would be")
    for name, n in counts.items():
        print(f"  {name:<34}{n:12,.0f}   x Ciw {ciw / n:5.2f}   x SimPy {simpy / n:5.2f}")


if __name__ == "__main__":
    main()
