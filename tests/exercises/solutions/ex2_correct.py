"""Exercise 2, a correct solution: search upwards from the first stable count."""

import math


def _erlang_c(workers: int, offered: float) -> float:
    b = 1.0
    for k in range(1, workers + 1):
        b = offered * b / (k + offered * b)
    return workers * b / (workers - offered * (1 - b))


def workers_needed(arrival_rate: float, mean_service_s: float, target_p95_wait_s: float) -> int:
    offered = arrival_rate * mean_service_s
    c = math.floor(offered) + 1
    while True:
        p = _erlang_c(c, offered)
        # P(wait > t) = C * exp(-(c mu - lambda) t) must be <= 5%
        tail = p * math.exp(-(c / mean_service_s - arrival_rate) * target_p95_wait_s)
        if tail <= 0.05:
            return c
        c += 1
