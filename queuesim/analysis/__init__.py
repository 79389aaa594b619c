"""Analysis of simulation results, with no SimPy: metrics over the recorder's tables and confidence intervals.

* :mod:`queuesim.analysis.metrics` — state counts over time, time-weighted averages, throughput, percentiles,
  the summary of a window, and the exact identities (Little's law, conservation of jobs);
* :mod:`queuesim.analysis.stats` — Student-t quantiles, t-based intervals, paired differences.
"""

from queuesim.analysis.metrics import (
    attempts_histogram,
    conservation,
    latency_percentiles,
    little_identity,
    state_counts,
    summary,
    throughput,
    time_average,
    time_weighted,
)
from queuesim.analysis.stats import Estimate, paired_difference, t_interval, t_quantile

__all__ = [
    "Estimate",
    "attempts_histogram",
    "conservation",
    "latency_percentiles",
    "little_identity",
    "paired_difference",
    "state_counts",
    "summary",
    "t_interval",
    "t_quantile",
    "throughput",
    "time_average",
    "time_weighted",
]
