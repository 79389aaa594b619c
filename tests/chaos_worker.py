"""A worker process for the chaos test: ``python tests/chaos_worker.py URL QUEUE SEED``.

Processes jobs until SIGTERM (then closes gracefully). Each execution is counted (HINCRBY on
``test:<queue>:executions``) before it sleeps 5 to 15 ms; about 5 % of executions fail.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time

import queuesim
from queuesim import Job, Worker


def main() -> None:
    url, queue_name, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = queuesim.connect(url)
    rng = random.Random(seed)
    executions = f"test:{queue_name}:executions"

    def process(job: Job) -> str:
        conn.client.hincrby(executions, job.id, 1)
        time.sleep(0.005 + rng.random() * 0.010)
        if rng.random() < 0.05:
            raise RuntimeError("transient failure")
        return "ok"

    worker = Worker(queue_name, process, connection=conn, concurrency=8, lock_duration=1000,
                    stalled_interval=500, max_stalled_count=1000, drain_delay_s=0.1).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(0.1)
    worker.close()
    conn.close()


if __name__ == "__main__":
    main()
