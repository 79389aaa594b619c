"""Live workers on a real Redis: real processes, real threads, wall time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import queuesim
from queuesim import Queue, Worker

pytestmark = pytest.mark.real_redis


def test_three_worker_processes_complete_2000_jobs_exactly_once(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    name = f"live-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, conn)
    total = 2000
    queue.add_bulk([("job", {"n": i}) for i in range(total)])
    script = Path(__file__).with_name("live_worker.py")
    procs = [subprocess.Popen([sys.executable, str(script), redis_url, name, str(total), "4"])
             for _ in range(3)]
    try:
        for p in procs:
            assert p.wait(timeout=180) == 0
        counts = queue.get_job_counts()
        assert counts["completed"] == total
        assert sum(v for k, v in counts.items() if k != "completed") == 0
        executions = {k.decode(): int(v) for k, v in conn.client.hgetall(f"test:{name}:executions").items()}
        assert len(executions) == total
        assert set(executions.values()) == {1}, "a job ran more than once"
        done = queue.get_completed()
        assert sorted(j.return_value for j in done) == [2 * i for i in range(total)]
        # more than one process did the work
        assert len({j.processed_by for j in done}) >= 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        queue.obliterate(force=True)
        conn.client.delete(f"test:{name}:executions")
        conn.close()


def test_live_worker_runs_sync_and_async_processors_with_concurrency(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    queue = Queue(f"live-{uuid.uuid4().hex[:8]}", conn)
    running = 0
    peak = 0
    guard = threading.Lock()

    async def process(job: queuesim.Job) -> str:
        nonlocal running, peak
        import asyncio

        with guard:
            running += 1
            peak = max(peak, running)
        await asyncio.sleep(0.05)
        with guard:
            running -= 1
        return f"done-{job.id}"

    queue.add_bulk([("a", {"i": i}) for i in range(20)])
    worker = Worker(queue, process, concurrency=5, drain_delay_s=0.2).start()
    try:
        deadline = time.monotonic() + 20
        while queue.get_job_counts("completed")["completed"] < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.close()
    assert queue.get_job_counts("completed")["completed"] == 20
    assert 2 <= peak <= 5
    queue.obliterate(force=True)
    conn.close()


def test_live_timeout_fails_a_slow_attempt_with_a_clear_reason(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    queue = Queue(f"live-{uuid.uuid4().hex[:8]}", conn)

    def slow(job: queuesim.Job) -> None:
        time.sleep(1.0)

    job = queue.add("slow", {}, timeout=100, attempts=1)
    worker = Worker(queue, slow, drain_delay_s=0.2).start()
    try:
        deadline = time.monotonic() + 10
        while queue.get_job_counts("failed")["failed"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.close()
    failed = queue.get_job(job.id)
    assert failed is not None
    assert failed.failed_reason == f"job {job.id} timed out after 100 ms"
    queue.obliterate(force=True)
    conn.close()


@pytest.mark.real_redis
def test_an_idle_live_worker_closes_without_waiting_out_the_drain_delay(redis_url: str) -> None:
    import time

    conn = queuesim.connect(redis_url)
    queue = Queue(f"idle-{uuid.uuid4().hex[:8]}", conn)
    worker = Worker(queue, lambda job: None, drain_delay_s=5.0).start()
    time.sleep(0.3)  # it is now blocked on the empty queue's marker
    started = time.monotonic()
    worker.close()
    took = time.monotonic() - started
    queue.obliterate(force=True)
    assert took < 3.0, f"close() took {took:.1f} s: it waited for the 5 s drain delay"
