"""Charts and the report: figures without pyplot state, labelled axes with units, legends, the swimlane's reading
of the event log, the theory overlay, files written, and a report page that needs nothing outside itself."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from queuesim.plots import (
    attempts_chart,
    compare_chart,
    depth_chart,
    latency_chart,
    save,
    sweep_chart,
    swimlane_chart,
    throughput_chart,
    time_unit,
)
from queuesim.plots.charts import attempts_from_log
from queuesim.scenario import load_scenario, run_scenario, write_outputs
from queuesim.scenario.theory import mmc_sojourn_cdf

UNIT = re.compile(r"\((ms|s|min|h)\b|per second|jobs|share|attempts|utilisation|worker")

LOG_COLUMNS = ["time_ms", "job_id", "queue", "name", "attempt", "from", "to", "worker", "reason"]


def log(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LOG_COLUMNS)


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    """A small run with retries, a dead-letter queue, a crash and two priorities."""
    config = {
        "name": "plots", "backend": "memory", "seed": 3,
        "horizon": {"duration_s": 240, "warmup_s": 20},
        "queues": [{"name": "q", "dead_letter_queue": "q-dlq",
                    "workers": {"count": 2, "concurrency": 2, "lock_duration_ms": 5000, "stalled_interval_ms": 5000},
                    "default_job_options": {"attempts": 3, "backoff": {"type": "exponential", "delay_ms": 500}}}],
        "jobs": [
            {"name": "fast", "priority": 2, "service": {"law": "exponential", "mean_ms": 400},
             "failures": {"retryable": 0.2, "permanent": 0.02}, "arrivals": {"process": "poisson", "rate_per_s": 2}},
            {"name": "slow", "service": {"law": "exponential", "mean_ms": 900},
             "arrivals": {"process": "poisson", "rate_per_s": 0.5}},
        ],
        "faults": [{"action": "crash-worker", "at_s": 100, "worker": "q-w2"}],
    }
    return run_scenario(load_scenario(config), replications=2)


def labelled(fig: Figure) -> None:
    """Every visible axes has an x and y label naming a unit or a quantity; the figure has a title."""
    assert fig._suptitle is not None
    assert fig._suptitle.get_text()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        assert ax.get_xlabel(), "an x axis without a label"
        assert ax.get_ylabel() or ax.get_yticklabels(), "a y axis without a label"
        assert UNIT.search(ax.get_xlabel()) or UNIT.search(ax.get_ylabel()), (ax.get_xlabel(), ax.get_ylabel())


def legend_labels(fig: Figure) -> list[str]:
    labels = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    for ax in fig.axes:
        if ax.get_legend() is not None:
            labels += [t.get_text() for t in ax.get_legend().get_texts()]
    return labels


def test_time_units_follow_the_length_of_the_axis() -> None:
    assert time_unit(600_000) == (1000.0, "s")
    assert time_unit(3_600_000) == (60_000.0, "min")
    assert time_unit(86_400_000) == (3_600_000.0, "h")


def test_throughput_and_depth_charts_have_units_legends_and_mark_faults(result) -> None:  # type: ignore[no-untyped-def]
    ts = result.reps[0]["timeseries"]
    from queuesim.plots import Mark

    fig = throughput_chart(ts, warmup_ms=20_000, marks=[Mark(100_000, "crash w2")])
    labelled(fig)
    assert fig.axes[0].get_ylabel() == "jobs per second"
    assert "jobs completed (goodput)" in legend_labels(fig)
    assert "warm-up (not measured)" in legend_labels(fig)
    assert any(t.get_text() == "crash w2" for t in fig.axes[0].texts)
    fig = depth_chart(ts)
    labelled(fig)
    assert {"running (active)", "ready, waiting for a worker", "delayed (scheduled or backoff)"} <= set(
        legend_labels(fig))


def test_a_burst_does_not_flatten_the_throughput_chart() -> None:
    rows = []
    for t in range(0, 100_000, 10_000):
        rows.append({"queue": "q", "time_ms": t, "bin_ms": 10_000, "arrivals": 5000 if t == 20_000 else 20,
                     "completed": 20, "failed": 0, "dlq": 0, "retried": 0})
    fig = throughput_chart(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 50  # the 500/s burst is clipped, the 2/s lines stay readable
    assert any("burst: 5,000 jobs added" in t.get_text() for t in ax.texts)


def test_the_latency_chart_overlays_the_exact_cdf_and_shows_intervals(result) -> None:  # type: ignore[no-untyped-def]
    window = result.window_jobs
    est = result.summary["metrics"]["by_name"]
    fig = latency_chart(window[window["name"] == "slow"], by="name", estimates=est,
                        theory_cdf=mmc_sojourn_cdf(0.0005, 1 / 900, 4), theory_label="exact (M/M/4)")
    labelled(fig)
    cdf_ax, pct_ax = fig.axes
    assert cdf_ax.get_ylabel() == "share of jobs at or below (CDF)"
    exact = [line for line in cdf_ax.get_lines() if line.get_label() == "exact (M/M/4)"]
    assert exact
    assert exact[0].get_linestyle() == "--"
    assert "95% CI" in pct_ax.get_title(loc="left")
    fig = latency_chart(window, by="priority", estimates=result.summary["metrics"]["by_priority"])
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["priority 0 (none)", "priority 2"]


def test_the_attempts_histogram_counts_jobs_per_attempt_and_the_dead_letter_queue() -> None:
    jobs = pd.DataFrame({"attempts": [1, 1, 1, 2, 3, 3], "final_state": ["completed"] * 4 + ["dlq", "dlq"]})
    fig = attempts_chart(jobs)
    labelled(fig)
    ax = fig.axes[0]
    heights = sorted(round(p.get_height()) for p in ax.patches)
    assert heights == [0, 0, 0, 1, 2, 3]  # completed 3, 1, 0 at 1, 2, 3 attempts; dlq 0, 0, 2
    assert "2 in the dead-letter queue" in fig._suptitle.get_text()
    assert "failed for good, moved to the dead-letter queue" in legend_labels(fig)


def test_the_swimlane_reads_attempts_backoffs_stalls_and_dead_letters_from_the_log() -> None:
    events = log([
        (0, "1", "q", "a", 0, "", "waiting", None, "added"),
        (10, "1", "q", "a", 1, "waiting", "active", "q-w1", None),
        (500, "1", "q", "a", 1, "active", "delayed", "q-w1", "boom"),
        (1500, "1", "q", "a", 1, "delayed", "waiting", None, "due"),
        (1600, "1", "q", "a", 2, "waiting", "active", "q-w2", None),
        (2000, "1", "q", "a", 2, "active", "completed", "q-w2", None),
        (0, "2", "q", "b", 0, "", "waiting", None, "added"),
        (20, "2", "q", "b", 1, "waiting", "active", "q-w2", None),
        (9000, "2", "q", "b", 1, "active", "waiting", "q-w2", "stalled"),
        (9100, "2", "q", "b", 1, "waiting", "active", "q-w1", None),
        (9600, "2", "q", "b", 1, "active", "dlq", "q-w1", "bad input"),
    ])
    attempts = attempts_from_log(events)
    assert [(a.job_id, a.worker, a.start, a.end, a.outcome) for a in attempts] == [
        ("1", "q-w1", 10, 500, "retry"), ("2", "q-w2", 20, 9000, "stalled"), ("1", "q-w2", 1600, 2000, "completed"),
        ("2", "q-w1", 9100, 9600, "dlq")]
    assert attempts[0].due == 1500
    incidents = pd.DataFrame([(5000, "q-w2", "q", "crash", None, "2")],
                             columns=["time_ms", "worker", "queue", "kind", "job_id", "detail"])
    fig = swimlane_chart(events, incidents=incidents)
    labelled(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["q-w1", "q-w2"]
    crash = [line for line in ax.get_lines() if line.get_marker() == "X"]
    assert crash
    assert crash[0].get_xdata()[0] == pytest.approx(5.0)
    assert {"attempt failed, retried after a backoff", "lock held, nobody working → stalled",
            "worker crash"} <= set(legend_labels(fig))


def test_sweep_and_compare_charts_draw_bands_and_whiskers() -> None:
    table = pd.DataFrame({"value": [1.0, 2.0], "mean_sojourn_ms": [1000, 2000], "mean_sojourn_ms_low": [900, 1800],
                          "mean_sojourn_ms_high": [1100, 2200], "p50_sojourn_ms": [800, 1500],
                          "p99_sojourn_ms": [5000, 9000], "utilisation": [0.4, 0.8]})
    theory = pd.DataFrame({"value": [1.0, 2.0], "mean_sojourn_ms": [1000, 2000], "utilisation": [0.4, 0.8]})
    fig = sweep_chart(table, "rate_per_s", theory=theory)
    labelled(fig)
    assert {"mean: 95% CI", "mean (exact)", "p99 (simulated)"} <= set(legend_labels(fig))
    fig = compare_chart(pd.DataFrame({"m": [1.0, 2.0], "m_hw": [0.1, 0.2]}, index=["a", "b"]), [("m", "m (s)", 1.0)])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_figures_are_saved_as_png_and_svg_without_touching_pyplot(tmp_path: Path) -> None:
    fig = attempts_chart(pd.DataFrame({"attempts": [1, 2], "final_state": ["completed", "dlq"]}))
    png, svg = save(fig, tmp_path / "chart")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []


def test_the_report_is_one_self_contained_page_with_every_chart(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_outputs(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)  # nothing fetched from elsewhere
    assert "<script" not in page
    images = re.findall(r'<img src="data:image/svg\+xml;base64,', page)
    charts = {"throughput", "depth", "latency_by_name", "latency_by_priority", "attempts", "timeline"}
    assert len(images) == len(charts)
    for stem in charts:
        assert files[f"{stem}.png"].stat().st_size > 5_000
        assert files[f"{stem}.svg"].exists()
    for section in ("At a glance", "Health alerts", "Charts", "Reproduce", result.summary["scenario"]["hash"]):
        assert section in page
    assert "± " in page  # two replications: intervals are shown
