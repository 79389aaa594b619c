"""A worker process for the live tests: ``python tests/live_worker.py URL QUEUE TOTAL CONCURRENCY``.

Each job's processor records its execution (HINCRBY on ``<queue>:executions``) and returns the job's data
doubled. The process exits once the queue has TOTAL completed jobs.
"""

from __future__ import annotations

import sys
import time

import queuesim
from queuesim import Job, Worker


def main() -> None:
    url, queue_name, total, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    conn = queuesim.connect(url)
    executions_key = f"test:{queue_name}:executions"

    def process(job: Job) -> int:
        conn.client.hincrby(executions_key, job.id, 1)
        return int(job.data["n"]) * 2

    worker = Worker(queue_name, process, connection=conn, concurrency=concurrency, name=f"pid-{id(conn)}",
                    drain_delay_s=0.2).start()
    queue = queuesim.Queue(queue_name, conn)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and queue.get_job_counts("completed")["completed"] < total:
        time.sleep(0.05)
    worker.close()
    conn.close()


if __name__ == "__main__":
    main()
