"""Exercise 4: "priorities are fair".

One worker serves several classes of jobs. Class 0 has the highest priority (BullMQ priority 1), class 1 the
next (priority 2), and so on. Each class arrives as a Poisson stream and its jobs take an exponentially
distributed time. BullMQ's priorities are NON-preemptive: a job that has started always finishes; when the
worker is free it takes the waiting job of the highest priority (first come, first served within a class).

Write ``class_waits``, then check it:

    queuesim exercise check 4 ex4_priority_waits.py

Predict first: two classes of 0.4 jobs per second each, 1 s per job, one worker (busy 80% of the time).
Without priorities every job waits 4 s on average. With priorities, how long does each class wait?

Useful words: the load of class i is rho_i = lambda_i * E[S_i]; sigma_k is the load of classes 0..k together;
a job arriving while another is in service waits, on average, for the rest of that service:
W0 = sum over all classes of lambda_i * E[S_i^2] / 2 (for an exponential law E[S^2] = 2 * E[S]^2).
"""


def class_waits(arrival_rates: list[float], mean_services_s: list[float]) -> list[float]:
    """The mean wait (seconds, before service starts) of each class, highest priority first.

    Args:
        arrival_rates: jobs per second of each class, class 0 (highest priority) first.
        mean_services_s: mean duration of a job of each class, in seconds.

    Returns:
        One mean wait per class, in the same order.
    """
    raise NotImplementedError
