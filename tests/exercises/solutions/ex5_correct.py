"""Exercise 5, a correct solution: exponential from 10 s, capped at 2 minutes, with equal jitter."""


def retry_delay_ms(attempt: int, u: float) -> int:
    delay = min(120_000, 10_000 * 2 ** (attempt - 1))
    return int(delay / 2 + u * delay / 2)
