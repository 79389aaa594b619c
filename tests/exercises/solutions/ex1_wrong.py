"""Exercise 1, the misconception: the idle share of time is the share of jobs that do not wait."""


def p_wait(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    rho = arrival_rate * mean_service_s / workers
    return 1 - rho  # "90% busy, so 10% wait"


def mean_wait_s(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    return p_wait(arrival_rate, mean_service_s, workers) * mean_service_s
