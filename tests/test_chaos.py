"""Chaos on a real Redis: worker processes are killed, restarted and frozen mid-job; no job is lost.

Several live worker processes run 5,000 jobs with retries. A driver SIGKILLs random workers and restarts them,
and freezes one (SIGSTOP/SIGCONT) for longer than its lock. At the end every job is completed or failed exactly
once, nothing is left active, waiting, delayed or locked, and the counters add up:
attempts started = attempts made (finishes) + stalls.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import queuesim
from queuesim import Queue

pytestmark = [pytest.mark.real_redis, pytest.mark.slow]

JOBS = 5000
WORKERS = 4
SCRIPT = Path(__file__).with_name("chaos_worker.py")


def test_killed_restarted_and_frozen_workers_lose_no_job(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    name = f"chaos-{uuid.uuid4().hex[:8]}"
    q = Queue(name, conn)
    q.add_bulk([("work", {"i": i}, {"attempts": 3, "backoff": 20}) for i in range(JOBS)])
    rng = random.Random(7)
    seeds = iter(range(1000))

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(SCRIPT), redis_url, name, str(next(seeds))])

    procs = [spawn() for _ in range(WORKERS)]
    kills = restarts = freezes = 0
    deadline = time.monotonic() + 150
    try:
        frozen_at = None
        while time.monotonic() < deadline:
            counts = q.get_job_counts("completed", "failed")
            if sum(counts.values()) >= JOBS:
                break
            time.sleep(0.3)
            if sum(counts.values()) < 100:
                continue  # kill only once the workers are busy
            if kills < 12:
                i = rng.randrange(WORKERS)
                procs[i].send_signal(signal.SIGKILL)
                procs[i].wait()
                kills += 1
                procs[i] = spawn()
                restarts += 1
            if freezes == 0 and kills == 3:
                frozen = procs[0]
                frozen.send_signal(signal.SIGSTOP)
                frozen_at = time.monotonic()
                freezes += 1
            if frozen_at is not None and time.monotonic() - frozen_at > 2.5:  # lock is 1 s
                procs[0].send_signal(signal.SIGCONT)
                frozen_at = None
        if frozen_at is not None:
            procs[0].send_signal(signal.SIGCONT)
        counts = q.get_job_counts()
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    client = conn.client
    completed = {m.decode() for m in client.zrange(q.keys.completed, 0, -1)}
    failed = {m.decode() for m in client.zrange(q.keys.failed, 0, -1)}
    assert kills >= 10
    assert freezes == 1
    assert len(completed) + len(failed) == JOBS, counts
    assert not completed & failed
    assert counts["active"] == counts["waiting"] == counts["delayed"] == counts["prioritized"] == 0
    assert not list(client.scan_iter(match=f"bull:{name}:*:lock"))
    started = made = stalls = 0
    for i in range(1, JOBS + 1):
        fields = client.hmget(f"bull:{name}:{i}", "ats", "atm", "stc")
        ats, atm, stc = (int(v or 0) for v in fields)
        started, made, stalls = started + ats, made + atm, stalls + stc
    assert started == made + stalls
    executions = sum(int(v) for v in client.hvals(f"test:{name}:executions"))
    # an execution is counted inside the processor: a worker killed between fetch and that count lost none
    assert made <= executions <= started
    assert stalls >= 1
    q.obliterate(force=True)
    client.delete(f"test:{name}:executions")
    conn.close()
    print(f"chaos: jobs={JOBS} kills={kills} restarts={restarts} freezes={freezes} executions={executions} "
          f"attempts_started={started} finishes={made} stalls={stalls} failed={len(failed)} lost=0")
