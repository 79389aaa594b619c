"""The machinery every exercise shares: what an exercise is, loading a student's file, and the check result.

An exercise targets one misconception about job queues. The student gets a *starter* file (a Python module with
one or two documented functions that raise ``NotImplementedError``), fills the functions in, and runs the
checker. The checker

1. loads the file by path (it is the student's own code, run like any script they would run themselves);
2. calls the functions on several cases and compares the answers with queueing theory
   (:mod:`queuesim.theory`) and with the real engine driven in virtual time (:mod:`queuesim.sim`);
3. returns a :class:`CheckResult`: one :class:`Line` per check, with what was expected, what the student's code
   gave, and — for a failed check — a hint that names the misconception.

Nothing the student's code returns is ever evaluated as code: answers are numbers and small dictionaries,
checked for their type before use.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from queuesim.errors import OptionError

__all__ = [
    "STATUSES",
    "near_simulation",
    "CheckResult",
    "Exercise",
    "Line",
    "LoadError",
    "NotDone",
    "Solution",
    "StudentError",
    "close",
    "fmt",
    "load_solution",
    "run_check",
]

#: What a check can end with.
STATUSES = ("passed", "failed", "not-done", "error")

_counter = itertools.count(1)


class NotDone(Exception):
    """A function of the student's file still raises ``NotImplementedError``."""

    def __init__(self, function: str) -> None:
        self.function = function
        super().__init__(function)


class StudentError(Exception):
    """The student's code raised an exception (other than ``NotImplementedError``) or returned something unusable."""


class LoadError(Exception):
    """The student's file cannot be loaded: a syntax error, an error while importing it, a missing function."""


@dataclass(frozen=True, slots=True)
class Line:
    """One check.

    Attributes:
        label: what was checked, e.g. ``p_wait(3.6 jobs/s, 1 s, 4 workers)``.
        passed: whether the student's answer is right.
        expected: the right answer (or the condition it must meet), as text.
        got: what the student's code gave (or what the engine measured with it).
        hint: what to think about when the check failed (names the misconception).
        kind: ``theory`` (compared with a formula), ``simulation`` (compared with a simulation of the engine in
            virtual time) or ``answer`` (the shape of the answer: type, range).
    """

    label: str
    passed: bool
    expected: str
    got: str
    hint: str = ""
    kind: str = "theory"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of checking one file against one exercise.

    Attributes:
        exercise: the exercise number.
        status: ``passed`` (every line passed), ``failed`` (at least one did not), ``not-done`` (a function
            still raises ``NotImplementedError``) or ``error`` (the file could not be loaded or run).
        lines: the checks, in order.
        message: for ``not-done`` and ``error``: what to do.
        seconds: how long the check took (wall clock).
    """

    exercise: int
    status: str
    lines: tuple[Line, ...] = ()
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def hints(self) -> list[str]:
        """The hints of the failed lines, each once, in order."""
        seen: list[str] = []
        for line in self.lines:
            if not line.passed and line.hint and line.hint not in seen:
                seen.append(line.hint)
        return seen

    def text(self) -> str:
        """The result as plain text (the command line draws the same with colours)."""
        out = [f"exercise {self.exercise}: {self.status}"]
        if self.message:
            out.append(self.message)
        for line in self.lines:
            mark = "ok  " if line.passed else "FAIL"
            out.append(f"{mark} [{line.kind}] {line.label}: expected {line.expected}; got {line.got}")
        out.extend(f"hint: {hint}" for hint in self.hints)
        return "\n".join(out)


class Solution:
    """The student's loaded module, with calls that turn their exceptions into clear messages.

    Args:
        module: the loaded module.
        path: the file it came from.
    """

    def __init__(self, module: ModuleType, path: Path) -> None:
        self.module = module
        self.path = path

    def function(self, name: str) -> Callable[..., Any]:
        fn = getattr(self.module, name, None)
        if not callable(fn):
            raise LoadError(f"{self.path.name} defines no function {name}(); keep the name from the starter")
        return fn

    def call(self, name: str, *args: Any) -> Any:
        """Call the student's function ``name``.

        Raises:
            NotDone: it raises ``NotImplementedError`` (not written yet).
            StudentError: it raises anything else (the message names the call and the exception).
        """
        fn = self.function(name)
        try:
            return fn(*args)
        except NotImplementedError:
            raise NotDone(name) from None
        except Exception as exc:  # the student's code may raise anything; report it, do not crash
            shown = ", ".join(repr(a) for a in args)
            raise StudentError(f"{name}({shown}) raised {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Exercise:
    """One classroom exercise.

    Attributes:
        number: its number (1, 2, …), used on the command line.
        slug: a short name (``erlang-c``).
        title: one line.
        misconception: the belief the exercise is built to correct, in the words a student would use.
        task: what to do (plain text, several paragraphs).
        predict: the "predict, then run" question: what to guess before writing code and running the check.
        starter: the starter's file name (in ``queuesim/exercises/starters/``).
        functions: the functions the student fills in.
        check: ``check(solution) -> lines``; may raise :class:`NotDone` (a function is not written yet).
        runs: what the check runs on the engine (shown by ``queuesim exercise show``).
    """

    number: int
    slug: str
    title: str
    misconception: str
    task: str
    predict: str
    starter: str
    functions: tuple[str, ...]
    check: Callable[[Solution], list[Line]] = field(repr=False, compare=False)
    runs: str = ""

    def starter_source(self) -> str:
        """The text of the starter file."""
        return resources.files("queuesim.exercises").joinpath("starters", self.starter).read_text(encoding="utf-8")


def load_solution(path: str | Path, functions: tuple[str, ...] = ()) -> Solution:
    """Load the student's file as a module (by path, whatever its name) and check that it defines ``functions``.

    Raises:
        OptionError: the file does not exist or is not a file (a usage error).
        LoadError: it has a syntax error, raises while being imported, or lacks one of ``functions``.
    """
    p = Path(path)
    if not p.exists():
        raise OptionError("file", f"{p} does not exist; write the starter file with `queuesim exercise start N` "
                                  "and fill it in")
    if not p.is_file():
        raise OptionError("file", f"{p} is not a file; give the path of your .py file")
    name = f"queuesim_exercise_solution_{next(_counter)}"
    loader = importlib.machinery.SourceFileLoader(name, str(p))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(p)
    sys.modules[name] = module  # dataclasses and typing look a class's module up while it is being defined
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "somewhere"
        text = f": {exc.text.strip()}" if exc.text else ""
        raise LoadError(f"{p.name} has a syntax error at {where} ({exc.msg}){text}") from None
    except UnicodeDecodeError as exc:
        raise LoadError(f"{p.name} is not UTF-8 text: {exc}") from None
    except Exception as exc:  # the student's module may raise anything while it is imported
        raise LoadError(f"importing {p.name} raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    solution = Solution(module, p)
    for fn in functions:
        solution.function(fn)
    return solution


def run_check(exercise: Exercise, path: str | Path) -> CheckResult:
    """Load ``path`` and run ``exercise``'s check on it.

    Raises:
        OptionError: the file does not exist (usage error); everything else becomes the result's status.
    """
    start = time.perf_counter()

    def done(status: str, lines: list[Line] | tuple[Line, ...] = (), message: str = "") -> CheckResult:
        return CheckResult(exercise.number, status, tuple(lines), message, time.perf_counter() - start)

    try:
        solution = load_solution(path, exercise.functions)
    except LoadError as exc:
        return done("error", message=str(exc))
    try:
        lines = exercise.check(solution)
    except NotDone as exc:
        return done("not-done", message=f"not done yet: fill in {exc.function}() in {Path(path).name} (it still "
                                        "raises NotImplementedError)")
    except StudentError as exc:
        return done("error", message=str(exc))
    return done("passed" if lines and all(line.passed for line in lines) else "failed", lines)


# --- helpers for the checks -------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``1.969``, ``0.7878``, ``12``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def close(got: float, expected: float, rel: float = 0.01, abs_tol: float = 1e-9) -> bool:
    """Whether ``got`` is within ``rel`` (relative) of ``expected``, or within ``abs_tol`` of it."""
    return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol)


def number(value: Any, what: str) -> float:
    """The student's answer as a float; a :class:`StudentError` naming ``what`` when it is not a finite number."""
    if isinstance(value, bool) or (not isinstance(value, int | float) and not hasattr(value, "__float__")):
        raise StudentError(f"{what} must return a number, got {type(value).__name__} {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise StudentError(f"{what} must return a number, got {type(value).__name__} {value!r}") from None
    if not math.isfinite(result):
        raise StudentError(f"{what} must return a finite number, got {value!r}")
    return result


def whole(value: Any, what: str, minimum: int = 0) -> int:
    """The student's answer as an int (an integral float is accepted); a :class:`StudentError` otherwise."""
    f = number(value, what)
    if f != int(f):
        raise StudentError(f"{what} must return a whole number, got {value!r}")
    if f < minimum:
        raise StudentError(f"{what} must return a whole number >= {minimum}, got {value!r}")
    return int(f)


def settings(value: Any, what: str, keys: tuple[str, ...]) -> dict[str, int]:
    """The student's answer as a dict of whole numbers with exactly ``keys``."""
    if not isinstance(value, Mapping):
        raise StudentError(f"{what} must return a dict with keys {', '.join(keys)}; got {type(value).__name__} "
                           f"{value!r}")
    missing = [k for k in keys if k not in value]
    extra = [str(k) for k in value if k not in keys]
    if missing or extra:
        raise StudentError(f"{what} must return a dict with exactly the keys {', '.join(keys)}; "
                           f"missing: {', '.join(missing) or '-'}; unknown: {', '.join(extra) or '-'}")
    return {k: whole(value[k], f"{what}[{k!r}]") for k in keys}


def near_simulation(label: str, got: float, mean: float, half_width: float, slack: float, hint: str,
                    unit: str = "") -> Line:
    """A line comparing a student's prediction with a simulated estimate: right when it is inside the confidence
    interval widened by ``slack`` (a share of the estimate: the formula the student uses is exact only in the
    long run, and a finite simulation carries its own error)."""
    ok = abs(got - mean) <= half_width + slack * abs(mean)
    return Line(label, ok, f"near the simulation: {fmt(mean)} ± {fmt(half_width, 2)}{unit}",
                f"your prediction {fmt(got)}{unit}", hint, "simulation")


def answer_line(label: str, error: StudentError, hint: str = "") -> Line:
    """A failed line for a call that raised or returned something unusable."""
    return Line(label, False, "an answer", str(error), hint, "answer")
