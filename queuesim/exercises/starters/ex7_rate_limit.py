"""Exercise 7: "a limiter set to the quota keeps you within the quota".

Every job calls an upstream API that accepts at most ``quota_calls`` calls per ``quota_window_ms``, counted in
FIXED windows on the upstream's clock: [0, W), [W, 2W), ... Calls beyond the quota are refused (HTTP 429).

BullMQ's worker limiter {"max": m, "duration": d} lets at most m jobs start per window of d ms, shared by all
workers. Its windows are fixed too, but on a different clock: a window opens when the first job starts after the
previous window ended, and lasts d ms.

Traffic: a steady trickle plus, now and then, a burst of several quotas' worth of jobs at once. Choose the
limiter so that the upstream never refuses a call, while bursts still clear at close to the quota's rate.
Then check it:

    queuesim exercise check 7 ex7_rate_limit.py

Predict first: with a quota of 50 calls per 10 s, is {"max": 50, "duration": 10000} safe? What is the largest
number of calls it can let into one upstream window?
"""


def choose_limiter(quota_calls: int, quota_window_ms: int) -> dict[str, int]:
    """BullMQ limiter options for an upstream quota.

    Args:
        quota_calls: calls the upstream accepts per window.
        quota_window_ms: the length of the upstream's windows, in ms.

    Returns:
        {"max": jobs per limiter window, "duration": limiter window in ms}
    """
    raise NotImplementedError
