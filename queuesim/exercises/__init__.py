"""Classroom exercises: predict how a job queue behaves, write it down as code, and let the engine check it.

Each exercise targets one common misconception about job queues (utilisation, capacity, retries, priorities,
backoff, stalled jobs, rate limits). The student writes a small Python file from a starter, and the checker
grades it against queueing theory and against the real engine run in virtual time, with a hint that names the
misconception when a check fails. From the command line::

    queuesim exercise list
    queuesim exercise show 1
    queuesim exercise start 1            # writes ex1_erlang_c.py here
    queuesim exercise check 1 ex1_erlang_c.py

From Python::

    from queuesim.exercises import check
    result = check(1, "ex1_erlang_c.py")
    result.passed, result.lines, result.hints

See ``docs/exercises.md``.
"""

from __future__ import annotations

from pathlib import Path

from queuesim.errors import OptionError
from queuesim.exercises import capacity, erlang_c, priorities, rate_limit, retries, retry_storm, stalled
from queuesim.exercises.base import CheckResult, Exercise, Line, run_check

__all__ = ["EXERCISES", "CheckResult", "Exercise", "Line", "check", "get_exercise", "write_starter"]

#: Every exercise, by number.
EXERCISES: dict[int, Exercise] = {ex.number: ex for ex in (
    erlang_c.EXERCISE,
    capacity.EXERCISE,
    retries.EXERCISE,
    priorities.EXERCISE,
    retry_storm.EXERCISE,
    stalled.EXERCISE,
    rate_limit.EXERCISE,
)}


def get_exercise(number: int) -> Exercise:
    """The exercise ``number``; an :class:`~queuesim.errors.OptionError` naming the allowed numbers otherwise."""
    ex = EXERCISES.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
    if ex is None:
        allowed = ", ".join(str(n) for n in sorted(EXERCISES))
        raise OptionError("exercise", f"must be one of {allowed}, got {number!r}")
    return ex


def check(number: int, path: str | Path) -> CheckResult:
    """Check the student's file ``path`` against exercise ``number``.

    Raises:
        OptionError: unknown exercise number, or the file does not exist.
    """
    return run_check(get_exercise(number), path)


def write_starter(number: int, directory: str | Path = ".", *, force: bool = False) -> Path:
    """Write the starter file of exercise ``number`` into ``directory``; returns its path.

    Raises:
        OptionError: unknown exercise number, the directory does not exist, or the file exists already and
            ``force`` is False.
    """
    ex = get_exercise(number)
    folder = Path(directory)
    if not folder.is_dir():
        raise OptionError("dir", f"{folder} is not a directory")
    target = folder / ex.starter
    if target.exists() and not force:
        raise OptionError("file", f"{target} exists already; not overwriting it (use --force to replace it "
                                  "with a fresh starter)")
    target.write_text(ex.starter_source(), encoding="utf-8")
    return target
