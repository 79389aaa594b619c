"""Charts of simulation results: each function takes tables and returns a matplotlib ``Figure``.

No global pyplot state: every figure is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas, so the
functions are safe in scripts, tests, worker processes and notebooks (a notebook shows a returned Figure).

* :func:`throughput_chart` — completions, arrivals, retries and final failures per second over time;
* :func:`depth_chart` — jobs waiting, delayed (backoff) and running over time, per queue;
* :func:`latency_chart` — distribution (CDF) of the time in system per job name or priority, with the
  percentiles and their confidence intervals, and the exact CDF where a closed form exists;
* :func:`attempts_chart` — how many attempts jobs needed, and how many ended in the dead-letter queue;
* :func:`swimlane_chart` — workers x time: each attempt a bar, backoff waits, stalls and crashes marked;
* :func:`sweep_chart` — p50 / p99 / mean latency against a parameter, with confidence bands and theory;
* :func:`compare_chart` — key metrics of several variants side by side, with confidence intervals.

:func:`save` writes a figure as PNG and SVG.
"""

from queuesim.plots.charts import (
    COLORS,
    Mark,
    Span,
    attempts_chart,
    compare_chart,
    depth_chart,
    latency_chart,
    save,
    svg_text,
    sweep_chart,
    swimlane_chart,
    throughput_chart,
    time_unit,
)

__all__ = [
    "COLORS",
    "Mark",
    "Span",
    "attempts_chart",
    "compare_chart",
    "depth_chart",
    "latency_chart",
    "save",
    "svg_text",
    "swimlane_chart",
    "sweep_chart",
    "throughput_chart",
    "time_unit",
]
