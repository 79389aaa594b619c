"""Running a scenario: R replications, their tables, and one summary with confidence intervals.

:func:`run_scenario` runs the replications (in parallel processes when there are several), each with its own
random streams derived from the seed (replication i gets the same streams in every variant of a sweep or a
comparison: common random numbers). It returns a :class:`RunResult`:

* the tables of every replication, stacked with a ``replication`` column: jobs, events, time series, alerts;
* per replication, the metrics of :func:`queuesim.analysis.metrics.summary` over the measurement window
  ``[warm-up, end)``, overall and per queue, job name and priority;
* the summary: each metric's mean over the replications with its 95% t-interval, the exact value where a
  closed form applies, the alerts, warnings about precision, and what is needed to reproduce the run.

:func:`write_outputs` writes it all to a folder: ``jobs.csv``, ``events.csv``, ``timeseries.csv``,
``summary.json``, the charts (PNG and SVG) and ``report.html``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from queuesim.analysis.metrics import conservation, little_identity, state_counts, summary
from queuesim.analysis.stats import t_interval
from queuesim.scenario.build import run as run_built
from queuesim.scenario.build import setup
from queuesim.scenario.loader import LoadedScenario, load_scenario
from queuesim.scenario.schema import Scenario, ms
from queuesim.scenario.theory import TheoryModel, theory_for
from queuesim.sim import Simulation
from queuesim.sim.jobs import JobType
from queuesim.sim.streams import replication_seeds

__all__ = [
    "JOBS_CSV_COLUMNS",
    "RunResult",
    "estimate_dict",
    "jobs_table",
    "run_many",
    "run_scenario",
    "scenario_laws",
    "timeseries",
    "write_outputs",
]

#: Columns of ``jobs.csv``, in order (``replication`` comes last).
JOBS_CSV_COLUMNS = ("job_id", "queue", "name", "priority", "created_ms", "started_ms", "finished_ms", "attempts",
                    "stalls", "state", "wait_ms", "service_ms", "sojourn_ms")
#: The metrics shown first (tables, CLI output, report).
KEY_METRICS = ("arrivals", "completed", "dlq", "failed", "mean_wait_ms", "mean_sojourn_ms", "p50_sojourn_ms",
               "p95_sojourn_ms", "p99_sojourn_ms", "utilisation", "mean_in_system", "mean_attempts",
               "retry_amplification", "goodput_per_s", "stalls")
#: Below this many finished jobs in the window, a p99 is flagged as rough.
P99_MIN_JOBS = 1_000
BULLMQ_REFERENCE = "5.81.5"

Progress = Callable[[float], None]


def scenario_laws(scenario: Scenario, base: Path | None = None) -> dict[str, Any]:
    """The service law of every plain job type, by name."""
    return {name: jt.service for name, jt in scenario.job_types(base).items() if isinstance(jt, JobType)}


# --- one replication --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    config: dict[str, Any]
    base_dir: str | None
    seed: np.random.SeedSequence
    index: int
    backend: str
    tables: bool


def _nice_bin_ms(total_ms: int) -> int:
    target = total_ms / 120
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if s * 1000 >= target:
            return s * 1000
    return 86_400_000


def _binned_means(times: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time averages of a step function (``values[i]`` from ``times[i]`` on) over the bins ``edges``."""
    if len(times) == 0:
        return np.zeros(len(edges) - 1)
    # area under the step function from 0 to each edge
    seg_t = np.concatenate(([0], times))
    seg_v = np.concatenate(([0], values)).astype(np.float64)
    lengths = np.diff(np.concatenate((seg_t, [max(int(edges[-1]), int(seg_t[-1]))])))
    cum = np.concatenate(([0.0], np.cumsum(seg_v * lengths)))
    idx = np.searchsorted(seg_t, edges, side="right") - 1
    idx = np.clip(idx, 0, len(seg_t) - 1)
    area = cum[idx] + seg_v[idx] * (edges - seg_t[idx])
    return np.diff(area) / np.diff(edges)


def timeseries(log: pd.DataFrame, queues: Sequence[str], end_ms: int, bin_ms: int) -> pd.DataFrame:
    """Per queue and time bin: the time-averaged number of jobs in each state, and what happened in the bin."""
    edges = np.arange(0, end_ms + bin_ms, bin_ms, dtype=np.int64)
    if len(edges) < 2:
        edges = np.array([0, bin_ms], dtype=np.int64)
    frames = []
    for queue in queues:
        part = log[log["queue"] == queue]
        out = pd.DataFrame({"queue": queue, "time_ms": edges[:-1], "bin_ms": bin_ms})
        if len(part):
            counts = state_counts(part)
            t = counts.index.to_numpy(dtype=np.int64)
            for state in ("waiting", "prioritized", "delayed", "active"):
                out[state] = _binned_means(t, counts[state].to_numpy(), edges)
        else:
            for state in ("waiting", "prioritized", "delayed", "active"):
                out[state] = 0.0
        times = part["time_ms"].to_numpy(dtype=np.int64)
        bins = np.searchsorted(edges, times, side="right") - 1
        to, frm, reason = part["to"].to_numpy(), part["from"].to_numpy(), part["reason"].to_numpy()
        n = len(edges) - 1

        def count(mask: np.ndarray, bins: np.ndarray = bins, n: int = n) -> np.ndarray:
            b = bins[mask]
            b = b[(b >= 0) & (b < n)]
            return np.bincount(b, minlength=n)

        stalled = reason == "stalled"
        out["arrivals"] = count(frm == "")
        out["started"] = count(to == "active")
        out["completed"] = count(to == "completed")
        out["failed"] = count(to == "failed")
        out["dlq"] = count(to == "dlq")
        out["retried"] = count((frm == "active") & np.isin(to, ("delayed", "waiting", "prioritized")) & ~stalled)
        out["stalled"] = count(stalled)
        seconds = bin_ms / 1000
        out["throughput_per_s"] = out["completed"] / seconds
        out["arrival_rate_per_s"] = out["arrivals"] / seconds
        frames.append(out)
    df = pd.concat(frames, ignore_index=True)
    df["queued"] = df["waiting"] + df["prioritized"]
    return df


def _group_metrics(log: pd.DataFrame, jobs: pd.DataFrame, start: int, end: int,
                   capacity: int | None) -> dict[str, float]:
    if len(jobs) == 0:
        return {}
    return summary(log, jobs, start, end, capacity=capacity)


def _metrics(sim: Simulation, log: pd.DataFrame, jobs: pd.DataFrame, start: int, end: int,
             capacity: Mapping[str, int]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {
        "overall": {"all": _group_metrics(log, jobs, start, end, sum(capacity.values()))}, "by_queue": {},
        "by_name": {}, "by_priority": {}}
    for queue, cap in capacity.items():
        out["by_queue"][queue] = _group_metrics(log[log["queue"] == queue], jobs[jobs["queue"] == queue], start,
                                                end, cap)
    names = jobs[["queue", "name"]].drop_duplicates()
    clash = names["name"].duplicated(keep=False)
    for (queue, name), dup in zip(names.itertuples(index=False), clash, strict=True):
        key = f"{queue}/{name}" if dup else name
        sel = (jobs["queue"] == queue) & (jobs["name"] == name)
        lsel = (log["queue"] == queue) & (log["name"] == name)
        out["by_name"][key] = _group_metrics(log[lsel], jobs[sel], start, end, None)
    keyed = jobs.set_index(["queue", "job_id"])["priority"]
    log_priority = pd.Series(keyed.reindex(pd.MultiIndex.from_arrays([log["queue"], log["job_id"]])).to_numpy(),
                             index=log.index)
    for priority in sorted(jobs["priority"].unique()):
        out["by_priority"][str(int(priority))] = _group_metrics(log[log_priority == priority],
                                                                jobs[jobs["priority"] == priority], start, end, None)
    return out


def _saga_counts(steps: pd.DataFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (step, action, outcome), n in steps.groupby(["step", "action", "outcome"]).size().items():
        out.setdefault(str(step), {})[f"{action}_{outcome}"] = int(n)
    return out


def _run_one(task: _Task, on_progress: Progress | None = None) -> dict[str, Any]:
    loaded = load_scenario(task.config)
    scenario = loaded.scenario
    base = Path(task.base_dir) if task.base_dir else None
    sim = Simulation(task.seed, task.backend)
    built = setup(sim, scenario, base)
    arrivals_end = run_built(sim, built, on_progress)
    end = max(1, arrivals_end - ms(scenario.horizon.tail_s))
    warmup = ms(scenario.horizon.warmup_s)
    if warmup >= end:
        warmup = 0
    log = sim.event_log()
    jobs = sim.jobs()
    queues = [q.name for q in scenario.queues]
    out: dict[str, Any] = {
        "index": task.index, "end_ms": end, "now_ms": sim.now_ms, "warmup_ms": warmup,
        "metrics": _metrics(sim, log, jobs, warmup, end, built.capacity),
        "conservation": conservation(jobs, sum(sim.arrivals.values())),
        "little": little_identity(log, jobs, sim.now_ms) if len(log) else {"area": 0, "sojourn_sum": 0},
        "saga": _saga_counts(sim.recorder.step_log()),
    }
    alerts = built.monitor.alert_log() if built.monitor is not None else pd.DataFrame(
        columns=["time_ms", "queue", "status", "alert"])
    out["alerts"] = alerts
    out["checks"] = built.monitor.check_log() if built.monitor is not None else pd.DataFrame()
    # per-job latency of the window, for pooled percentiles and CDFs
    window = jobs[(jobs["created_ms"] >= warmup) & (jobs["created_ms"] < end)]
    out["window_jobs"] = window[["queue", "name", "priority", "final_state", "attempts", "wait_ms",
                                 "sojourn_ms"]].copy()
    if task.tables:
        bin_ms = ms(scenario.report.bin_s) if scenario.report.bin_s else _nice_bin_ms(max(sim.now_ms, 1))
        out["jobs"] = jobs
        out["events"] = log
        out["timeseries"] = timeseries(log, queues, max(sim.now_ms, 1), bin_ms)
        out["incidents"] = sim.recorder.incident_log()
        out["faults"] = sim.faults()
        out["steps"] = sim.recorder.step_log()
    return out


# --- many replications ------------------------------------------------------------------------------------------


def estimate_dict(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and t-interval of replication values, as JSON-ready numbers (None for NaN)."""
    e = t_interval(values, confidence)
    return {"mean": _num(e.mean), "half_width": _num(e.half_width), "low": _num(e.low), "high": _num(e.high),
            "n": e.n}


def _num(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return None if not math.isfinite(f) else f


@dataclass
class RunResult:
    """Everything a scenario run produced (see the module docstring)."""

    loaded: LoadedScenario
    seed: int
    replications: int
    backend: str
    reps: list[dict[str, Any]]
    theory: TheoryModel | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def scenario(self) -> Scenario:
        return self.loaded.scenario

    def _stack(self, key: str) -> pd.DataFrame:
        frames = []
        for rep in self.reps:
            if key in rep and rep[key] is not None and len(rep[key].columns):
                df = rep[key].copy()
                df["replication"] = rep["index"] + 1
                frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def jobs(self) -> pd.DataFrame:
        return self._stack("jobs")

    @property
    def events(self) -> pd.DataFrame:
        return self._stack("events")

    @property
    def timeseries(self) -> pd.DataFrame:
        return self._stack("timeseries")

    @property
    def alerts(self) -> pd.DataFrame:
        return self._stack("alerts")

    @property
    def window_jobs(self) -> pd.DataFrame:
        return self._stack("window_jobs")

    def metric_values(self, metric: str, group: str = "overall", key: str = "all") -> list[float]:
        """One value of ``metric`` per replication (NaN where a replication has none)."""
        return [rep["metrics"][group].get(key, {}).get(metric, math.nan) for rep in self.reps]

    def estimate(self, metric: str, group: str = "overall", key: str = "all") -> dict[str, Any]:
        return estimate_dict(self.metric_values(metric, group, key))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "bullmq_reference": BULLMQ_REFERENCE}
    for dist in ("queuesim", "numpy", "pandas", "simpy", "matplotlib", "fakeredis", "redis", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _summarise(result: RunResult) -> dict[str, Any]:
    scenario = result.scenario
    first = result.reps[0]
    metrics: dict[str, Any] = {}
    for group in ("overall", "by_queue", "by_name", "by_priority"):
        keys: list[str] = []
        for rep in result.reps:
            keys.extend(k for k in rep["metrics"][group] if k not in keys)
        metrics[group] = {}
        for key in keys:
            names: list[str] = []
            for rep in result.reps:
                names.extend(m for m in rep["metrics"][group].get(key, {}) if m not in names)
            metrics[group][key] = {m: result.estimate(m, group, key) for m in names}
    metrics["overall"] = metrics["overall"].get("all", {})
    warnings: list[str] = []
    if result.replications < 2:
        warnings.append("one replication: no confidence intervals; run with --reps 5 or more to get them")
    overall = metrics["overall"]
    finished = (overall.get("completed", {}).get("mean") or 0) + (overall.get("dlq", {}).get("mean") or 0) + (
        overall.get("failed", {}).get("mean") or 0)
    if finished < P99_MIN_JOBS:
        warnings.append(f"only {finished:.0f} finished jobs per replication in the window: treat p99 as a rough "
                        f"idea (a p99 needs thousands of jobs)")
    unfinished = overall.get("unfinished", {}).get("mean") or 0
    if unfinished:
        warnings.append(f"{unfinished:.0f} jobs of the window were still unfinished at the end (per replication): "
                        "their sojourn is missing from the percentiles; lengthen the drain or the horizon")
    for rep in result.reps:
        if not rep["conservation"]["balanced"]:
            warnings.append(f"replication {rep['index'] + 1}: job conservation does not balance: {rep['conservation']}")
    alerts = result.alerts
    alert_list = []
    alert_counts: dict[str, dict[str, Any]] = {}
    if len(alerts):
        for row in alerts.itertuples(index=False):
            kind = str(row.alert).split(":")[0]
            entry = alert_counts.setdefault(f"{row.queue}: {kind}", {
                "queue": row.queue, "alert": kind, "status": row.status, "checks": 0,
                "first_ms": int(row.time_ms), "last_ms": int(row.time_ms)})
            entry["checks"] += 1
            entry["first_ms"] = min(entry["first_ms"], int(row.time_ms))
            entry["last_ms"] = max(entry["last_ms"], int(row.time_ms))
            if row.status == "critical":
                entry["status"] = "critical"
        shown = alerts[alerts["replication"] == 1] if "replication" in alerts else alerts
        alert_list = [{"replication": int(r.replication), "time_ms": int(r.time_ms), "queue": r.queue,
                       "status": r.status, "alert": r.alert} for r in shown.itertuples(index=False)]
    theory_block = None
    if result.theory is not None:
        t = result.theory
        checks = {}
        for metric, exact in t.metrics.items():
            est = result.estimate(metric)
            hw = est["half_width"]
            inside = None if hw is None or est["mean"] is None else abs(est["mean"] - exact) <= hw
            checks[metric] = {"exact": _num(exact), **est, "inside_ci": inside,
                              "relative_error": _num((est["mean"] - exact) / exact) if est["mean"] is not None
                              and exact else None}
        per_name = {}
        for name, values in t.by_name.items():
            per_name[name] = {}
            for metric, exact in values.items():
                est = result.estimate(metric, "by_name", name)
                hw = est["half_width"]
                per_name[name][metric] = {"exact": _num(exact), **est,
                                          "inside_ci": None if hw is None or est["mean"] is None
                                          else abs(est["mean"] - exact) <= hw}
        theory_block = {"model": t.model, "formula": t.formula, "checks": checks, "by_name": per_name,
                        "notes": t.notes}
    saga: dict[str, dict[str, float]] = {}
    for rep in result.reps:
        for step, counts in rep["saga"].items():
            for k, v in counts.items():
                saga.setdefault(step, {}).setdefault(k, 0)
                saga[step][k] += v / len(result.reps)
    loaded = result.loaded
    return {
        "scenario": {"name": scenario.name, "title": scenario.title, "description": scenario.description,
                     "file": str(loaded.file) if loaded.file else None, "hash": loaded.hash,
                     "overrides": list(loaded.overrides)},
        "seed": result.seed,
        "replications": result.replications,
        "backend": result.backend,
        "confidence": 0.95,
        "window_ms": {"start": first["warmup_ms"], "end": first["end_ms"]},
        "run_end_ms": max(rep["now_ms"] for rep in result.reps),
        "metrics": metrics,
        "theory": theory_block,
        "alerts": {"summary": list(alert_counts.values()), "timeline_replication_1": alert_list},
        "saga_steps_per_replication": saga,
        "conservation": [rep["conservation"] for rep in result.reps],
        "littles_law": [rep["little"] for rep in result.reps],
        "warnings": warnings,
        "versions": _versions(),
        "command": " ".join(["queuesim", *sys.argv[1:]]) if sys.argv and "queuesim" in sys.argv[0] else None,
    }


def _pool_size(n: int) -> int:
    return max(1, min(n, os.cpu_count() or 1))


def run_scenario(loaded: LoadedScenario, *, seed: int | None = None, replications: int | None = None,
                 backend: str | None = None, tables: bool = True, on_progress: Progress | None = None,
                 executor: Executor | None = None) -> RunResult:
    """Run a loaded scenario (its own seed, replications and backend unless given) and summarise it."""
    return run_many([loaded], seed=seed, replications=replications, backend=backend, tables=tables,
                    on_progress=on_progress, executor=executor)[0]


def run_many(variants: Sequence[LoadedScenario], *, seed: int | None = None, replications: int | None = None,
             backend: str | None = None, tables: bool = True, on_progress: Progress | None = None,
             executor: Executor | None = None) -> list[RunResult]:
    """Run several scenarios, every replication of every one in one process pool. With the same ``seed`` and
    ``replications``, replication i of each variant gets the same random streams (common random numbers)."""
    plans = []
    tasks: list[_Task] = []
    for k, loaded in enumerate(variants):
        scenario = loaded.scenario
        v_seed = scenario.seed if seed is None else seed
        reps = scenario.replications if replications is None else replications
        v_backend = scenario.backend if backend is None else backend
        base = str(loaded.base_dir) if loaded.base_dir else None
        config = dict(loaded.config)
        first = len(tasks)
        seeds = replication_seeds(v_seed, reps)
        tasks.extend(_Task(config, base, s, i, v_backend, tables) for i, s in enumerate(seeds))
        plans.append((k, loaded, v_seed, reps, v_backend, first))
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    if len(tasks) == 1 and executor is None:
        results[0] = _run_one(tasks[0], on_progress)
    else:
        own = executor is None
        pool = ProcessPoolExecutor(max_workers=_pool_size(len(tasks))) if own else executor
        assert pool is not None
        try:
            futures = {pool.submit(_run_one, t): i for i, t in enumerate(tasks)}
            for done, fut in enumerate(as_completed(futures), start=1):
                results[futures[fut]] = fut.result()
                if on_progress:
                    on_progress(done / len(tasks))
        finally:
            if own:
                pool.shutdown()
    out = []
    for _, loaded, v_seed, reps, v_backend, first in plans:
        reps_results = [r for r in results[first:first + reps] if r is not None]
        laws = scenario_laws(loaded.scenario, loaded.base_dir)
        result = RunResult(loaded, v_seed, reps, v_backend, reps_results, theory_for(loaded.scenario, laws))
        result.summary = _summarise(result)
        out.append(result)
    return out


# --- writing ---------------------------------------------------------------------------------------------------


def _clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return _num(value)


def jobs_table(result: RunResult) -> pd.DataFrame:
    """``jobs.csv``: one row per job with the issue's column names, plus ``replication``."""
    jobs = result.jobs
    if not len(jobs):
        return pd.DataFrame(columns=[*JOBS_CSV_COLUMNS, "replication"])
    out = jobs.rename(columns={"first_start_ms": "started_ms", "finish_ms": "finished_ms", "final_state": "state"})
    return out[[*JOBS_CSV_COLUMNS, "replication"]]


def write_outputs(result: RunResult, out_dir: str | Path, *, charts: bool = True,
                  on_progress: Progress | None = None) -> dict[str, Path]:
    """Write the CSV files, ``summary.json``, the charts (PNG and SVG) and ``report.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["jobs"] = out / "jobs.csv"
    jobs_table(result).to_csv(files["jobs"], index=False)
    files["events"] = out / "events.csv"
    result.events.to_csv(files["events"], index=False)
    files["timeseries"] = out / "timeseries.csv"
    result.timeseries.to_csv(files["timeseries"], index=False)
    files["summary"] = out / "summary.json"
    files["summary"].write_text(json.dumps(_clean_json(result.summary), indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    if charts:
        from queuesim.report import write_report

        files.update(write_report(result, out, on_progress=on_progress))
    return files

