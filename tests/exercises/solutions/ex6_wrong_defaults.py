"""Exercise 6, BullMQ's defaults: a 20 s block can outlast the half-life of a 30 s lock, and 1 stall is allowed."""


def worker_settings(longest_block_ms: int, recovery_bound_ms: int, crashes_per_job: int) -> dict[str, int]:
    return {"lock_duration": 30_000, "stalled_interval": 30_000, "max_stalled_count": 1}
