"""The chart functions (see :mod:`queuesim.plots`). Times in the tables are in ms; axes show s, min or h."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

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

#: One colour per meaning, the same in every chart.
COLORS = {
    "queued": "#4C72B0", "delayed": "#DD8452", "active": "#55A868", "completed": "#55A868",
    "failed": "#C44E52", "dlq": "#8C1C13", "retried": "#DD8452", "stalled": "#8172B3", "arrivals": "#7F7F7F",
    "requeued": "#937860", "theory": "#000000", "warmup": "#DDDDDD", "outage": "#F2B8B8", "fault": "#C44E52",
}
SERIES = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
          "#64B5CD")


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment to mark on time charts (a crash, a pause…): ``time_ms``, a short ``label``."""

    time_ms: int
    label: str


@dataclass(frozen=True, slots=True)
class Span:
    """A period to shade on time charts (an outage…)."""

    start_ms: int
    end_ms: int
    label: str


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def time_unit(total_ms: float) -> tuple[float, str]:
    """The divisor and name of the unit that suits a time axis of ``total_ms``: s, min or h."""
    if total_ms <= 15 * 60_000:
        return 1000.0, "s"
    if total_ms <= 15 * 3_600_000:
        return 60_000.0, "min"
    return 3_600_000.0, "h"


def _duration_unit(values_ms: np.ndarray, log: bool = False) -> tuple[float, str]:
    top = float(np.nanmax(values_ms)) if len(values_ms) else 0.0
    if log:  # a log axis spans decades: seconds read best unless everything is hours
        return (1000.0, "s") if top < 7_200_000 else (3_600_000.0, "h")
    if top < 2_000:
        return 1.0, "ms"
    if top < 180_000:
        return 1000.0, "s"
    if top < 10_800_000:
        return 60_000.0, "min"
    return 3_600_000.0, "h"


def _decorate_time(ax: Any, scale: float, warmup_ms: int, marks: Sequence[Mark], spans: Sequence[Span],
                   labels: bool = True) -> None:
    if warmup_ms > 0:
        ax.axvspan(0, warmup_ms / scale, color=COLORS["warmup"], alpha=0.5, lw=0,
                   label="warm-up (not measured)" if labels else None)
    for i, span in enumerate(spans):
        ax.axvspan(span.start_ms / scale, span.end_ms / scale, color=COLORS["outage"], alpha=0.45, lw=0,
                   label=span.label if labels and i == 0 else None)
    for mark in marks:
        ax.axvline(mark.time_ms / scale, color=COLORS["fault"], lw=1, ls="--", alpha=0.8)
        if labels:
            ax.annotate(mark.label, (mark.time_ms / scale, 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -3), textcoords="offset points", fontsize=7.5, color=COLORS["fault"],
                        rotation=90, va="top", ha="left")


def _figure_legend(fig: Figure, axes: Sequence[Any]) -> None:
    """One legend for all panels, below them (never on top of the data)."""
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(4, len(handles)),
                   fontsize=8.5, frameon=False)


def _queues(ts: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(ts["queue"])) if len(ts) else []


def _per_queue_axes(timeseries: pd.DataFrame) -> tuple[Figure, Any, list[str]]:
    """One row of axes per queue, sharing the time axis (a "no jobs" panel when there is no queue)."""
    queues = _queues(timeseries)
    fig = _figure(10, 2.4 + 2.0 * max(1, len(queues)))
    axes = fig.subplots(max(1, len(queues)), 1, sharex=True, squeeze=False)[:, 0]
    if not queues:
        axes[0].text(0.5, 0.5, "no jobs", ha="center", va="center", transform=axes[0].transAxes)
    return fig, axes, queues


def throughput_chart(timeseries: pd.DataFrame, *, warmup_ms: int = 0, marks: Sequence[Mark] = (),
                     spans: Sequence[Span] = (), title: str | None = None) -> Figure:
    """Per queue: jobs completed per second (goodput), arrivals per second, attempts retried per second and jobs
    that failed for good per second, in each time bin of ``timeseries`` (from :func:`~queuesim.scenario.
    runner.timeseries`, one replication)."""
    fig, axes, queues = _per_queue_axes(timeseries)
    if not queues:
        return fig
    scale, unit = time_unit(float(timeseries["time_ms"].max() + timeseries["bin_ms"].iloc[0]))
    bin_s = float(timeseries["bin_ms"].iloc[0]) / 1000
    for ax, queue in zip(axes, queues, strict=True):
        part = timeseries[timeseries["queue"] == queue]
        x = ((part["time_ms"] + part["bin_ms"] / 2) / scale).to_numpy()
        arrivals = (part["arrivals"] / bin_s).to_numpy()
        completed = (part["completed"] / bin_s).to_numpy()
        retried = (part["retried"] / bin_s).to_numpy()
        dead = ((part["failed"] + part["dlq"]) / bin_s).to_numpy()
        ax.plot(x, arrivals, color=COLORS["arrivals"], lw=1.2, label="jobs added")
        ax.plot(x, completed, color=COLORS["completed"], lw=2, label="jobs completed (goodput)")
        if retried.any():
            ax.plot(x, retried, color=COLORS["retried"], lw=1.2, ls="--", label="attempts failed, to be retried")
        if dead.any():
            ax.plot(x, dead, color=COLORS["failed"], lw=1.5, label="jobs failed for good (incl. dead-letter)")
        # a burst (a whole newsletter added at once) would flatten every other line: clip it and say so
        others = np.concatenate([completed, retried, dead])
        typical = max(float(np.quantile(arrivals, 0.75)) if len(arrivals) else 0.0,
                      float(others.max()) if len(others) else 0.0, 1e-9)
        if len(arrivals) and arrivals.max() > 4 * typical:
            top = 1.6 * typical
            ax.set_ylim(0, top)
            for xi, yi in zip(x, arrivals, strict=True):
                if yi > top:
                    ax.annotate(f"burst: {yi * bin_s:,.0f} jobs added\n(off the scale)", (xi, top),
                                xytext=(6, -4), textcoords="offset points", fontsize=7.5, va="top",
                                color=COLORS["arrivals"], arrowprops={"arrowstyle": "-", "color": "#BBBBBB"})
        else:
            ax.set_ylim(bottom=0)
        _decorate_time(ax, scale, warmup_ms, marks, spans)
        ax.set_ylabel("jobs per second")
        ax.set_title(f"queue {queue}", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    _figure_legend(fig, axes)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    fig.suptitle(title or f"Throughput over time (averaged over {bin_s:g} s bins)", fontsize=12)
    return fig


def depth_chart(timeseries: pd.DataFrame, *, warmup_ms: int = 0, marks: Sequence[Mark] = (),
                spans: Sequence[Span] = (), backlog_threshold: int | None = None, title: str | None = None) -> Figure:
    """Per queue, stacked: jobs ready and waiting for a worker (waiting + prioritized), jobs waiting out a delay
    or backoff (delayed) and jobs running (active), time-averaged over each bin."""
    fig, axes, queues = _per_queue_axes(timeseries)
    if not queues:
        return fig
    scale, unit = time_unit(float(timeseries["time_ms"].max() + timeseries["bin_ms"].iloc[0]))
    for ax, queue in zip(axes, queues, strict=True):
        part = timeseries[timeseries["queue"] == queue]
        x = np.concatenate([(part["time_ms"]).to_numpy(), [part["time_ms"].iloc[-1] + part["bin_ms"].iloc[-1]]])
        x = x / scale
        ys = [part["active"].to_numpy(), part["queued"].to_numpy(), part["delayed"].to_numpy()]
        ys = [np.append(y, y[-1]) for y in ys]
        ax.stackplot(x, *ys, step="post", colors=[COLORS["active"], COLORS["queued"], COLORS["delayed"]],
                     labels=["running (active)", "ready, waiting for a worker", "delayed (scheduled or backoff)"],
                     alpha=0.85)
        top = float(part["queued"].max()) if len(part) else 0.0
        if backlog_threshold is not None and top > 0.5 * backlog_threshold:
            ax.axhline(backlog_threshold, color=COLORS["failed"], lw=1, ls=":",
                       label=f"health warning: {backlog_threshold} waiting")
        _decorate_time(ax, scale, warmup_ms, marks, spans)
        ax.set_ylabel("jobs (time average)")
        ax.set_title(f"queue {queue}", fontsize=10, loc="left")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    _figure_legend(fig, axes)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    bin_s = float(timeseries["bin_ms"].iloc[0]) / 1000
    fig.suptitle(title or f"Queue depth by state over time (averaged over {bin_s:g} s bins)", fontsize=12)
    return fig


def _group_label(by: str, key: Any) -> str:
    if by == "priority":
        return "priority 0 (none)" if int(key) == 0 else f"priority {int(key)}"
    return str(key)


def latency_chart(jobs: pd.DataFrame, *, by: str = "name", column: str = "sojourn_ms",
                  estimates: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
                  theory_cdf: Callable[[float], float] | None = None, theory_label: str = "exact",
                  title: str | None = None) -> Figure:
    """Left: the empirical CDF of ``column`` (time in system by default) per job ``name`` or ``priority``, with
    the exact CDF when given. Right: p50, p95 and p99 per group; with ``estimates`` (per group, per metric:
    ``{"mean", "half_width"}`` over replications) the 95% confidence intervals are drawn as error bars.

    ``jobs`` holds one row per job (the jobs created in the measurement window, finished or not)."""
    data = jobs[jobs[column].notna()].copy()
    data[column] = data[column].astype("float64")
    fig = _figure(11, 4.6)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.5, 1])
    what = "Time in system (sojourn)" if column == "sojourn_ms" else "Wait before the first start"
    if not len(data):
        ax.text(0.5, 0.5, "no finished job", ha="center", va="center", transform=ax.transAxes)
        return fig
    groups = sorted(data[by].unique(), key=lambda k: (int(k) != 0, int(k)) if by == "priority" else str(k))
    positive = data[column][data[column] > 0]
    log = len(positive) > 0 and float(positive.max()) / max(float(positive.min()), 1.0) > 50
    scale, unit = _duration_unit(data[column].to_numpy(), log)
    for i, key in enumerate(groups):
        values = np.sort(data.loc[data[by] == key, column].to_numpy()) / scale
        y = np.arange(1, len(values) + 1) / len(values)
        if len(values) > 600:  # the curve at 600 evenly spaced levels looks the same and draws much faster
            pick = np.unique(np.linspace(0, len(values) - 1, 600).astype(int))
            values, y = values[pick], y[pick]
        ax.step(values, y, where="post", color=SERIES[i % len(SERIES)], lw=1.8,
                label=f"{_group_label(by, key)} ({len(data[data[by] == key]):,} jobs)")
    if theory_cdf is not None:
        top = float(data[column].max())
        xs = np.geomspace(max(1.0, float(data[column][data[column] > 0].min() or 1.0)), top, 300) if log \
            else np.linspace(0, top, 300)
        ax.plot(xs / scale, [theory_cdf(x) for x in xs], color=COLORS["theory"], lw=1.4, ls="--",
                label=theory_label)
    for q in (0.5, 0.95, 0.99):
        ax.axhline(q, color="#999999", lw=0.7, ls=":")
        ax.annotate(f"p{int(q * 100)}", (1, q), xycoords=("axes fraction", "data"), xytext=(2, 0),
                    textcoords="offset points", fontsize=7.5, va="center", color="#666666")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(f"{what.lower()} ({unit}{', log scale' if log else ''})")
    ax.set_ylabel("share of jobs at or below (CDF)")
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("distribution", fontsize=10, loc="left")
    # percentiles per group
    names = ("p50", "p95", "p99")
    metric = {"p50": "p50_sojourn_ms", "p95": "p95_sojourn_ms", "p99": "p99_sojourn_ms"} if column == "sojourn_ms" \
        else {"p50": None, "p95": "p95_wait_ms", "p99": None}
    ypos = np.arange(len(groups))
    for j, pname in enumerate(names):
        xs, errs = [], []
        for key in groups:
            values = data.loc[data[by] == key, column].to_numpy()
            est = (estimates or {}).get(str(key), {}).get(metric[pname] or "", None) if estimates else None
            if est and est.get("mean") is not None:
                xs.append(est["mean"] / scale)
                hw = est.get("half_width")
                errs.append(hw / scale if hw is not None else 0.0)
            else:
                xs.append(float(np.quantile(values, int(pname[1:]) / 100)) / scale if len(values) else math.nan)
                errs.append(0.0)
        bx.errorbar(xs, ypos + (j - 1) * 0.22, xerr=errs, fmt="o", ms=5, capsize=3,
                    color=("#4C72B0", "#DD8452", "#C44E52")[j], label=pname)
        for xv, yv in zip(xs, ypos + (j - 1) * 0.22, strict=True):
            if not math.isnan(xv):
                bx.annotate(_short(xv, unit), (xv, yv), xytext=(0, 5), textcoords="offset points", fontsize=7,
                            ha="center", va="bottom", color="#444444")
    bx.set_yticks(ypos, [_group_label(by, k) for k in groups], fontsize=8.5)
    bx.invert_yaxis()
    shown = np.array([v for line in bx.lines for v in np.atleast_1d(line.get_xdata()) if v == v and v > 0])
    log_b = log and len(shown) > 0 and shown.max() / shown.min() > 30
    if log_b:
        bx.set_xscale("log")
    else:
        bx.set_xlim(left=0)
    bx.set_xlabel(f"{what.split(' (')[0].lower()} ({unit})")
    bx.grid(alpha=0.3, axis="x")
    has_ci = bool(estimates) and any(
        (estimates.get(str(k), {}).get("p99_sojourn_ms") or {}).get("half_width") is not None for k in groups)
    bx.set_title("percentiles" + (" with 95% CI over replications" if has_ci else ""), fontsize=10, loc="left")
    bx.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    bx.margins(x=0.12)
    if log:
        _plain_log_ticks(ax)
    if log_b:
        _plain_log_ticks(bx)
    per = "job name" if by == "name" else "priority"
    fig.suptitle(title or f"{what} per {per} (jobs created in the measurement window)", fontsize=12)
    return fig


def _plain_log_ticks(ax: Any) -> None:
    """Numbers like 0.01, 0.1, 1, 10 on a log axis (not powers of ten), easier to read for most people."""
    low, high = ax.get_xlim()
    decades = math.log10(max(high, 1e-12) / max(low, 1e-12))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3.5 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _short(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}"


def attempts_chart(jobs: pd.DataFrame, *, title: str | None = None) -> Figure:
    """How many finished jobs needed 1, 2, 3… attempts, stacked by how they ended (completed, failed, sent to
    the dead-letter queue)."""
    finished = jobs[jobs["final_state"].isin(("completed", "failed", "dlq"))]
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    if not len(finished):
        ax.text(0.5, 0.5, "no finished job", ha="center", va="center", transform=ax.transAxes)
        return fig
    table = pd.crosstab(finished["attempts"], finished["final_state"])
    attempts = np.arange(1, int(table.index.max()) + 1)
    table = table.reindex(attempts, fill_value=0)
    labels = {"completed": "completed", "failed": "failed for good (kept in 'failed')",
              "dlq": "failed for good, moved to the dead-letter queue"}
    states = [st for st in ("completed", "failed", "dlq") if st in table and table[st].any()]
    width = 0.8 / max(1, len(states))
    values = table[states].to_numpy()
    nonzero = values[values > 0]
    log = bool(len(nonzero)) and nonzero.max() / nonzero.min() > 50
    if log:
        ax.set_yscale("log")
    for k, state in enumerate(states):
        xs = attempts + (k - (len(states) - 1) / 2) * width
        counts = table[state].to_numpy()
        ax.bar(xs, counts, width=width * 0.95, color=COLORS[state], label=labels[state])
        for x, n in zip(xs, counts, strict=True):
            if n:
                ax.annotate(f"{int(n):,}", (x, n), xytext=(0, 2), textcoords="offset points", ha="center",
                            fontsize=7.5)
    if log:
        ax.set_ylim(bottom=0.7, top=nonzero.max() * 2.5)
    ax.set_xticks(attempts if len(attempts) <= 25 else attempts[:: max(1, len(attempts) // 20)])
    ax.set_xlabel("attempts made (the first try counts as 1)")
    ax.set_ylabel("jobs" + (" (log scale)" if log else ""))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8.5)
    dlq = int(table["dlq"].sum()) if "dlq" in table else 0
    failed = int(table["failed"].sum()) if "failed" in table else 0
    mean = float((finished["attempts"]).mean())
    fig.suptitle(title or f"Attempts per job: {len(finished):,} finished jobs, mean {mean:.2f} attempts, "
                          f"{dlq:,} in the dead-letter queue" + (f", {failed:,} failed" if failed else ""),
                 fontsize=11.5)
    return fig


# --- swimlane timeline ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Attempt:
    job_id: str
    worker: str
    start: int
    end: int | None = None
    outcome: str = "running"
    due: int | None = None


def attempts_from_log(events: pd.DataFrame) -> list[_Attempt]:
    """Each attempt (a start on a worker until the job left ``active``) with how it ended: ``completed``,
    ``retry`` (a backoff follows, ``due`` is when the job is ready again), ``requeued`` (straight back to the
    queue: a retry without backoff or a rate-limited answer), ``stalled``, ``failed``, ``dlq`` or ``running``."""
    open_: dict[tuple[str, str], _Attempt] = {}
    waiting_due: dict[tuple[str, str], _Attempt] = {}
    out: list[_Attempt] = []
    ordered = events.sort_values("time_ms", kind="mergesort")  # keeps the log's order within a millisecond
    for row in ordered.rename(columns={"from": "frm"}).itertuples(index=False):
        key = (row.queue, row.job_id)
        frm, to = row.frm, row.to
        if to == "active":
            a = _Attempt(str(row.job_id), str(row.worker), int(row.time_ms))
            open_[key] = a
            out.append(a)
            continue
        if frm == "delayed" and key in waiting_due:
            waiting_due.pop(key).due = int(row.time_ms)
        if frm != "active" or key not in open_:
            continue
        a = open_.pop(key)
        a.end = int(row.time_ms)
        if to == "delayed":
            a.outcome = "retry"
            waiting_due[key] = a
        elif to in ("waiting", "prioritized"):
            a.outcome = "stalled" if row.reason == "stalled" else "requeued"
        else:
            a.outcome = str(to)
    return out


def swimlane_chart(events: pd.DataFrame, *, incidents: pd.DataFrame | None = None, start_ms: int | None = None,
                   end_ms: int | None = None, title: str | None = None) -> Figure:
    """Workers x time: each attempt is a bar on its worker's lane (one row per concurrency slot), coloured by how
    it ended; dotted lines are backoff waits (the job is off the workers until it is due); ✕ marks a crash, a
    shaded band a freeze, ▼ a lost lock (a result thrown away). ``events`` is one replication's event log."""
    run_end = int(events["time_ms"].max()) if len(events) else 0
    if start_ms is None:
        start_ms = 0
    if end_ms is None:
        end_ms = run_end
    end_ms = max(end_ms, start_ms + 1)
    if len(events):
        # only the jobs that were running or waiting out a backoff during the window matter
        t = events["time_ms"]
        inside = events[(t >= start_ms) & (t <= end_ms)]
        keys = set(zip(inside["queue"], inside["job_id"], strict=True))
        before = events[t < start_ms].drop_duplicates(["queue", "job_id"], keep="last")
        keys.update((q, j) for q, j, to in zip(before["queue"], before["job_id"], before["to"], strict=True)
                    if to in ("active", "delayed"))
        mask = [k in keys for k in zip(events["queue"], events["job_id"], strict=True)]
        events = events[mask]
    attempts = attempts_from_log(events)
    shown = [a for a in attempts if a.start < end_ms and (a.end if a.end is not None else run_end) > start_ms]
    workers = sorted({a.worker for a in attempts if a.worker and a.worker != "None"},
                     key=lambda w: (w.rsplit("-w", 1)[0], int(w.rsplit("-w", 1)[1]) if w.rsplit("-w", 1)[-1]
                                    .isdigit() else 0))
    incidents = incidents if incidents is not None else pd.DataFrame(columns=["time_ms", "worker", "kind"])
    # one row per concurrency slot a worker used: greedy interval packing
    rows: dict[str, list[int]] = {w: [] for w in workers}
    placed: list[tuple[_Attempt, str, int]] = []
    for a in sorted(shown, key=lambda a: a.start):
        if a.worker not in rows:
            continue
        free = rows[a.worker]
        end = a.end if a.end is not None else run_end
        for i, busy_until in enumerate(free):
            if busy_until <= a.start:
                free[i] = end
                placed.append((a, a.worker, i))
                break
        else:
            free.append(end)
            placed.append((a, a.worker, len(free) - 1))
    base: dict[str, float] = {}
    y = 0.0
    for w in workers:
        base[w] = y
        y += max(1, len(rows[w])) + 0.6
    height = min(13.0, max(3.2, 0.22 * y + 1.8))
    fig = _figure(11, height)
    ax = fig.subplots()
    scale, unit = time_unit(end_ms - start_ms)
    if end_ms - start_ms <= 15 * 60_000:
        scale, unit = 1000.0, "s"
    colors = {"completed": COLORS["completed"], "retry": COLORS["retried"], "requeued": COLORS["requeued"],
              "stalled": COLORS["stalled"], "failed": COLORS["failed"], "dlq": COLORS["dlq"],
              "running": "#A0C4A8"}
    crash = incidents[incidents["kind"] == "crash"] if len(incidents) else incidents
    crash_at = {str(r.worker): int(r.time_ms) for r in crash.itertuples(index=False)}
    bars: dict[str, list[list[tuple[float, float]]]] = {}
    hatched: list[list[tuple[float, float]]] = []
    waits: list[list[tuple[float, float]]] = []
    dues: list[tuple[float, float]] = []

    def rect(x0: float, x1: float, y0: float) -> list[tuple[float, float]]:
        return [(x0 / scale, y0), (x1 / scale, y0), (x1 / scale, y0 + 0.8), (x0 / scale, y0 + 0.8)]

    for a, w, slot in placed:
        yy = base[w] + slot
        end = a.end if a.end is not None else run_end
        left, right = max(a.start, start_ms), min(end, end_ms)
        died = crash_at.get(w)
        if a.outcome == "stalled" and died is not None and a.start <= died < end:
            solid_end = min(max(died, left), right)
            bars.setdefault("stalled", []).append(rect(left, solid_end, yy))
            hatched.append(rect(solid_end, right, yy))
        else:
            bars.setdefault(a.outcome, []).append(rect(left, max(right, left + 1), yy))
        if a.outcome == "retry" and a.due is not None and a.end is not None and a.end < end_ms:
            waits.append([(a.end / scale, yy + 0.9), (min(a.due, end_ms) / scale, yy + 0.9)])
            if a.due <= end_ms:
                dues.append((a.due / scale, yy + 0.9))
    # one artist per colour: thousands of attempts draw in a blink
    for outcome, polys in bars.items():
        ax.add_collection(PolyCollection(polys, facecolors=colors[outcome], edgecolors="white", linewidths=0.6))
    if hatched:
        ax.add_collection(PolyCollection(hatched, facecolors="white", edgecolors=colors["stalled"], hatch="///",
                                         linewidths=0.6))
    if waits:
        ax.add_collection(LineCollection(waits, colors=COLORS["retried"], linewidths=1, linestyles=":"))
    if dues:
        ax.plot([d[0] for d in dues], [d[1] for d in dues], ls="", marker="|", color=COLORS["retried"], ms=6)
    for row in incidents.itertuples(index=False):
        w = str(row.worker)
        if w not in base or not start_ms <= int(row.time_ms) <= end_ms:
            continue
        top = base[w] + max(1, len(rows[w]))
        t = int(row.time_ms) / scale
        if row.kind == "crash":
            ax.plot(t, (base[w] + top) / 2, marker="X", color=COLORS["fault"], ms=13, mec="white", zorder=5)
            ax.axvline(t, color=COLORS["fault"], lw=0.8, ls="--", alpha=0.6)
        elif row.kind == "freeze":
            try:
                dur = float(str(row.detail).split()[0])
            except (ValueError, IndexError):
                dur = 0.0
            ax.axvspan(t, t + dur / scale, ymin=0, ymax=1, color="#9ECAE1", alpha=0.25, lw=0)
            ax.plot(t, (base[w] + top) / 2, marker="*", color="#3182BD", ms=13, mec="white", zorder=5)
        elif row.kind == "lock-lost":
            ax.plot(t, top - 0.2, marker="v", color="#3182BD", ms=7, zorder=5)
    ax.set_yticks([base[w] + max(1, len(rows[w])) / 2 for w in workers], workers, fontsize=8.5)
    ax.set_ylim(-0.3, y - 0.3)
    ax.invert_yaxis()
    ax.set_xlim(start_ms / scale, end_ms / scale)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("worker (one row per concurrency slot)")
    ax.grid(alpha=0.3, axis="x")
    handles = [Patch(color=colors["completed"], label="attempt completed"),
               Patch(color=colors["retry"], label="attempt failed, retried after a backoff"),
               Line2D([], [], color=COLORS["retried"], ls=":", label="backoff wait (off the workers)"),
               Patch(color=colors["requeued"], label="back to the queue (no backoff / rate limited)"),
               Patch(color=colors["stalled"], label="attempt interrupted (worker crashed or froze)"),
               Patch(facecolor="white", edgecolor=colors["stalled"], hatch="///",
                     label="lock held, nobody working → stalled"),
               Patch(color=colors["dlq"], label="failed for good (dead-letter queue)"),
               Line2D([], [], marker="X", color=COLORS["fault"], ls="", ms=9, label="worker crash")]
    if len(incidents) and (incidents["kind"] == "freeze").any():
        handles.append(Line2D([], [], marker="*", color="#3182BD", ls="", ms=10, label="worker freezes"))
    if len(incidents) and (incidents["kind"] == "lock-lost").any():
        handles.append(Line2D([], [], marker="v", color="#3182BD", ls="", ms=7, label="late result refused"))
    if any(a.outcome == "failed" for a, _, _ in placed):
        handles.append(Patch(color=colors["failed"], label="failed for good"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title or f"Timeline of the workers, {start_ms / scale:.0f}-{end_ms / scale:.0f} {unit} of "
                          f"simulated time ({len(placed):,} attempts)", fontsize=12)
    return fig


# --- sweeps and comparisons -------------------------------------------------------------------------------------


def sweep_chart(table: pd.DataFrame, parameter: str, *, theory: pd.DataFrame | None = None,
                title: str | None = None) -> Figure:
    """Latency against a parameter: one line per statistic (mean, p50, p99 of the time in system) with its 95%
    confidence band over replications; dashed lines are exact values where a closed form exists.

    ``table`` has one row per parameter value with columns ``value`` and, per statistic, ``<stat>`` (ms),
    ``<stat>_low`` and ``<stat>_high``; optional ``utilisation`` (and ``_low``/``_high``) is drawn on the right.
    ``theory`` has ``value`` and the exact ``<stat>`` columns."""
    fig = _figure(11, 4.4)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.6, 1])
    x = table["value"].to_numpy(dtype=float)
    stats = [("mean_sojourn_ms", "mean"), ("p50_sojourn_ms", "p50"), ("p99_sojourn_ms", "p99")]
    top = np.nanmax([table[s].max() for s, _ in stats if s in table] or [0])
    scale, unit = _duration_unit(np.array([top]))
    for i, (stat, label) in enumerate(stats):
        if stat not in table:
            continue
        color = SERIES[i]
        ax.plot(x, table[stat] / scale, marker="o", color=color, lw=1.8, label=f"{label} (simulated)")
        if f"{stat}_low" in table and table[f"{stat}_low"].notna().any():
            ax.fill_between(x, table[f"{stat}_low"] / scale, table[f"{stat}_high"] / scale, color=color, alpha=0.18,
                            lw=0, label=f"{label}: 95% CI")
        if theory is not None and stat in theory and theory[stat].notna().any():
            ax.plot(theory["value"], theory[stat] / scale, color=color, ls="--", lw=1.2, label=f"{label} (exact)")
    ax.set_xlabel(parameter)
    ax.set_ylabel(f"time in system ({unit})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("latency", fontsize=10, loc="left")
    if "utilisation" in table:
        bx.plot(x, table["utilisation"], marker="o", color=SERIES[2], label="simulated")
        if "utilisation_low" in table and table["utilisation_low"].notna().any():
            bx.fill_between(x, table["utilisation_low"], table["utilisation_high"], color=SERIES[2], alpha=0.18,
                            lw=0, label="95% CI")
        if theory is not None and "utilisation" in theory:
            bx.plot(theory["value"], theory["utilisation"], color=COLORS["theory"], ls="--", lw=1.2, label="exact")
        bx.set_ylim(0, 1.05)
        bx.set_xlabel(parameter)
        bx.set_ylabel("utilisation (busy share of worker slots)")
        bx.grid(alpha=0.3)
        bx.legend(fontsize=8)
        bx.set_title("utilisation", fontsize=10, loc="left")
    else:
        bx.set_visible(False)
    fig.suptitle(title or f"Sweep of {parameter}", fontsize=12)
    return fig


def compare_chart(table: pd.DataFrame, metrics: Sequence[tuple[str, str, float]], *,
                  title: str | None = None) -> Figure:
    """One panel per metric: each variant's mean with its 95% confidence interval.

    ``table`` is indexed by variant with columns ``<metric>``, ``<metric>_hw``; ``metrics`` lists
    ``(metric, axis label, divisor)``."""
    n = len(metrics)
    fig = _figure(3.2 * n + 1, 0.5 * len(table) + 2.2)
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    ypos = np.arange(len(table))
    for ax, (metric, label, div) in zip(axes, metrics, strict=True):
        means = table[metric].to_numpy(dtype=float) / div
        hws = table.get(f"{metric}_hw", pd.Series([0.0] * len(table), index=table.index)).fillna(0).to_numpy(
            dtype=float) / div
        ax.barh(ypos, means, xerr=hws, color=[SERIES[i % len(SERIES)] for i in range(len(table))], alpha=0.85,
                capsize=4)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(ypos, list(table.index), fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle(title or "Variants compared (bars: mean over replications; whiskers: 95% CI)", fontsize=12)
    return fig


# --- saving ----------------------------------------------------------------------------------------------------


def save(fig: Figure, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.svg``; returns both paths."""
    stem = Path(stem)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, format="png", dpi=110)
    # the layout is settled by the first drawing; reuse it rather than solving it again for the SVG
    fig.set_layout_engine("none")
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return png, svg


def svg_text(fig: Figure) -> str:
    """The figure as SVG text (for embedding in a page)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
