"""Exercise 2, the misconception: one worker more near saturation helps little, so stay far from it (rho <= 0.5)."""

import math


def workers_needed(arrival_rate: float, mean_service_s: float, target_p95_wait_s: float) -> int:
    return math.ceil(arrival_rate * mean_service_s / 0.5)
