"""Exercise 5: "retrying quickly gets the work done sooner".

The built-in scenario ``retry-storm`` (see ``queuesim show retry-storm``): 20 worker slots call a downstream
service that copes with up to 17 calls at once; above that it times out 70% of the calls. Jobs (1.8 per second,
4 s each on average) get 20 attempts. From 300 s to 330 s the downstream is down and every call fails. With the
scenario's fixed 1 s backoff the queue never recovers: after the outage the backlog keeps every slot busy, so
70% of the calls fail, so the jobs retry, so every slot stays busy (a metastable failure).

Write the backoff strategy: how long a failed job waits before its next attempt. The checker plugs it into the
workers as a custom BullMQ backoff strategy and runs the scenario on the engine. Then check it:

    queuesim exercise check 5 ex5_backoff.py

Predict first: the scenario's description suggests exponential backoff. Would exponential backoff starting at
1 s be enough? Would "full jitter" (a random delay between 0 and the exponential value) be better or worse?
"""


def retry_delay_ms(attempt: int, u: float) -> int:
    """How long a job waits, in ms, before its next attempt.

    Args:
        attempt: the number of the attempt that just failed (1 after the first try; at most 19).
        u: a random number, uniform in [0, 1), for jitter. Use it rather than the ``random`` module: then the
            same run gives the same result every time.

    Returns:
        A whole number of ms between 0 and 300,000 (5 minutes).
    """
    raise NotImplementedError
