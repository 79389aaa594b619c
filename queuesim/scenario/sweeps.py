"""Sweeps and comparisons of scenarios (``queuesim sweep`` and ``queuesim compare``).

A **sweep** runs one scenario for several values of one field, every value with the same replication seeds, and
puts each metric's mean and 95% interval next to the value (and the exact value where a closed form applies).

A **comparison** runs several variants with the same seeds: replication i of every variant sees the same
arrivals and the same work (common random numbers), so the *paired* difference between two variants has a far
narrower interval than the two separate intervals suggest. Random streams are named by queue and job name:
variants that rename them do not share their random numbers (a note says so).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from queuesim.analysis.stats import paired_difference
from queuesim.scenario.loader import LoadedScenario, ScenarioError, load_scenario
from queuesim.scenario.runner import RunResult, _clean_json, _num, run_many

__all__ = ["CompareResult", "SweepResult", "run_compare", "run_sweep", "write_compare", "write_sweep"]

#: Metrics a sweep keeps for each value.
SWEEP_METRICS = ("mean_sojourn_ms", "p50_sojourn_ms", "p95_sojourn_ms", "p99_sojourn_ms", "mean_wait_ms",
                 "utilisation", "mean_in_system", "mean_attempts", "dlq_rate", "goodput_per_s", "arrivals",
                 "completed", "dlq", "unfinished")


@dataclass
class SweepResult:
    """One row per value: the value, each metric's estimate, and the exact values when known."""

    name: str
    parameter: str
    replications: int
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None

    def table(self) -> pd.DataFrame:
        """Flat table: value, ``<metric>``, ``<metric>_low``, ``<metric>_high``, ``exact_<metric>``."""
        records = []
        for row in self.rows:
            rec: dict[str, Any] = {"value": row["value"]}
            for metric in SWEEP_METRICS:
                e = row[metric]
                rec[metric] = e["mean"]
                rec[f"{metric}_low"] = e["low"]
                rec[f"{metric}_high"] = e["high"]
            for metric, exact in (row["theory"] or {}).items():
                rec[f"exact_{metric}"] = exact
            records.append(rec)
        return pd.DataFrame(records)


def _value_label(raw: str) -> Any:
    try:
        number = float(raw)
    except ValueError:
        return raw
    return int(number) if number.is_integer() and "." not in raw else number


def run_sweep(scenario: str | Path, parameter: str, values: Sequence[str], *, overrides: Sequence[str] = (),
              seed: int | None = None, replications: int | None = None, backend: str | None = None,
              on_progress: Callable[[float], None] | None = None) -> SweepResult:
    """Run ``scenario`` once per value of ``parameter`` (all variants validated before anything runs)."""
    variants: list[LoadedScenario] = []
    for raw in values:
        variants.append(load_scenario(scenario, [*overrides, f"{parameter}={raw}"]))
    first = variants[0].scenario
    reps = replications if replications is not None else max(3, first.replications)
    the_seed = first.seed if seed is None else seed
    results = run_many(variants, seed=the_seed, replications=reps, backend=backend, tables=False,
                       on_progress=on_progress)
    out = SweepResult(first.name, parameter, reps, the_seed)
    for raw, result in zip(values, results, strict=True):
        row: dict[str, Any] = {"value": _value_label(raw)}
        for metric in SWEEP_METRICS:
            row[metric] = result.estimate(metric)
        theory = result.theory
        if theory is not None and theory.metrics:
            exact = dict(theory.metrics)
            for q, key in ((0.5, "p50_sojourn_ms"), (0.95, "p95_sojourn_ms"), (0.99, "p99_sojourn_ms")):
                value = theory.quantile(q)
                if value is not None:
                    exact[key] = value
            row["theory"] = exact
            out.model = theory.model
        else:
            row["theory"] = None
        out.rows.append(row)
    return out


def write_sweep(result: SweepResult, folder: str | Path) -> dict[str, Path]:
    """``sweep.csv``, ``sweep.json`` and the chart ``sweep.png`` / ``sweep.svg``."""
    from queuesim.plots import save, sweep_chart

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = result.table()
    files = {"csv": folder / "sweep.csv", "json": folder / "sweep.json"}
    table.to_csv(files["csv"], index=False)
    files["json"].write_text(json.dumps(_clean_json({
        "scenario": result.name, "parameter": result.parameter, "replications": result.replications,
        "seed": result.seed, "confidence": 0.95, "model": result.model, "rows": result.rows}), indent=2) + "\n")
    numeric = pd.to_numeric(table["value"], errors="coerce")
    if numeric.notna().all():
        theory = None
        exact_cols = [c for c in table.columns if c.startswith("exact_")]
        if exact_cols:
            theory = table[["value", *exact_cols]].rename(columns={c: c[len("exact_"):] for c in exact_cols})
        fig = sweep_chart(table, result.parameter, theory=theory,
                          title=f"{result.name}: sweep of {result.parameter} ({result.replications} replications "
                                "per value; bands: 95% CI" + (f"; dashed: exact, {result.model})" if theory is not None
                                                             else ")"))
        png, svg = save(fig, folder / "sweep")
        files["png"], files["svg"] = png, svg
    return files


@dataclass
class CompareResult:
    """Each variant's estimates and the paired differences from the first variant."""

    names: list[str]
    replications: int
    seed: int
    runs: list[RunResult]
    estimates: dict[str, dict[str, dict[str, Any]]]
    differences: dict[str, dict[str, dict[str, Any]]]
    crn_warning: str | None = None


def _parse_variant(text: str) -> tuple[str, list[str]]:
    parts = text.split("@")
    return parts[0], [p for p in parts[1:] if p]


def run_compare(variants: Sequence[str], *, overrides: Sequence[str] = (), seed: int | None = None,
                replications: int = 5, backend: str | None = None,
                on_progress: Callable[[float], None] | None = None) -> CompareResult:
    """Run every variant (``scenario`` or ``scenario@path=value@...``) with the same seeds."""
    loaded = []
    names = []
    for text in variants:
        source, extra = _parse_variant(text)
        if not source:
            raise ScenarioError(text, "", "a variant needs a scenario before '@'")
        loaded.append(load_scenario(source, [*overrides, *extra]))
        name = text if len(text) <= 48 else text[:45] + "..."
        while name in names:
            name += "'"
        names.append(name)
    the_seed = loaded[0].scenario.seed if seed is None else seed
    runs = run_many(loaded, seed=the_seed, replications=replications, backend=backend, tables=False,
                    on_progress=on_progress)
    metrics: list[str] = []
    for run in runs:
        for m in run.reps[0]["metrics"]["overall"]["all"]:
            if m not in metrics:
                metrics.append(m)
    estimates = {n: {m: r.estimate(m) for m in metrics} for n, r in zip(names, runs, strict=True)}
    differences: dict[str, dict[str, dict[str, Any]]] = {}
    for name, run in zip(names[1:], runs[1:], strict=True):
        differences[name] = {}
        for m in metrics:
            a, b = run.metric_values(m), runs[0].metric_values(m)
            pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
            e = paired_difference([p[0] for p in pairs], [p[1] for p in pairs])
            differences[name][m] = {"mean": _num(e.mean), "half_width": _num(e.half_width), "low": _num(e.low),
                                    "high": _num(e.high), "n": e.n}
    streams = [sorted((j.queue or s.scenario.queues[0].name, j.name) for j in s.scenario.jobs) for s in loaded]
    warning = None
    if any(st != streams[0] for st in streams[1:]):
        warning = ("the variants name their queues or jobs differently, so they do not share all their random "
                   "numbers: the paired intervals are wider than they could be")
    return CompareResult(names, replications, the_seed, runs, estimates, differences, warning)


def write_compare(result: CompareResult, folder: str | Path) -> dict[str, Path]:
    """``compare.json`` and the chart ``compare.png`` / ``compare.svg``."""
    from queuesim.plots import compare_chart, save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"json": folder / "compare.json"}
    files["json"].write_text(json.dumps(_clean_json({
        "variants": result.names, "replications": result.replications, "seed": result.seed,
        "confidence": 0.95, "estimates": result.estimates,
        "paired_differences_from_first": result.differences, "note": result.crn_warning}), indent=2) + "\n")
    rows = {}
    for name in result.names:
        e = result.estimates[name]
        rows[name] = {}
        for m in ("mean_sojourn_ms", "p99_sojourn_ms", "utilisation", "dlq_rate"):
            rows[name][m] = e.get(m, {}).get("mean")
            rows[name][f"{m}_hw"] = e.get(m, {}).get("half_width")
    table = pd.DataFrame.from_dict(rows, orient="index").astype(float)
    panels = [("mean_sojourn_ms", "mean time in system (s)", 1000.0),
              ("p99_sojourn_ms", "p99 time in system (s)", 1000.0),
              ("utilisation", "utilisation (share of slots busy)", 1.0),
              ("dlq_rate", "share of jobs dead-lettered", 1.0)]
    panels = [p for p in panels if table[p[0]].fillna(0).abs().sum() > 0]  # drop panels with nothing to show
    fig = compare_chart(table, panels)
    files["png"], files["svg"] = save(fig, folder / "compare")
    return files
