"""Exercise 7, the misconception: a limiter set to the quota stays within the quota."""


def choose_limiter(quota_calls: int, quota_window_ms: int) -> dict[str, int]:
    return {"max": quota_calls, "duration": quota_window_ms}
