"""Exercise 2: "one more worker at 90% load helps only a little".

Jobs arrive as a Poisson stream (``arrival_rate`` per second) and take an exponentially distributed time with
mean ``mean_service_s`` seconds; each worker runs one job at a time (an M/M/c queue).

Write ``workers_needed``: the SMALLEST number of workers for which 95% of the jobs start within
``target_p95_wait_s`` seconds of their arrival. Then check it:

    queuesim exercise check 2 ex2_workers_needed.py

Predict first: 3.6 jobs per second, 1 s per job. With 4 workers (rho = 0.9) the 95th percentile of the wait is
about 6.9 s. How much does a 5th worker cut it: by 20%? By half? More?

Useful facts about M/M/c: an arriving job waits with probability C (Erlang C); given that it waits, its wait is
exponential with rate (c * mu - lambda), where mu = 1 / mean_service_s. So P(wait > t) = C * exp(-(c*mu - lambda) t).
With fewer workers than the offered load a = lambda / mu the queue grows without bound.
"""


def workers_needed(arrival_rate: float, mean_service_s: float, target_p95_wait_s: float) -> int:
    """The smallest number of workers whose 95th-percentile wait is at most ``target_p95_wait_s``.

    Args:
        arrival_rate: jobs per second.
        mean_service_s: mean duration of a job, in seconds.
        target_p95_wait_s: 95% of the jobs must start within this many seconds (0 means: 95% start at once).

    Returns:
        A whole number of workers.
    """
    raise NotImplementedError
