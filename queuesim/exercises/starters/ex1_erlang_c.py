"""Exercise 1: "90% busy means 10% of the jobs wait".

A queue has Poisson arrivals (``arrival_rate`` jobs per second), ``workers`` identical workers (concurrency 1
each) and exponentially distributed job durations with mean ``mean_service_s`` seconds: an M/M/c queue.

Fill in the two functions below, then check them:

    queuesim exercise check 1 ex1_erlang_c.py

Predict first: with 4 workers busy 90% of the time (3.6 jobs per second, 1 s per job), what share of the jobs
has to wait for a worker, and how long is the mean wait, in service times?

Useful words: the offered load is a = arrival_rate * mean_service_s (how many workers would be busy on average);
the utilisation is rho = a / workers. Erlang's C formula gives the probability that an arriving job finds every
worker busy.
"""


def p_wait(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    """The probability that an arriving job has to wait (finds all ``workers`` busy).

    Args:
        arrival_rate: jobs per second.
        mean_service_s: mean duration of a job, in seconds.
        workers: number of workers (each runs one job at a time).

    Returns:
        A probability between 0 and 1.
    """
    raise NotImplementedError


def mean_wait_s(arrival_rate: float, mean_service_s: float, workers: int) -> float:
    """The mean time a job waits before a worker starts it (Wq), in seconds, averaged over all jobs
    (including those that do not wait at all)."""
    raise NotImplementedError
