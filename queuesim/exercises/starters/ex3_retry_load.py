"""Exercise 3: "retries are free".

Jobs arrive at ``arrival_rate`` per second. Each attempt fails with probability ``p_fail``, independently of the
others; a failed job is retried (BullMQ's ``attempts`` option: ``attempts`` tries in total, the first try
included), and every attempt takes a worker for a full service time.

Write the two functions below, then check them:

    queuesim exercise check 3 ex3_retry_load.py

Predict first: 2 jobs per second, half of the attempts fail, 3 attempts allowed, 1 s per attempt, 5 workers.
How busy are the workers: 40% (2 jobs/s x 1 s / 5), or more? How much more?
"""


def attempts_per_second(arrival_rate: float, p_fail: float, attempts: int) -> float:
    """How many attempts per second the workers must run (first tries and retries together).

    Args:
        arrival_rate: new jobs per second.
        p_fail: probability that one attempt fails (0 <= p_fail <= 1).
        attempts: tries allowed per job, the first one included (1 = no retry).
    """
    raise NotImplementedError


def utilisation(arrival_rate: float, mean_service_s: float, p_fail: float, attempts: int, workers: int) -> float:
    """The share of time each worker is busy (rho), counting every attempt; each attempt lasts
    ``mean_service_s`` seconds on average."""
    raise NotImplementedError
