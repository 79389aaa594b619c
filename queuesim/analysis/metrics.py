"""Metrics computed from a simulation's tables (the event log and the per-job table); no SimPy here.

Two kinds of averages appear, and mixing them up is a classic mistake:

* **per-job averages** — e.g. the mean sojourn time W: add up the sojourn of each job and divide by the number
  of jobs;
* **time averages** — e.g. the mean number of jobs in the system L: the area under the curve N(t) divided by
  the length of the window. A state that lasts longer weighs more ("time-weighted").

Little's law links them: L = λ·W. Over a whole run that starts and ends empty it holds *exactly*: the area
under N(t) is the sum of all sojourn times (each job adds 1 to N(t) for exactly its sojourn), which
:func:`little_identity` checks to the millisecond.

**Warm-up**: a run starting empty is not in its long-run (steady) state at first; waits are too short. Leave
out the first part of the run (``start_ms``) when estimating steady-state values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "IN_SYSTEM",
    "STATES",
    "attempts_histogram",
    "conservation",
    "integral",
    "job_summary",
    "latency_percentiles",
    "little_identity",
    "state_counts",
    "summary",
    "throughput",
    "time_average",
    "time_weighted",
]

#: the states a job can be in, as the event log names them
STATES = ("waiting", "prioritized", "delayed", "active", "completed", "failed", "dlq", "removed")
#: the states of a job that is still in the system (not finished)
IN_SYSTEM = ("waiting", "prioritized", "delayed", "active")
#: the states of a job that is ready and waiting for a worker (the "queue" of queueing theory)
QUEUED = ("waiting", "prioritized")


def state_counts(log: pd.DataFrame) -> pd.DataFrame:
    """How many jobs are in each state, after each change.

    Returns a table indexed by ``time_ms`` (one row per distinct time: the counts after every change at that
    time), with one column per state plus ``in_system`` (waiting + prioritized + delayed + active) and
    ``queued`` (waiting + prioritized). Each row holds until the next one (a step function).
    """
    times = log["time_ms"].to_numpy(dtype=np.int64)
    to = log["to"].to_numpy()
    frm = log["from"].to_numpy()
    columns: dict[str, np.ndarray] = {}
    for state in STATES:
        delta = (to == state).astype(np.int64) - (frm == state).astype(np.int64)
        columns[state] = np.cumsum(delta)
    df = pd.DataFrame(columns, index=pd.Index(times, name="time_ms"))
    df["in_system"] = df[list(IN_SYSTEM)].sum(axis=1)
    df["queued"] = df[list(QUEUED)].sum(axis=1)
    return df.groupby(level=0).last()


def integral(counts: pd.DataFrame, column: str, start_ms: int, end_ms: int) -> int:
    """The area under the step function ``counts[column]`` between ``start_ms`` and ``end_ms`` (count x ms).

    Exact integer arithmetic: every time is a whole millisecond.
    """
    if end_ms <= start_ms:
        return 0
    t = counts.index.to_numpy(dtype=np.int64)
    v = counts[column].to_numpy(dtype=np.int64)
    first = int(np.searchsorted(t, start_ms, side="right"))  # rows at or before start set the starting value
    value_at_start = int(v[first - 1]) if first > 0 else 0
    last = int(np.searchsorted(t, end_ms, side="left"))
    inner_t = t[first:last]
    edges = np.concatenate(([start_ms], inner_t, [end_ms])).astype(np.int64)
    values = np.concatenate(([value_at_start], v[first:last])).astype(np.int64)
    return int(np.sum(values * np.diff(edges)))


def time_average(counts: pd.DataFrame, column: str, start_ms: int, end_ms: int) -> float:
    """Time-weighted mean of ``counts[column]`` over [start_ms, end_ms)."""
    if end_ms <= start_ms:
        return math.nan
    return integral(counts, column, start_ms, end_ms) / (end_ms - start_ms)


def time_weighted(counts: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Time-weighted statistics of every column of :func:`state_counts` over [start_ms, end_ms): the mean
    (area / duration), the maximum reached and the share of the time the count was above zero."""
    rows = {}
    t = counts.index.to_numpy(dtype=np.int64)
    for column in counts.columns:
        v = counts[column].to_numpy(dtype=np.int64)
        first = int(np.searchsorted(t, start_ms, side="right"))
        last = int(np.searchsorted(t, end_ms, side="left"))
        inside = np.concatenate(([v[first - 1] if first > 0 else 0], v[first:last]))
        edges = np.concatenate(([start_ms], t[first:last], [end_ms]))
        busy = int(np.sum(np.diff(edges)[inside > 0]))
        rows[column] = {"mean": time_average(counts, column, start_ms, end_ms), "max": int(inside.max()),
                        "share_nonzero": busy / (end_ms - start_ms) if end_ms > start_ms else math.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def little_identity(log: pd.DataFrame, jobs: pd.DataFrame, end_ms: int) -> dict[str, int]:
    """Both sides of Little's law over [0, end_ms], exactly (integers, in job·ms).

    ``area`` is the integral of the number of jobs in the system; ``sojourn_sum`` adds, for every job, the
    time it spent in the system before ``end_ms``. They are equal on every run; for a run that starts and ends
    empty ``sojourn_sum`` is the plain sum of the sojourn times.
    """
    counts = state_counts(log)
    area = integral(counts, "in_system", 0, end_ms) if len(counts) else 0
    created = jobs["created_ms"].to_numpy(dtype=np.int64)
    finish = jobs["finish_ms"].astype("float64").fillna(float(end_ms)).to_numpy()
    finish = np.minimum(finish, end_ms).astype(np.int64)
    inside = created < end_ms
    return {"area": area, "sojourn_sum": int(np.sum(finish[inside] - created[inside]))}


def conservation(jobs: pd.DataFrame, arrivals: int) -> dict[str, int]:
    """Where every added job is: arrivals = completed + failed + dlq + removed + in system (``balanced``)."""
    final = jobs["final_state"].value_counts()
    out = {"arrivals": int(arrivals), "recorded": len(jobs)}
    for state in ("completed", "failed", "dlq", "removed", "unfinished"):
        out[state] = int(final.get(state, 0))
    out["in_system"] = out.pop("unfinished")
    out["balanced"] = int(out["arrivals"] == sum(out[s] for s in ("completed", "failed", "dlq", "removed",
                                                                  "in_system")))
    return out


def throughput(jobs: pd.DataFrame, window_ms: int, start_ms: int = 0, end_ms: int | None = None) -> pd.DataFrame:
    """Jobs finished per window (by final state), and the completion rate per second of each window."""
    finished = jobs[jobs["finish_ms"].notna()]
    end = int(finished["finish_ms"].max()) + 1 if end_ms is None and len(finished) else (end_ms or start_ms)
    edges = np.arange(start_ms, max(end, start_ms + window_ms) + window_ms, window_ms)
    bins = pd.cut(finished["finish_ms"].astype("int64"), edges, right=False, labels=edges[:-1])
    table = pd.crosstab(bins, finished["final_state"]).reindex(edges[:-1], fill_value=0)
    table.index.name = "window_start_ms"
    for state in ("completed", "failed", "dlq"):
        if state not in table:
            table[state] = 0
    table["completed_per_s"] = table["completed"] / (window_ms / 1000)
    return table


def latency_percentiles(jobs: pd.DataFrame, column: str = "sojourn_ms", by: str | None = None,
                        q: Sequence[float] = (0.5, 0.9, 0.95, 0.99)) -> pd.DataFrame:
    """Percentiles (and mean, count) of ``column`` (``wait_ms`` or ``sojourn_ms``), overall or per ``by``
    (``name`` or ``priority``)."""
    data = jobs[jobs[column].notna()].copy()
    data[column] = data[column].astype("float64")
    groups = [("all", data)] if by is None else list(data.groupby(by))
    rows = []
    for key, part in groups:
        values = part[column].to_numpy()
        row: dict[str, Any] = {"group": key, "count": len(values),
                               "mean": float(values.mean()) if len(values) else math.nan}
        for p in q:
            row[f"p{round(p * 100, 3):g}"] = float(np.quantile(values, p)) if len(values) else math.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


def attempts_histogram(jobs: pd.DataFrame) -> pd.Series:
    """How many finished jobs needed 1, 2, 3… attempts."""
    finished = jobs[jobs["final_state"].isin(("completed", "failed", "dlq"))]
    return finished["attempts"].value_counts().sort_index().rename("jobs")


def summary(log: pd.DataFrame, jobs: pd.DataFrame, start_ms: int, end_ms: int,
            capacity: int | None = None) -> dict[str, float]:
    """The standard metrics of the window [start_ms, end_ms).

    Per-job metrics use the jobs *created* in the window (the run should go on long enough after ``end_ms``
    for them to finish: ``unfinished`` counts those that did not). Time averages use the window itself.

    Keys:

    * counts: ``arrivals``, ``completed``, ``failed``, ``dlq``, ``unfinished`` (jobs created in the window);
    * per job: ``mean_wait_ms`` (Wq: first start - created), ``p_wait`` (share of jobs that waited at all),
      ``p95_wait_ms``, ``mean_sojourn_ms`` (W: finish - created), ``p50/p95/p99_sojourn_ms``;
    * time averages: ``mean_in_system`` (L), ``mean_queued`` (Lq), ``mean_delayed``, ``mean_busy`` (jobs active =
      busy servers) and ``utilisation`` (mean_busy / capacity);
    * retries: ``mean_attempts`` (attempts made per finished job), ``retry_amplification`` (starts per job,
      counting re-runs after stalls), ``dlq_rate`` and ``failure_rate`` (share of finished jobs that failed for
      good), ``stalls``;
    * rates: ``goodput_per_s`` (completions per second) and ``throughput_per_s`` (attempts ending per second,
      failed ones included).
    """
    counts = state_counts(log) if len(log) else None

    def tavg(column: str) -> float:
        return time_average(counts, column, start_ms, end_ms) if counts is not None else math.nan

    t = log["time_ms"]
    in_window = log[(t >= start_ms) & (t < end_ms)]
    frm = in_window["from"]
    ends = int((frm == "active").sum()) - int(((frm == "active") & (in_window["reason"] == "stalled")).sum())
    done = int(((in_window["to"] == "completed")).sum())
    averages = {name: tavg(column) for name, column in _TIME_AVERAGES.items()}
    return job_summary(jobs, start_ms, end_ms, averages, done, ends, capacity)


#: the time averages of a summary, and the column of :func:`state_counts` each is taken from
_TIME_AVERAGES = {"mean_in_system": "in_system", "mean_queued": "queued", "mean_delayed": "delayed",
                  "mean_busy": "active"}


def job_summary(jobs: pd.DataFrame, start_ms: int, end_ms: int, averages: dict[str, float], done: int, ends: int,
                capacity: int | None, waits: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """The part of :func:`summary` computed from the per-job table, completed with what the event log gives:
    the four time averages (``averages``, keyed like the result), the completions (``done``) and the attempts
    that ended (``ends``) in the window. The streaming recorder supplies those three from running totals, and
    the waits apart (``waits`` = (created ms, wait ms) of every job that started) instead of a ``wait_ms``
    column."""
    duration_s = (end_ms - start_ms) / 1000
    window = jobs[(jobs["created_ms"] >= start_ms) & (jobs["created_ms"] < end_ms)]
    final = window["final_state"]
    finished = window[final.isin(("completed", "failed", "dlq"))]
    sojourn = finished["sojourn_ms"].astype("float64").to_numpy()
    if waits is None:
        wait = window["wait_ms"].dropna().astype("float64").to_numpy()
    else:
        created, values = waits
        wait = values[(created >= start_ms) & (created < end_ms)].astype("float64")

    def pct(values: np.ndarray, p: float) -> float:
        return float(np.quantile(values, p)) if len(values) else math.nan

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else math.nan

    busy = averages["mean_busy"]
    out = {
        "arrivals": float(len(window)),
        "completed": float((final == "completed").sum()),
        "failed": float((final == "failed").sum()),
        "dlq": float((final == "dlq").sum()),
        "unfinished": float((final == "unfinished").sum()),
        "mean_wait_ms": mean(wait),
        "p_wait": float((wait > 0).mean()) if len(wait) else math.nan,
        "p95_wait_ms": pct(wait, 0.95),
        "mean_sojourn_ms": mean(sojourn),
        "p50_sojourn_ms": pct(sojourn, 0.5),
        "p95_sojourn_ms": pct(sojourn, 0.95),
        "p99_sojourn_ms": pct(sojourn, 0.99),
        "mean_in_system": averages["mean_in_system"],
        "mean_queued": averages["mean_queued"],
        "mean_delayed": averages["mean_delayed"],
        "mean_busy": busy,
        "utilisation": busy / capacity if capacity else math.nan,
        "mean_attempts": mean(finished["attempts"].to_numpy(dtype=np.float64)),
        "retry_amplification": float(window["starts"].sum() / len(window)) if len(window) else math.nan,
        "dlq_rate": float((final == "dlq").sum() / len(finished)) if len(finished) else math.nan,
        "failure_rate": float(final.isin(("failed", "dlq")).sum() / len(finished)) if len(finished) else math.nan,
        "stalls": float(window["stalls"].sum()),
        "goodput_per_s": done / duration_s if duration_s > 0 else math.nan,
        "throughput_per_s": ends / duration_s if duration_s > 0 else math.nan,
    }
    return out
