"""Exercise 3, the misconception: retries are free."""


def attempts_per_second(arrival_rate: float, p_fail: float, attempts: int) -> float:
    return arrival_rate


def utilisation(arrival_rate: float, mean_service_s: float, p_fail: float, attempts: int, workers: int) -> float:
    return arrival_rate * mean_service_s / workers
