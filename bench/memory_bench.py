"""The memory backend: add → fetch → complete cycles per second, and memory per job.

Three measurements, all in virtual time and without SimPy:

1. **Throughput.** Cycles of add → fetch → complete (``remove_on_complete``), timed with ``time.perf_counter``:

   * ``backend`` — the backend calls themselves (``add_job``, ``move_to_active``, ``move_to_finished``): the
     engine's own cost per job, what the target of 50,000 cycles/s is about;
   * ``api`` — the public API a program uses: ``Queue.add``, ``Worker.fetch``, ``Worker.complete`` (adds option
     handling, JSON and ``Job`` objects on top);
   * ``api busy worker`` — ``Queue.add`` then ``Worker.complete(fetch_next=True)``, one call per job on the worker
     side, as a busy worker (and the simulator) runs.

   Each is run ``--runs`` times; the best and the median are printed (other processes on the machine slow some
   runs down, never speed them up).
2. **Flat memory.** ``--jobs`` (1,000,000 by default) jobs through the backend cycle with ``remove_on_complete``;
   the Python heap (``tracemalloc``) is sampled every tenth of the run: it must not grow with the jobs done.
3. **Bytes per kept job.** ``--kept`` jobs through the cycle with every finished job kept; the heap growth
   divided by the number of jobs (job hash, completed-set entry; the events stream is capped by ``maxLenEvents``).

Usage::

    python bench/memory_bench.py [--cycles 50000] [--runs 5] [--jobs 1000000] [--kept 200000]

Prints tables; no assertion on timings (they depend on the machine).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable

import queuesim
from queuesim import Queue, VirtualClock, Worker
from queuesim.backends.base import FetchArgs
from queuesim.options import JobOptions


def backend_cycles(n: int, keep_all: bool = False) -> Callable[[], float]:
    """A loop of n backend-level cycles; returns a function that runs it and gives cycles per second."""

    def run() -> float:
        conn = queuesim.connect("memory://", clock=VirtualClock())
        backend = conn.backend
        backend.ensure_meta("bench", 10_000)
        opts = JobOptions.build({} if keep_all else {"remove_on_complete": True})
        keep = opts.remove_on_complete
        fetch = FetchArgs("bench-worker:1", 30_000)
        add, take, finish = backend.add_job, backend.move_to_active, backend.move_to_finished
        start = time.perf_counter()
        for i in range(n):
            add("bench", "job", "{}", opts, 1_700_000_000_000 + i)
            job_id = take("bench", fetch).job_id
            finish("bench", job_id, "bench-worker:1", completed=True, value="null", stacktrace=None,
                   max_attempts=0, keep=keep, fetch_next=None)
        return n / (time.perf_counter() - start)

    return run


def api_cycles(n: int, busy: bool) -> Callable[[], float]:
    """n cycles through Queue and Worker; ``busy``: the worker completes with fetch-next (one call per job)."""

    def run() -> float:
        conn = queuesim.connect("memory://", clock=VirtualClock())
        queue = Queue("bench", conn)
        worker = Worker(queue, worker_id="bench-worker")
        start = time.perf_counter()
        if busy:
            queue.add("job", 0, remove_on_complete=True)
            job = worker.fetch()
            for i in range(1, n + 1):
                queue.add("job", i, remove_on_complete=True)
                assert job is not None
                job = worker.complete(job, None, fetch_next=True)
        else:
            for i in range(n):
                queue.add("job", i, remove_on_complete=True)
                job = worker.fetch()
                assert job is not None
                worker.complete(job, None)
        return n / (time.perf_counter() - start)

    return run


def throughput(cycles: int, runs: int) -> None:
    print(f"add → fetch → complete, {cycles:,} cycles per run, {runs} runs (remove_on_complete)")
    print(f"{'path':<18} {'best /s':>10} {'median /s':>10} {'best µs/cycle':>14}")
    for label, fn in (("backend", backend_cycles(cycles)), ("api", api_cycles(cycles, busy=False)),
                      ("api busy worker", api_cycles(cycles, busy=True))):
        rates = [fn() for _ in range(runs)]
        best = max(rates)
        print(f"{label:<18} {best:>10,.0f} {statistics.median(rates):>10,.0f} {1e6 / best:>14.1f}")


def flat_memory(jobs: int) -> None:
    """Python heap while ``jobs`` jobs go through with remove_on_complete: sampled every tenth of the run."""
    conn = queuesim.connect("memory://", clock=VirtualClock())
    backend = conn.backend
    backend.ensure_meta("bench", 10_000)
    opts = JobOptions.build({"remove_on_complete": True})
    keep = opts.remove_on_complete
    fetch = FetchArgs("bench-worker:1", 30_000)
    step = max(jobs // 10, 1)
    gc.collect()
    tracemalloc.start()
    samples = []
    start = time.perf_counter()
    for i in range(jobs):
        backend.add_job("bench", "job", "{}", opts, 1_700_000_000_000 + i)
        job_id = backend.move_to_active("bench", fetch).job_id
        backend.move_to_finished("bench", job_id, "bench-worker:1", completed=True, value="null", stacktrace=None,
                                 max_attempts=0, keep=keep, fetch_next=None)
        if (i + 1) % step == 0:
            samples.append((i + 1, tracemalloc.get_traced_memory()[0]))
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\n{jobs:,} jobs with remove_on_complete ({elapsed:.0f} s with tracemalloc on): Python heap")
    print(f"{'jobs done':>12} {'heap MiB':>10}")
    for done, size in samples:
        print(f"{done:>12,} {size / 2**20:>10.2f}")
    first, last = samples[0][1], samples[-1][1]
    print(f"growth from the first to the last sample: {(last - first) / 2**20:+.2f} MiB; peak {peak / 2**20:.2f} MiB "
          f"(the events stream, capped at 10,000 entries, is most of it)")


def bytes_per_kept_job(kept: int) -> None:
    """Heap growth per job when every finished job is kept (its hash and its entry in the completed set)."""
    conn = queuesim.connect("memory://", clock=VirtualClock())
    backend = conn.backend
    backend.ensure_meta("bench", 10_000)
    opts = JobOptions.build({})
    fetch = FetchArgs("bench-worker:1", 30_000)

    def cycle(i: int) -> None:
        backend.add_job("bench", "job", "{}", opts, 1_700_000_000_000 + i)
        job_id = backend.move_to_active("bench", fetch).job_id
        backend.move_to_finished("bench", job_id, "bench-worker:1", completed=True, value="null", stacktrace=None,
                                 max_attempts=0, keep=None, fetch_next=None)

    for i in range(20_000):  # fill the events stream to its cap first, so that it does not count
        cycle(i)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20_000, 20_000 + kept):
        cycle(i)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    fields = backend.get_job_fields("bench", "20001")
    print(f"\n{kept:,} completed jobs kept: {(after - before) / kept:,.0f} bytes per job "
          f"(a job hash of {len(fields or {})} fields, its completed-set entry)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--kept", type=int, default=200_000)
    args = parser.parse_args()
    throughput(args.cycles, args.runs)
    flat_memory(args.jobs)
    bytes_per_kept_job(args.kept)


if __name__ == "__main__":
    main()
