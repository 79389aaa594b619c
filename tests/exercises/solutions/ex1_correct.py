"""Exercise 1, a correct solution: Erlang C computed from Erlang B's recursion."""


def _erlang_c(workers: int, offered: float) -> float:
    b = 1.0
    for k in range(1, workers + 1):
        b = offered * b / (k + offered * b)
    return workers * b / (workers - offered * (1 - b))


def p_wait(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    return _erlang_c(workers, arrival_rate * mean_service_s)


def mean_wait_s(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    return p_wait(arrival_rate, mean_service_s, workers) / (workers / mean_service_s - arrival_rate)
