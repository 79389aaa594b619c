"""Engine throughput next to the official Python ``bullmq`` package, measured in the same run.

Protocol (the same as the peer program ``py_bullmq_bench.py``): per run, FLUSHDB; add N jobs with add_bulk
(chunks of 1000); a live worker at concurrency 1 drains them; FLUSHDB; N single awaited adds; a live worker at
concurrency 50 drains them. Reported: medians of jobs/s over RUNS runs, and queuesim / bullmq ratios.

The processor is an ``async`` no-op, as in the peer programs (BullMQ's processors are async functions), so
queuesim's worker runs its jobs on one event loop. ``syncC1`` / ``syncC50`` drain the same jobs with a plain
no-op function instead, which queuesim runs in a pool of ``concurrency`` threads.

Each backend is measured: a private ``redis-server`` on a free port (real Redis), and in-process fakeredis
(the peer runs its own Lua scripts there through a cmsgpack shim). queuesim's step API (fetch → complete with
fetch-next, no threads) is reported too, as the simulator uses it.

Usage::

    python bench/engine_bench.py [--n-real 20000] [--n-fake 2000] [--runs 3] [--peers DIR]

The peers run in their own virtual environment (``bench/.peers-venv``, created on first use) because the
``bullmq`` package pins older versions of shared dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS_DEFAULT = Path(os.environ.get("QUEUESIM_PEERS_DIR", ROOT.parent / "shared" / "bench" / "peers"))
PEERS_VENV = ROOT / "bench" / ".peers-venv"


def peers_python() -> Path:
    py = PEERS_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "bullmq", "msgpack", "fakeredis[lua]"], check=True)
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            if redis.Redis(port=port).ping():
                break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, port


def run_peer(peers_dir: Path, mode: str, n: int, runs: int, port: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        for f in peers_dir.iterdir():
            if f.is_file():
                shutil.copy(f, tmp)
        args = [str(peers_python()), "py_bullmq_bench.py", mode, str(n), str(runs)]
        if port is not None:
            args.append(str(port))
        out = subprocess.run(args, cwd=tmp, capture_output=True, text=True, check=True, timeout=3600)
        data = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: float(data[k]["median"]) for k in ("addBulk", "addSingle", "procC1", "procC50")}


def queuesim_run(url: str | None, n: int, runs: int) -> dict[str, float]:
    """queuesim with the same protocol; url None = the embedded fakeredis server (wall clock)."""
    import queuesim
    from queuesim import Queue, Worker

    conn = queuesim.connect(url)
    res: dict[str, list[float]] = {"addBulk": [], "addSingle": [], "procC1": [], "procC50": [], "stepC1": [],
                                   "syncC1": [], "syncC50": []}

    async def no_op(job: Any) -> None:
        return None

    def drain(concurrency: int, processor: Any = no_op) -> float:
        t0 = time.perf_counter()
        w = Worker("bench", processor, connection=conn, concurrency=concurrency, drain_delay_s=0.05).start()
        q = Queue("bench", conn)
        while q.get_job_counts("completed")["completed"] < n:
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        w.close()
        return n / dt

    for _ in range(runs):
        conn.client.flushdb()
        q = Queue("bench", conn)
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            q.add_bulk([("j", {"i": j}) for j in range(i, min(n, i + 1000))])
        res["addBulk"].append(n / (time.perf_counter() - t0))
        res["procC1"].append(drain(1))

        conn.client.flushdb()
        q = Queue("bench", conn)
        t0 = time.perf_counter()
        for i in range(n):
            q.add("j", {"i": i})
        res["addSingle"].append(n / (time.perf_counter() - t0))
        res["procC50"].append(drain(50))

        # the step API the simulator uses: fetch, then complete with fetch-next, no threads
        conn.client.flushdb()
        q = Queue("bench", conn)
        for i in range(0, n, 1000):
            q.add_bulk([("j", {"i": j}) for j in range(i, min(n, i + 1000))])
        w = Worker(q)
        t0 = time.perf_counter()
        job = w.fetch()
        while job is not None:
            job = w.complete(job, None, fetch_next=True)
        res["stepC1"].append(n / (time.perf_counter() - t0))

        # a plain (not async) processor: the thread-pool runner
        for concurrency in (1, 50):
            conn.client.flushdb()
            q = Queue("bench", conn)
            for i in range(0, n, 1000):
                q.add_bulk([("j", {"i": j}) for j in range(i, min(n, i + 1000))])
            res[f"syncC{concurrency}"].append(drain(concurrency, lambda job: None))
    conn.close()
    return {k: statistics.median(v) for k, v in res.items()}


def table(title: str, ours: dict[str, float], peer: dict[str, float] | None) -> str:
    lines = [f"\n{title}", f"{'measure':<12}{'queuesim':>12}{'bullmq-py':>12}{'ratio':>9}"]
    for k, v in ours.items():
        p = peer.get(k) if peer else None
        ratio = f"{v / p:8.2f}x" if p else "        -"
        lines.append(f"{k:<12}{v:12.0f}{(f'{p:12.0f}' if p else '           -')}{ratio}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-real", type=int, default=20_000)
    ap.add_argument("--n-fake", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", type=Path, default=PEERS_DEFAULT)
    ap.add_argument("--no-peers", action="store_true", help="measure queuesim only")
    args = ap.parse_args()

    proc, port = start_redis()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        ours_real = queuesim_run(url, args.n_real, args.runs)
        peer_real = None if args.no_peers else run_peer(args.peers, "real", args.n_real, args.runs, port)
    finally:
        proc.terminate()
    ours_fake = queuesim_run(None, args.n_fake, args.runs)
    peer_fake = None if args.no_peers else run_peer(args.peers, "fake", args.n_fake, args.runs, None)
    print(f"jobs/s, medians of {args.runs} runs (stepC1 = queuesim step API, no peer equivalent)")
    print(table(f"real Redis, N={args.n_real}", ours_real, peer_real))
    print(table(f"fakeredis (in process), N={args.n_fake}", ours_fake, peer_fake))
    print(json.dumps({"real": {"queuesim": ours_real, "bullmq": peer_real},
                      "fake": {"queuesim": ours_fake, "bullmq": peer_fake}}))


if __name__ == "__main__":
    main()
