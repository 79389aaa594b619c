"""Exercise 7, the opposite mistake: one call per second is surely safe (and wastes most of the quota)."""


def choose_limiter(quota_calls: int, quota_window_ms: int) -> dict[str, int]:
    return {"max": 1, "duration": 1_000}
