"""Exercise 7, a correct solution: one job per W/quota ms (rounded up)."""

import math


def choose_limiter(quota_calls: int, quota_window_ms: int) -> dict[str, int]:
    return {"max": 1, "duration": math.ceil(quota_window_ms / quota_calls)}
