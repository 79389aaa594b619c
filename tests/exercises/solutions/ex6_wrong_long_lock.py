"""Exercise 6, the misconception: the lock must outlive the longest job (3 minutes)."""


def worker_settings(longest_block_ms: int, recovery_bound_ms: int, crashes_per_job: int) -> dict[str, int]:
    return {"lock_duration": 200_000, "stalled_interval": 30_000, "max_stalled_count": crashes_per_job}
