"""The teaching notebooks (``notebooks/``): stored clean, and each one runs headless with sensible results.

* The folder holds exactly the numbered set 01…09, each notebook valid nbformat v4 on the ``python3`` kernel,
  opening with what the reader will learn and closing with a summary.
* As stored, no code cell has outputs or an execution count (``notebooks/strip_outputs.py`` strips them).
* Each notebook is executed by nbclient in a kernel started from this very interpreter (the project's
  environment), with a 60-second limit per cell, must run without an error or a warning printed to stderr, and
  must finish in under 60 seconds. Then a few of its printed results are checked against what BullMQ's rules or
  the notebook's own inputs require (FIFO order, the priority-0 rule, backoff waits, the limiter's cap…).
* Notebook 9 runs twice: against a real Redis (``QUEUESIM_REDIS_URL``, or a private ``redis-server``; skipped
  without one, except under ``CI=true``), and against an unreachable URL, where it must skip itself cleanly.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = (
    "01-first-queue",
    "02-priorities-and-delays",
    "03-retries-backoff-dlq",
    "04-stalled-jobs",
    "05-rate-limits-and-outage",
    "06-capacity-planning",
    "07-theory-vs-simulation",
    "08-retry-storm",
    "09-live-redis",
)
CELL_TIMEOUT_S = 60
NOTEBOOK_LIMIT_S = 60
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def _strip_tool() -> types.ModuleType:
    """``notebooks/strip_outputs.py`` (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("strip_outputs", NOTEBOOK_DIR / "strip_outputs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- as stored ---------------------------------------------------------------------------------------------------


def test_the_folder_holds_exactly_the_numbered_set() -> None:
    assert [p.stem for p in sorted(NOTEBOOK_DIR.glob("*.ipynb"))] == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs_and_shaped_as_a_lesson(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, "a notebook without code"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has stored outputs: run notebooks/strip_outputs.py"
            assert cell.execution_count is None, f"cell {index} has an execution count"
    assert "widgets" not in nb.metadata, "stored widget state: run notebooks/strip_outputs.py"
    assert _strip_tool().has_outputs(nb) is False
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown"
    assert "What you'll learn" in first.source
    assert last.cell_type == "markdown"
    assert "## Summary" in last.source


def test_strip_outputs_removes_what_a_run_adds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _strip_tool()
    original = NOTEBOOK_DIR / "01-first-queue.ipynb"
    nb = nbformat.read(original, as_version=4)
    # what executing and saving in Jupyter adds: outputs, counts, timings, widget state, the exact Python version
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"cell {count}\n")]
        cell.execution_count = count
        cell.metadata["execution"] = {"shell.execute_reply": "2024-01-01T00:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "pygments_lexer": "ipython3"}
    copy = tmp_path / original.name
    nbformat.write(nb, copy)

    assert tool.main(["--check", str(copy)]) == 1  # --check reports and changes nothing
    assert "has outputs" in capsys.readouterr().out
    assert tool.has_outputs(nbformat.read(copy, as_version=4))
    assert tool.main([str(copy)]) == 0
    assert copy.read_bytes() == original.read_bytes()  # back to exactly what is stored
    assert tool.main(["--check", str(copy)]) == 0


# --- executed ----------------------------------------------------------------------------------------------------


class _ThisPythonKernel(KernelSpecManager):
    """The ``python3`` kernel is ipykernel in this interpreter, never a kernel installed for another Python."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == "python3":
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


def _execute(name: str) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook headless (working directory ``notebooks/``); returns it with outputs, and the seconds."""
    nb = _read(name)
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPythonKernel())
    assert manager.kernel_spec.argv[0] == sys.executable
    client = NotebookClient(nb, km=manager, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError, naming the cell, on the first error
    finally:
        if manager.has_kernel:  # a kernel manager handed to the client is not shut down by it
            manager.shutdown_kernel(now=True)
    elapsed = time.monotonic() - start
    print(f"{name}: {elapsed:.1f} s")
    return nb, elapsed


def _text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text, in order."""
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                data = out.get("data", {})
                parts.append(str(data.get("text/markdown") or data.get("text/plain", "")) + "\n")
    return "".join(parts)


def _stderr(nb: nbformat.NotebookNode) -> str:
    return "".join(o.text for c in nb.cells for o in c.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stderr")


def _value(text: str, label: str) -> Any:
    """The Python literal printed after ``label`` on its line (a list, dict, number…)."""
    match = re.search(re.escape(label) + r"\s*(.+)$", text, re.MULTILINE)
    assert match, f"the notebook did not print {label!r}"
    return ast.literal_eval(match.group(1).strip())


def _number(text: str, pattern: str) -> float:
    match = re.search(pattern, text)
    assert match, f"the notebook did not print anything matching {pattern!r}"
    return float(match.group(1))


def check_first_queue(text: str) -> None:
    added = _value(text, "job ids:")
    assert _value(text, "processing order:") == added  # no options: first in, first out
    done = re.search(r"completed jobs: (\d+) of (\d+)", text)
    assert done
    assert done.group(1) == done.group(2) == str(len(added))
    for key in ("bull:emails:id", "bull:emails:wait", "bull:emails:active", "bull:emails:1:lock",
                "bull:emails:completed", "bull:emails:events"):
        assert key in text


def check_priorities(text: str) -> None:
    added = _value(text, "added order:")
    order = _value(text, "processing order:")
    # BullMQ: priority 0 (none) before every prioritized job, then lower numbers first, FIFO within a priority
    # (Python's sort is stable, so equal priorities keep their added order)
    assert order == sorted(added, key=lambda job: (job[1] != 0, job[1]))
    assert order[0][1] == 0
    assert re.search(r"first job: \S+ \(priority 0\)", text)
    assert "10.0 s: started reminder (priority 3)" in text  # the delayed job starts at its due time
    assert "newsletter is now waiting" in text  # promote


def check_retries(text: str) -> None:
    assert _value(text, "fixed waits (ms):") == [2_000, 2_000]
    assert _value(text, "exponential waits (ms):") == [1_000 * 2**k for k in range(3)]  # d·2^(n-1), 4 attempts
    plain = re.search(r"no jitter:\s+retries (\d+)\.\.(\d+) ms", text)
    spread = re.search(r"jitter 0\.5: retries (\d+)\.\.(\d+) ms", text)
    assert plain
    assert int(plain.group(1)) == int(plain.group(2)) == 1_000
    assert spread
    assert 500 <= int(spread.group(1)) < int(spread.group(2)) < 1_000
    assert "outcome of UnrecoverableError: failed (in the dead-letter queue, attempts made 1)" in text
    assert "outcome of RateLimitError: rate-limited (state waiting, attempts made 0)" in text
    assert "outcome of DelayedError: moved (state delayed, attempts made 0)" in text
    assert "outcome of ConnectionError: delayed (state delayed, attempts made 1)" in text
    waits = _value(text, "backoff waits of the delayed jobs (ms):")
    assert waits["RetryableError"] == 5_000
    assert waits["ConnectionError"] == 1_000
    assert "dead-letter queue holds 0 jobs" in text  # after redrive and purge


def check_stalled(text: str) -> None:
    recovered = _number(text, r"job recovered at ([\d.]+) s; the lock had expired at 32\.000 s")
    # fetched at 2 s with a 30 s lock: back after the lock expired, at most one stalled-check period later
    assert 32 < recovered <= 32 + 30.001
    assert re.search(r"stalled 1 time\(s\)", text)
    assert "attempts made 1, started 2 times" in text
    assert "A's late result is refused: Lock mismatch" in text
    assert "'job stalled more than allowable limit'" in text


def check_rate_limits(text: str) -> None:
    per_second = _value(text, "job starts per second:")
    assert sum(per_second.values()) == 23
    assert max(per_second.values()) == 5  # the limiter's max, shared by both workers
    dead = {label: int(n) for label, n in re.findall(r"^(.+?)\s+dead-lettered\s+(\d+)\s+median", text, re.M)}
    assert dead["limiter 20/s"] > dead["as given"] > 0
    assert dead["ride it out"] == 0


def check_capacity(text: str) -> None:
    rows = re.findall(r"rho ([\d.]+): p50 +([\d.]+) s, p99 +([\d.]+) s, mean +([\d.]+) s \(exact +([\d.]+) s\)", text)
    assert len(rows) >= 4
    (rho_low, _, p99_low, mean_low, exact_low), (rho_high, _, p99_high, _, exact_high) = rows[0], rows[-1]
    work = float(rho_high) / float(rho_low)
    assert float(exact_high) / float(exact_low) > work  # Erlang C: waiting grows like 1/(1 - rho), the knee
    assert float(p99_high) > 1.25 * float(p99_low)  # the simulation shows it too, if roughly in one short run
    assert abs(float(mean_low) / float(exact_low) - 1) < 0.2  # at rho = 0.5 one run is already close
    best = re.search(r"= (\d+) slots \(p99 ([\d.]+) s", text)
    assert best
    assert int(best.group(1)) > 5  # 5 jobs/s of 1 s need more than 5 slots (rho < 1)
    assert float(best.group(2)) < 6.0  # and it meets the target
    assert "rho = 0.80: p50" in text  # the slider cell's static result


def check_theory(text: str) -> None:
    # replicated estimates next to Erlang C and the retry formula: the relative error must be within twice the
    # interval's relative half-width (a bug misses by more; bad luck at 95% misses only by a little)
    for label in ("P(wait):", "mean W (s):", "attempts per job:"):
        match = re.search(re.escape(label) + r"\s+exact .*\(([+-][\d.]+)%, CI ±([\d.]+)%\)", text)
        assert match, label
        assert abs(float(match.group(1))) <= 2 * float(match.group(2)), label
    assert re.search(r"rho = 0\.70, R = 5: exact .* -> (inside|OUTSIDE)", text)  # the slider cell's static result


def check_retry_storm(text: str) -> None:
    rows = {}
    for label, good, arrivals, backlog, dead in re.findall(
            r"^(.+?): goodput in the last 5 minutes ([\d.]+)/s \(arrivals ([\d.]+)/s\), backlog at the end "
            r"(\d+), dead-lettered (\d+)", text, re.M):
        rows[label] = (float(good), float(arrivals), int(backlog), int(dead))
    assert set(rows) == {"no outage", "as given", "backoff + jitter", "3 workers (15 slots)", "3 attempts"}
    for stuck in ("as given", "backoff + jitter"):
        good, arrivals, backlog, _ = rows[stuck]
        assert good < arrivals - 0.1, stuck  # never recovers: completes less than arrives…
        assert backlog >= 100, stuck  # …so the backlog keeps growing
    for healthy in ("no outage", "3 workers (15 slots)", "3 attempts"):
        good, arrivals, backlog, _ = rows[healthy]
        assert good > arrivals - 0.1, healthy
        assert backlog <= 5, healthy
    assert rows["3 attempts"][3] > 0
    assert rows["3 workers (15 slots)"][3] == 0


CHECKS = {
    "01-first-queue": check_first_queue,
    "02-priorities-and-delays": check_priorities,
    "03-retries-backoff-dlq": check_retries,
    "04-stalled-jobs": check_stalled,
    "05-rate-limits-and-outage": check_rate_limits,
    "06-capacity-planning": check_capacity,
    "07-theory-vs-simulation": check_theory,
    "08-retry-storm": check_retry_storm,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_notebook_runs_headless(name: str) -> None:
    nb, elapsed = _execute(name)
    assert elapsed < NOTEBOOK_LIMIT_S, f"{name} took {elapsed:.1f} s"
    assert _stderr(nb) == ""
    CHECKS[name](_text(nb))


@pytest.mark.slow
@pytest.mark.real_redis
def test_live_notebook_on_a_real_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUESIM_REDIS_URL", redis_url)  # the kernel inherits it
    nb, elapsed = _execute("09-live-redis")
    assert elapsed < NOTEBOOK_LIMIT_S
    assert _stderr(nb) == ""
    text = _text(nb)
    assert "Using the Redis server at" in text
    assert "skipped" not in text
    assert "completed 19 of 20; dead-lettered 1" in text  # one job raises UnrecoverableError
    assert "result: {'thumbnail': 'avatar-thumb.jpg'}" in text
    assert "keys left under the prefix: 0" in text


@pytest.mark.slow
def test_live_notebook_skips_cleanly_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUESIM_REDIS_URL", UNREACHABLE_REDIS)
    nb, elapsed = _execute("09-live-redis")
    assert elapsed < NOTEBOOK_LIMIT_S
    text = _text(nb)
    assert f"No Redis reachable at {UNREACHABLE_REDIS}; set QUEUESIM_REDIS_URL" in text
    guarded = sum(1 for c in nb.cells if c.cell_type == "code" and 'print("skipped: no Redis")' in c.source)
    assert guarded >= 5
    assert text.count("skipped: no Redis") == guarded
