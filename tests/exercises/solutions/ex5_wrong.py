"""Exercise 5, the misconception: retry quickly, the work gets done sooner (fixed 1 s)."""


def retry_delay_ms(attempt: int, u: float) -> int:
    return 1_000
