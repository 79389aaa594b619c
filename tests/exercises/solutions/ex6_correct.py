"""Exercise 6, a correct solution: lock > 2 x the longest block, lock + 2 x interval within the bound."""


def worker_settings(longest_block_ms: int, recovery_bound_ms: int, crashes_per_job: int) -> dict[str, int]:
    lock = 2 * longest_block_ms + max(1_000, longest_block_ms // 4)
    interval = (recovery_bound_ms - lock) // 2 - 1_000
    return {"lock_duration": lock, "stalled_interval": interval, "max_stalled_count": crashes_per_job}
