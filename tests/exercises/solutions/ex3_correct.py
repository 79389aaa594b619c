"""Exercise 3, a correct solution: a job makes 1 + p + ... + p^(N-1) attempts on average."""


def attempts_per_second(arrival_rate: float, p_fail: float, attempts: int) -> float:
    return arrival_rate * sum(p_fail**k for k in range(attempts))


def utilisation(arrival_rate: float, mean_service_s: float, p_fail: float, attempts: int, workers: int) -> float:
    return attempts_per_second(arrival_rate, p_fail, attempts) * mean_service_s / workers
