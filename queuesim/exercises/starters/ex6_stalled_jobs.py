"""Exercise 6: locks, stalled jobs and crashed workers.

A BullMQ worker holds a LOCK on every job it runs (``lock_duration`` ms) and renews it every
``lock_duration / 2`` while the job runs. Every ``stalled_interval`` ms a worker runs the STALLED CHECK: an
active job whose lock has expired is taken to be abandoned and goes back to the queue (it "stalled"), and
another worker runs it again. A job that stalls more than ``max_stalled_count`` times fails for good.

The workload: report jobs take 1 to 3 minutes. Now and then a worker's event loop is blocked (a CPU-heavy step)
for up to ``longest_block_ms``: during a block it cannot renew its locks. Sometimes a worker process crashes;
the same job may be hit by up to ``crashes_per_job`` crashes.

Choose the three settings so that
  * no job is ever processed twice (a blocked worker must not lose its lock), and
  * a crashed worker's job is back in the queue within ``recovery_bound_ms`` of the crash, and
  * no job fails because it stalled too often.

Then check it:

    queuesim exercise check 6 ex6_stalled_jobs.py

Predict first: must the lock outlive the longest job (3 minutes)? What goes wrong with BullMQ's defaults
(30 s, 30 s, 1) when a worker blocks for 20 s?
"""


def worker_settings(longest_block_ms: int, recovery_bound_ms: int, crashes_per_job: int) -> dict[str, int]:
    """The worker options for this workload.

    Args:
        longest_block_ms: the longest time a worker's event loop can be blocked.
        recovery_bound_ms: a crashed worker's job must be back in the queue within this long after the crash.
        crashes_per_job: how many crashes may hit the same job.

    Returns:
        {"lock_duration": ms, "stalled_interval": ms, "max_stalled_count": n}
    """
    raise NotImplementedError
