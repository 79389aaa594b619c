"""The report of a scenario run: charts (PNG and SVG files) and one self-contained ``report.html``.

The page needs nothing but a browser: the charts are embedded in it (SVG as data URIs), the styles are inline,
there is no script and no link to anything outside the file. It shows what a student or an engineer looks at
first: the scenario in plain words, the key numbers with their 95% confidence intervals, the exact values
where queueing theory has them, the health alerts, the charts, tables per job name and priority, and everything
needed to reproduce the run (seed, scenario hash, versions, the resolved configuration).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from queuesim.plots import (
    Mark,
    Span,
    attempts_chart,
    depth_chart,
    latency_chart,
    save,
    swimlane_chart,
    throughput_chart,
)
from queuesim.plots.charts import attempts_from_log

if TYPE_CHECKING:
    from queuesim.scenario.runner import RunResult

__all__ = ["build_charts", "render_html", "swimlane_window", "write_report"]

#: Metrics of the "at a glance" table: (key, label, unit kind).
GLANCE = (
    ("arrivals", "jobs created in the window", "count"),
    ("completed", "completed", "count"),
    ("dlq", "sent to the dead-letter queue", "count"),
    ("failed", "failed for good (kept in 'failed')", "count"),
    ("unfinished", "still unfinished at the end", "count"),
    ("mean_wait_ms", "mean wait before the first start (Wq; a scheduled delay counts)", "ms"),
    ("p_wait", "share of jobs that waited at all", "ratio"),
    ("mean_sojourn_ms", "mean time in system (W)", "ms"),
    ("p50_sojourn_ms", "median time in system (p50)", "ms"),
    ("p95_sojourn_ms", "p95 time in system", "ms"),
    ("p99_sojourn_ms", "p99 time in system", "ms"),
    ("utilisation", "utilisation of the worker slots (ρ)", "ratio"),
    ("mean_in_system", "mean jobs in system (L)", "num"),
    ("mean_queued", "mean jobs ready and waiting (Lq)", "num"),
    ("mean_attempts", "attempts per finished job", "num"),
    ("retry_amplification", "starts per job (retries and stalls add work)", "num"),
    ("stalls", "stalls", "count"),
    ("goodput_per_s", "completions per second", "num"),
)


def format_ms(value: float | None) -> str:
    """A duration in ms, in the unit that reads best (ms, s, min, h); '-' when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    a = abs(value)
    if a < 1000:
        return f"{value:.0f} ms"
    if a < 120_000:
        return f"{value / 1000:.2f} s"
    if a < 7_200_000:
        return f"{value / 60_000:.1f} min"
    return f"{value / 3_600_000:.2f} h"


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return format_ms(float(value))
    if kind == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if kind == "ratio":
        return f"{100 * value:.1f}%"
    return f"{value:,.3g}"


def _fmt_est(est: dict[str, Any] | None, kind: str) -> str:
    if not est or est.get("mean") is None:
        return "-"
    text = _fmt(est["mean"], kind)
    hw = est.get("half_width")
    if hw is not None:
        text += f" ± {_fmt(hw, kind if kind != 'count' else 'num')}"
    return text


def swimlane_window(result: RunResult) -> tuple[int, int]:
    """The time window of the swimlane timeline: the scenario's setting, else around the first incident (crash
    or freeze) and the stalls it caused, else the first stretch of the run holding about 150 attempts."""
    rep = result.reps[0]
    spec = result.scenario.report
    events = rep.get("events")
    run_end = int(rep["now_ms"])
    if spec.timeline_start_s is not None or spec.timeline_span_s is not None:
        start = int((spec.timeline_start_s or 0) * 1000)
        span = int((spec.timeline_span_s or 60) * 1000)
        return start, min(run_end, start + span)
    incidents = rep.get("incidents")
    if events is None or not len(events):
        return 0, max(run_end, 1)
    if incidents is not None and len(incidents) and incidents["kind"].isin(("crash", "freeze")).any():
        first = int(incidents[incidents["kind"].isin(("crash", "freeze"))]["time_ms"].min())
        stalls = events[(events["reason"] == "stalled") & (events["time_ms"] >= first)]["time_ms"]
        last = int(stalls.min()) if len(stalls) else first + 30_000
        pad = max(8_000, (last - first) // 3)
        return max(0, first - pad), min(run_end, last + pad)
    starts = events[events["to"] == "active"]["time_ms"].to_numpy()
    if not len(starts):
        return 0, max(run_end, 1)
    warm = int(rep["warmup_ms"])
    after = starts[starts >= warm]
    if not len(after):
        after = starts
    begin = int(after[0])
    k = min(len(after) - 1, 150)
    end = int(after[k]) + 1
    attempts = attempts_from_log(events.head(5_000))
    durations = [a.end - a.start for a in attempts[:200] if a.end is not None]
    tail = int(sorted(durations)[len(durations) // 2]) if durations else 1000
    return max(0, begin - tail // 2), min(run_end, max(end + tail, begin + 10 * tail))


def _marks(result: RunResult) -> tuple[list[Mark], list[Span]]:
    rep = result.reps[0]
    marks: list[Mark] = []
    faults = rep.get("faults")
    if faults is not None and len(faults):
        short = {"crash-worker": "crash", "freeze-worker": "freeze", "add-workers": "+workers",
                 "remove-workers": "-workers", "pause": "pause", "resume": "resume", "backlog": "backlog"}
        for row in faults.itertuples(index=False):
            target = str(row.target)
            if row.action == "add-workers":
                target = f"{len(target.split(','))} workers"
            elif "-w" in target and "," not in target:
                target = "w" + target.rsplit("-w", 1)[1]
            marks.append(Mark(int(row.time_ms), f"{short.get(row.action, row.action)} {target}"))
    spans = []
    for dep in result.scenario.dependencies:
        for o in dep.outages:
            spans.append(Span(int(o.start_s * 1000), int(o.end_s * 1000), f"outage of {dep.name}"))
    return marks, spans


def build_charts(result: RunResult) -> dict[str, Any]:
    """The report's figures, by file stem (each a matplotlib Figure)."""
    rep = result.reps[0]
    s = result.scenario
    marks, spans = _marks(result)
    warmup = int(rep["warmup_ms"])
    reps_note = f" — replication 1 of {result.replications}" if result.replications > 1 else ""
    ts = rep["timeseries"]
    figs: dict[str, Any] = {}
    figs["throughput"] = throughput_chart(ts, warmup_ms=warmup, marks=marks, spans=spans,
                                          title=f"Throughput over time{reps_note}")
    figs["depth"] = depth_chart(ts, warmup_ms=warmup, marks=marks, spans=spans,
                                backlog_threshold=s.health.waiting_warning if s.health.enabled else None,
                                title=f"Queue depth by state over time{reps_note}")
    window = result.window_jobs
    metrics = result.summary["metrics"]
    theory = result.theory
    single = window["name"].nunique() == 1 if len(window) else False
    cdf = theory.sojourn_cdf if theory is not None and single else None
    pooled = " (all replications)" if result.replications > 1 else ""
    figs["latency_by_name"] = latency_chart(
        window, by="name", estimates=metrics["by_name"], theory_cdf=cdf,
        theory_label=f"exact ({theory.model})" if theory is not None else "exact",
        title=f"Time in system per job name: jobs created in the measurement window{pooled}")
    if len(window) and window["priority"].nunique() > 1:
        figs["latency_by_priority"] = latency_chart(
            window, by="priority", estimates=metrics["by_priority"],
            title=f"Time in system per priority (BullMQ: 0 = none runs first, then 1, 2, …){pooled}")
    figs["attempts"] = attempts_chart(window, title=None)
    start, end = swimlane_window(result)
    figs["timeline"] = swimlane_chart(rep["events"], incidents=rep.get("incidents"), start_ms=start, end_ms=end)
    return figs


CHART_TEXT = {
    "throughput": ("Throughput over time",
                   "Green: jobs completed per second (goodput). Grey: jobs added per second. Orange dashed: attempts "
                   "that failed and will be retried. Red: jobs that failed for good. When green stays below grey, "
                   "the queue is growing."),
    "depth": ("Queue depth by state",
              "How many jobs are running (green), ready but waiting for a free worker slot (blue) and waiting out "
              "a delay or a retry backoff (orange). Averaged over each time bin."),
    "latency_by_name": ("Time in system per job name",
                        "Left: for each time t, the share of jobs finished within t of being added (a curve further "
                        "left is faster). Right: the 50th, 95th and 99th percentiles; whiskers are 95% confidence "
                        "intervals over the replications when there are several."),
    "latency_by_priority": ("Time in system per priority",
                            "The same per BullMQ priority. Priority 0 (no priority) is served before every "
                            "prioritized job, then 1 before 2 and so on."),
    "attempts": ("Attempts per job",
                 "How many attempts finished jobs needed, and how they ended. Retries are extra work: the "
                 "workers run every attempt."),
    "timeline": ("Swimlane timeline",
                 "Each bar is one attempt on one worker slot, coloured by how it ended. Dotted: a backoff wait "
                 "(the job is off the workers until it is due). Hatched: the job is still locked by a worker that "
                 "crashed or froze, until a stalled check gives it back."),
}


def _data_uri(path: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(rows: list[list[str]], header: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:34px 0 10px;border-bottom:2px solid #eee;
padding-bottom:4px}h3{font-size:1.05em;margin:22px 0 6px}
.sub{color:#555;margin:0 0 14px}.desc{white-space:pre-line;background:#f4f6fa;border-left:4px solid #4C72B0;
padding:10px 14px;line-height:1.45}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}th,td{border:1px solid #ddd;padding:4px 9px;
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}.warn{background:#fff7e0;
border:1px solid #f0d890;padding:8px 12px;margin:8px 0}
figure{margin:14px 0 26px}figure img{width:100%;height:auto;border:1px solid #eee}figcaption{color:#444;
font-size:.92em;margin-top:4px}pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:.85em}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px}.small{font-size:.88em;color:#555}
.critical{color:#b42318}.warning{color:#9a6700}
"""


def render_html(result: RunResult, charts: dict[str, Path]) -> str:
    """The report page (a string of self-contained HTML)."""
    from queuesim.scenario.loader import dump_toml

    s = result.scenario
    summ = result.summary
    overall = summ["metrics"]["overall"]
    e = html.escape
    parts: list[str] = []
    window = summ["window_ms"]
    parts.append(f"<h1>{e(s.title or s.name)}</h1>")
    parts.append(f'<p class="sub">Scenario <b>{e(s.name)}</b> · seed {summ["seed"]} · {summ["replications"]} '
                 f'replication{"s" if summ["replications"] != 1 else ""} · backend {e(summ["backend"])} · '
                 f'measured from {format_ms(window["start"])} to {format_ms(window["end"])} of simulated time</p>')
    if s.description:
        parts.append(f'<div class="desc">{e(s.description.strip())}</div>')
    for w in summ["warnings"]:
        parts.append(f'<div class="warn">⚠ {e(w)}</div>')
    # at a glance
    parts.append("<h2>At a glance</h2>")
    ci = " ± 95% CI half-width" if summ["replications"] > 1 else ""
    rows = [[e(label), _fmt_est(overall.get(key), kind)] for key, label, kind in GLANCE if key in overall]
    parts.append(_table(rows, ["metric (all queues)", f"mean over replications{ci}"]))
    # theory
    th = summ.get("theory")
    if th:
        parts.append(f"<h2>Theory next to simulation: {e(th['model'])}</h2>")
        parts.append(f"<p>Exact long-run values from {e(th['formula'])}. A check passes when the exact value lies "
                     "inside the simulated 95% confidence interval.</p>")
        kinds = {k: kind for k, _, kind in GLANCE}
        kinds.update({"dlq_rate": "ratio", "failure_rate": "ratio"})
        trows = []
        for metric, c in th["checks"].items():
            kind = kinds.get(metric, "num")
            verdict = ("<span class='ok'>inside</span>" if c["inside_ci"] else "<span class='bad'>outside</span>") \
                if c["inside_ci"] is not None else "no CI (one replication)"
            rel = f"{100 * c['relative_error']:+.1f}%" if c.get("relative_error") is not None else "-"
            trows.append([e(metric), _fmt(c["exact"], kind), _fmt_est(c, kind), rel, verdict])
        for name, checks in th.get("by_name", {}).items():
            for metric, c in checks.items():
                verdict = ("<span class='ok'>inside</span>" if c["inside_ci"] else "<span class='bad'>outside"
                           "</span>") if c["inside_ci"] is not None else "no CI"
                trows.append([f"{e(metric)} of {e(name)}", _fmt(c["exact"], "ms"), _fmt_est(c, "ms"), "-", verdict])
        parts.append(_table(trows, ["metric", "exact", "simulated ± CI", "difference", "exact value in the CI?"]))
        for note in th.get("notes", []):
            parts.append(f'<p class="small">{e(note)}</p>')
    # alerts
    parts.append("<h2>Health alerts</h2>")
    alerts = summ["alerts"]["summary"]
    if alerts:
        arows = [[e(a["queue"]), f"<span class='{e(a['status'])}'>{e(a['status'])}</span>", e(a["alert"]),
                  f"{a['checks']:,}", format_ms(a["first_ms"]), format_ms(a["last_ms"])] for a in alerts]
        parts.append("<p>The seed's health rules, checked every "
                     f"{s.health.interval_s:g} s of simulated time (all replications together).</p>")
        parts.append(_table(arows, ["queue", "status", "alert", "checks raising it", "first", "last"]))
    elif s.health.enabled:
        parts.append("<p>No alert: every check found every queue healthy.</p>")
    else:
        parts.append("<p>Health checks are off in this scenario.</p>")
    # charts
    parts.append("<h2>Charts</h2>")
    for stem, path in charts.items():
        title, caption = CHART_TEXT.get(stem, (stem, ""))
        parts.append(f'<figure><img src="{_data_uri(path)}" alt="{e(title)}"><figcaption><b>{e(title)}.</b> '
                     f'{e(caption)} Files: {e(path.with_suffix(".png").name)}, {e(path.name)}.</figcaption></figure>')
    # per name / priority
    for group, header in (("by_name", "job name"), ("by_priority", "priority"), ("by_queue", "queue")):
        table = summ["metrics"].get(group) or {}
        if len(table) < 1 or (group == "by_queue" and len(table) < 2):
            continue
        parts.append(f"<h3>Per {header}</h3>")
        prow = []
        for key, m in table.items():
            label = (f"{key} (none)" if key == "0" else key) if group == "by_priority" else key
            prow.append([e(label), _fmt_est(m.get("arrivals"), "count"), _fmt_est(m.get("mean_wait_ms"), "ms"),
                         _fmt_est(m.get("mean_sojourn_ms"), "ms"), _fmt_est(m.get("p99_sojourn_ms"), "ms"),
                         _fmt_est(m.get("mean_attempts"), "num"), _fmt_est(m.get("dlq"), "count")])
        parts.append(_table(prow, [header, "jobs", "mean wait", "mean time in system", "p99 time in system",
                                   "attempts per job", "dead-lettered"]))
    saga = summ.get("saga_steps_per_replication") or {}
    if saga:
        parts.append("<h3>Saga steps (per replication)</h3>")
        srows = [[e(step), _fmt(c.get("execute_ok", 0), "count"), _fmt(c.get("execute_failed", 0), "count"),
                  _fmt(c.get("compensate_ok", 0), "count"), _fmt(c.get("compensate_failed", 0), "count")]
                 for step, c in saga.items()]
        parts.append(_table(srows, ["step", "done", "failed", "undone", "undo failed"]))
    faults = result.reps[0].get("faults")
    if faults is not None and len(faults):
        parts.append("<h3>Faults timeline (replication 1)</h3>")
        frows = [[format_ms(int(r.time_ms)), e(str(r.action)), e(str(r.target)), e(str(r.detail or ""))]
                 for r in faults.itertuples(index=False)]
        parts.append(_table(frows, ["time", "action", "target", "detail"]))
    # reproduce
    parts.append("<h2>Reproduce</h2>")
    v = summ["versions"]
    parts.append(f"<p>Scenario hash <code>{e(summ['scenario']['hash'])}</code> (SHA-256 of the resolved "
                 f"configuration below), seed {summ['seed']}, {summ['replications']} replication(s), backend "
                 f"{e(summ['backend'])}. Overrides: {e(', '.join(summ['scenario']['overrides']) or 'none')}.</p>")
    parts.append('<p class="small">' + " · ".join(f"{e(k)} {e(str(val))}" for k, val in v.items()) + "</p>")
    parts.append("<p>Files next to this page: jobs.csv (one row per job), events.csv (one row per state change), "
                 "timeseries.csv (per queue and time bin), summary.json (every metric with its interval), the "
                 "charts as PNG and SVG.</p>")
    parts.append(f"<details><summary>Resolved configuration (TOML)</summary><pre>{e(dump_toml(result.loaded.config))}"
                 "</pre></details>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{e(s.title or s.name)} — queuesim report"
            f"</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>\n")


def write_report(result: RunResult, out_dir: Path, on_progress: Callable[[float], None] | None = None,
                 ) -> dict[str, Path]:
    """Draw the charts (PNG + SVG) and write ``report.html`` into ``out_dir``; returns the files written."""
    figs = build_charts(result)
    files: dict[str, Path] = {}
    svgs: dict[str, Path] = {}
    for i, (stem, fig) in enumerate(figs.items(), start=1):
        png, svg = save(fig, out_dir / stem)
        files[f"{stem}.png"] = png
        files[f"{stem}.svg"] = svg
        svgs[stem] = svg
        if on_progress:
            on_progress(i / (len(figs) + 1))
    report = out_dir / "report.html"
    report.write_text(render_html(result, svgs), encoding="utf-8")
    files["report"] = report
    if on_progress:
        on_progress(1.0)
    return files
