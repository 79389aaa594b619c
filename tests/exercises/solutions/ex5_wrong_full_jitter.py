"""Exercise 5, a popular recipe that does not help here: exponential from 1 s with full jitter."""


def retry_delay_ms(attempt: int, u: float) -> int:
    return int(u * min(60_000, 1_000 * 2 ** (attempt - 1)))
