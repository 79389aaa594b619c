"""Classroom exercises (``queuesim.exercises``) and the ``queuesim exercise`` commands.

For every exercise: a correct solution passes (its theory lines and its runs on the engine), and a solution
built on the misconception fails with the hint that names it; the untouched starter reports "not done yet".
Then the loader's errors, the limiter worst case against the engine, and the command line's output and exit
codes. The solutions live in ``tests/exercises/solutions`` (never in the package). Simulation results are cached
per process, so a second check of the same exercise does not simulate again.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from queuesim import theory
from queuesim.cli import app
from queuesim.errors import OptionError
from queuesim.exercises import EXERCISES, CheckResult, check, get_exercise, write_starter
from queuesim.exercises.capacity import p95_wait, smallest_workers
from queuesim.exercises.rate_limit import worst_case_calls
from queuesim.exercises.retries import mean_attempts
from queuesim.sim import Deterministic, JobType, Poisson, Simulation

SOLUTIONS = Path(__file__).parent / "exercises" / "solutions"
runner = CliRunner()

#: a correct solution of every exercise
CORRECT = {n: SOLUTIONS / f"ex{n}_correct.py" for n in EXERCISES}
#: solutions built on a misconception: file -> (exercise, a phrase its hint must contain)
WRONG = {
    "ex1_wrong.py": (1, "not 10%"),
    "ex2_wrong.py": (2, "one worker more changes a lot"),
    "ex3_wrong.py": (3, "Retries are extra load"),
    "ex4_wrong.py": (4, "Priorities are not fair"),
    "ex5_wrong.py": (5, "metastable retry storm"),
    "ex5_wrong_full_jitter.py": (5, "full jitter, from 0 up"),
    "ex6_wrong_defaults.py": (6, "more than twice the longest block"),
    "ex6_wrong_long_lock.py": (6, "only makes the recovery slower"),
    "ex7_wrong.py": (7, "windows are not the upstream's"),
    "ex7_wrong_cautious.py": (7, "bursts pile up"),
}


def cli(*args: str) -> Any:
    return runner.invoke(app, ["exercise", *args], catch_exceptions=False)


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (rich wraps long lines)."""
    return " ".join(text.split())


def failed(result: CheckResult) -> list[str]:
    return [line.label for line in result.lines if not line.passed]


# --- every exercise: correct passes, the misconception fails with its hint, the starter is not done --------------


def test_there_are_seven_exercises_numbered_from_one() -> None:
    assert sorted(EXERCISES) == list(range(1, 8))
    for n, ex in EXERCISES.items():
        assert ex.number == n
        assert ex.misconception
        assert ex.task
        assert ex.predict
        assert ex.functions


@pytest.mark.parametrize("number", sorted(CORRECT))
def test_a_correct_solution_passes_on_theory_and_on_the_engine(number: int) -> None:
    result = check(number, CORRECT[number])
    assert result.status == "passed", result.text()
    assert result.passed
    assert not result.hints
    assert all(line.passed for line in result.lines)
    # the engine ran: every exercise has checks against a simulation, not only formulas
    assert any(line.kind == "simulation" for line in result.lines)
    assert result.seconds < 15


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_solution_built_on_the_misconception_fails_with_the_hint(name: str) -> None:
    number, phrase = WRONG[name]
    result = check(number, SOLUTIONS / name)
    assert result.status == "failed", result.text()
    assert not result.passed
    assert any(phrase in hint for hint in result.hints), result.hints
    # each failed line carries a hint; the hint is what the student sees
    assert all(line.hint for line in result.lines if not line.passed)


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_the_untouched_starter_is_not_done_yet(number: int, tmp_path: Path) -> None:
    path = write_starter(number, tmp_path)
    result = check(number, path)
    assert result.status == "not-done"
    assert "not done yet" in result.message
    assert f"{EXERCISES[number].functions[0]}()" in result.message
    assert not result.lines


# --- what each wrong solution gets wrong, line by line ----------------------------------------------------------


def test_exercise_1_the_misconception_misses_erlang_c_and_the_simulation() -> None:
    result = check(1, SOLUTIONS / "ex1_wrong.py")
    m = theory.mmc(3.6, 1.0, 4)
    first = result.lines[0]
    assert (first.passed, first.got) == (False, "0.1")
    assert first.expected.startswith(f"{m.p_wait:.4g}")
    sims = [line for line in result.lines if line.kind == "simulation"]
    assert len(sims) == 2
    assert not any(line.passed for line in sims)


def test_exercise_2_over_provisioning_fails_and_one_fewer_worker_meets_the_target_on_the_engine() -> None:
    result = check(2, SOLUTIONS / "ex2_wrong.py")
    # rho <= 0.5 gives 8 workers for 3.6 jobs/s; the smallest count is the one derived from the exact p95
    assert smallest_workers(3.6, 1.0, 2.0) == 5
    assert p95_wait(3.6, 1.0, 5) <= 2.0 < p95_wait(3.6, 1.0, 4)
    sims = {line.label: line for line in result.lines if line.kind == "simulation"}
    assert sims["simulated p95 wait with your 8 workers"].passed
    assert not sims["simulated p95 wait with one worker fewer (7)"].passed


def test_exercise_2_reference_counts_are_the_smallest_that_meet_the_target() -> None:
    for lam, s, target in ((3.6, 1.0, 2.0), (9.0, 1.0, 1.0), (45.0, 0.2, 0.1), (18.0, 0.5, 0.0)):
        c = smallest_workers(lam, s, target)
        assert p95_wait(lam, s, c) <= target < p95_wait(lam, s, c - 1)


def test_exercise_3_the_mean_number_of_attempts_matches_theory() -> None:
    for p, n in ((0.5, 3), (0.3, 5), (0.0, 3), (0.9, 1)):
        assert math.isclose(mean_attempts(p, n), theory.retry_via_queue(1.0, 10.0, p, n).mean_attempts)
    assert mean_attempts(1.0, 4) == 4.0


def test_exercise_5_fast_retries_never_recover_and_a_slow_growing_backoff_does() -> None:
    good = check(5, CORRECT[5])
    bad = check(5, SOLUTIONS / "ex5_wrong.py")
    recovery = [line for line in bad.lines if "back to normal" in line.label]
    assert len(recovery) == 2
    assert all(line.got.startswith("never") for line in recovery)
    assert all(line.got.startswith("after") for line in good.lines if "back to normal" in line.label)
    # nobody was given up on in either: the difference is the storm, not shedding load
    assert all(line.passed for line in bad.lines if "dead-letter" in line.label)


def test_exercise_6_each_wrong_setting_breaks_its_own_rule() -> None:
    defaults = check(6, SOLUTIONS / "ex6_wrong_defaults.py")
    long_lock = check(6, SOLUTIONS / "ex6_wrong_long_lock.py")
    twice = [line for line in defaults.lines if "processed twice" in line.label]
    stall_limit = [line for line in defaults.lines if "stalling too often" in line.label]
    # a 30 s lock renewed every 15 s loses jobs to 20 s blocks, and 1 allowed stall fails a job crashed twice
    assert not twice[0].passed
    assert not stall_limit[0].passed
    # with 5 s blocks a 30 s lock is safe
    assert twice[1].passed
    # a lock longer than any job never loses a job, but recovers crashes too late
    assert all(line.passed for line in long_lock.lines if "processed twice" in line.label)
    assert not any(line.passed for line in long_lock.lines if "back in the queue" in line.label)


def test_exercise_7_the_quota_as_limiter_is_refused_and_the_cautious_limiter_is_too_slow() -> None:
    naive = check(7, SOLUTIONS / "ex7_wrong.py")
    cautious = check(7, SOLUTIONS / "ex7_wrong_cautious.py")
    by_label = {line.label: line for line in naive.lines}
    worst = next(line for label, line in by_label.items() if label.startswith("quota 50") and "worst-case" in label)
    assert (worst.passed, worst.got) == (False, str(worst_case_calls(50, 10_000, 10_000)))
    refused = next(line for label, line in by_label.items() if label.startswith("quota 50") and "refused" in label)
    assert not refused.passed
    assert int(refused.got) > 0
    assert all(line.passed for line in cautious.lines if "worst-case" in line.label or "refused" in line.label)
    assert not any(line.passed for line in cautious.lines if "rate" in line.label or "cleared" in line.label)


@pytest.mark.parametrize(("max_jobs", "duration_ms"), [(50, 10_000), (5, 1_000), (25, 5_000), (3, 700), (1, 200)])
def test_the_limiter_worst_case_bounds_what_the_engine_lets_through(max_jobs: int, duration_ms: int) -> None:
    # Given a backlog and a trickle of jobs through a limiter, on the engine
    window = 10_000
    sim = Simulation(seed=2, backend="memory")
    sim.queue("q")
    sim.add_workers("q", count=8, limiter={"max": max_jobs, "duration": duration_ms})
    job = JobType("j", Deterministic(300))
    sim.add_backlog("q", job, 150)
    sim.add_arrivals("q", job, Poisson(2.0), until_ms=120_000)
    sim.add_backlog("q", job, 150, at_ms=61_234)
    sim.run(150_000)
    log = sim.event_log()
    starts = sorted(int(t) for t in log.loc[log["to"] == "active", "time_ms"])
    # Then no interval of `window` ms holds more starts than the worst case
    most, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - window:
            j += 1
        most = max(most, i - j + 1)
    assert most <= worst_case_calls(max_jobs, duration_ms, window)
    # and a limiter's own rate is what it lets through in a full window (the bound is not vacuous)
    assert most >= max_jobs * (window // duration_ms)


# --- loading the student's file -----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_missing_file_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="does not exist"):
        check(1, tmp_path / "nope.py")


def test_an_unknown_exercise_number_names_the_allowed_values() -> None:
    with pytest.raises(OptionError, match="must be one of 1, 2, 3, 4, 5, 6, 7, got 8"):
        get_exercise(8)


def test_a_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "def workers_needed(a, s, t):\n    return (a *\n")
    result = check(2, path)
    assert result.status == "error"
    assert "syntax error at line" in result.message
    assert "mine.py" in result.message


def test_a_missing_function_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "def workers(a, s, t):\n    return 3\n")
    result = check(2, path)
    assert result.status == "error"
    assert "defines no function workers_needed()" in result.message


def test_an_error_while_importing_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "import json\njson.loads('{')\n")
    result = check(3, path)
    assert result.status == "error"
    assert result.message.startswith("importing mine.py raised JSONDecodeError")


def test_a_function_that_raises_fails_that_check_with_the_exception(tmp_path: Path) -> None:
    # 1/(1 - p) breaks on the outage case p = 1; the other cases are still graded
    source = ("def attempts_per_second(lam, p, n):\n    return lam * (1 - p**n) / (1 - p)\n\n"
              "def utilisation(lam, s, p, n, c):\n    return attempts_per_second(lam, p, n) * s / c\n")
    path = write(tmp_path, "mine.py", source)
    result = check(3, path)
    assert result.status == "failed"
    broken = [line for line in result.lines if "ZeroDivisionError" in line.got]
    assert [line.label for line in broken] == ["attempts_per_second(0.5 jobs/s, p_fail 1, 4 attempts)",
                                               "utilisation(1 jobs/s, 2 s, p_fail 1, 3 attempts, 8 workers)"]
    assert sum(line.passed for line in result.lines) >= 7


def test_an_answer_of_the_wrong_type_fails_with_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "def workers_needed(a, s, t):\n    return 'five'\n")
    result = check(2, path)
    assert result.status == "failed"
    assert all("must return a number" in line.got for line in result.lines)
    path = write(tmp_path, "lim.py", "def choose_limiter(q, w):\n    return {'max': 1}\n")
    result = check(7, path)
    assert "missing: duration" in result.lines[0].got


def test_one_function_done_and_one_not_names_the_missing_one(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "def p_wait(a, s, c):\n    return 0.5\n\n"
                                      "def mean_wait_s(a, s, c):\n    raise NotImplementedError\n")
    result = check(1, path)
    assert result.status == "not-done"
    assert "fill in mean_wait_s()" in result.message


def test_a_backoff_beyond_the_cap_is_refused_before_the_run(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.py", "def retry_delay_ms(attempt, u):\n    return 10_000 * 2 ** attempt\n")
    result = check(5, path)
    assert result.status == "failed"
    assert len(result.lines) == 1
    assert "at most 300,000 ms" in result.lines[0].got


# --- the starter files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_each_starter_is_a_module_with_documented_functions_that_raise(number: int) -> None:
    ex = EXERCISES[number]
    tree = ast.parse(ex.starter_source())
    assert ast.get_docstring(tree)
    assert f"queuesim exercise check {number}" in ast.get_docstring(tree)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(functions) == set(ex.functions)
    for fn in functions.values():
        assert ast.get_docstring(fn)
        assert fn.returns is not None
        assert all(a.annotation is not None for a in fn.args.args)
        assert isinstance(fn.body[-1], ast.Raise)


# --- the command line ---------------------------------------------------------------------------------------------


def test_exercise_list_shows_every_exercise_and_its_misconception() -> None:
    result = cli("list")
    assert result.exit_code == 0
    text = flat(result.output)
    for n, ex in EXERCISES.items():
        assert f"│{n} │" in result.output or f"{n} " in text
        assert flat(ex.misconception)[:20] in text


def test_exercise_show_prints_the_task_and_the_prediction_question() -> None:
    result = cli("show", "4")
    assert result.exit_code == 0
    text = flat(result.output)
    ex = EXERCISES[4]
    assert ex.title in text
    assert "Predict, then run:" in text
    assert flat(ex.predict) in text
    assert flat(ex.task.split("\n\n")[0]) in text
    assert "queuesim exercise start 4" in text
    assert "ex4_priority_waits.py" in text


@pytest.mark.parametrize("args", [("show", "9"), ("start", "0"), ("check", "8", "x.py")])
def test_an_unknown_exercise_number_exits_with_2_and_the_allowed_values(args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert "must be one of 1, 2, 3, 4, 5, 6, 7" in flat(result.output)


def test_start_writes_the_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = cli("start", "3", "--dir", str(tmp_path))
    assert result.exit_code == 0
    target = tmp_path / "ex3_retry_load.py"
    assert target.read_text(encoding="utf-8") == EXERCISES[3].starter_source()
    assert "queuesim exercise check 3" in flat(result.output)
    target.write_text("# my work\n", encoding="utf-8")
    again = cli("start", "3", "--dir", str(tmp_path))
    assert again.exit_code == 1
    assert "--force" in flat(again.output)
    assert target.read_text(encoding="utf-8") == "# my work\n"
    forced = cli("start", "3", "--dir", str(tmp_path), "--force")
    assert forced.exit_code == 0
    assert target.read_text(encoding="utf-8") == EXERCISES[3].starter_source()


def test_start_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("start", "1", "--dir", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "is not a directory" in flat(result.output)


def test_check_exits_0_when_passed_and_1_with_the_hint_when_not() -> None:
    ok = cli("check", "3", str(CORRECT[3]))
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output
    assert "NOT PASSED" not in ok.output
    bad = cli("check", "3", str(SOLUTIONS / "ex3_wrong.py"))
    assert bad.exit_code == 1
    text = flat(bad.output)
    assert "NOT PASSED" in text
    assert "hint:" in text
    assert "Retries are extra load" in text


def test_check_of_the_starter_says_not_done_yet_and_a_missing_file_exits_with_2(tmp_path: Path) -> None:
    write_starter(6, tmp_path)
    result = cli("check", "6", str(tmp_path / "ex6_stalled_jobs.py"))
    assert result.exit_code == 1
    assert "not done yet: fill in worker_settings()" in flat(result.output)
    missing = cli("check", "6", str(tmp_path / "nope.py"))
    assert missing.exit_code == 2
    assert "does not exist" in flat(missing.output)


def test_the_exercise_group_has_help_for_each_command() -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("list", "show", "start", "check"):
        assert command in result.output
