"""The ``queuesim exercise`` commands: list, show, start and check the classroom exercises.

They are registered on the Typer app of :mod:`queuesim.cli` by :func:`register`. Exit codes: 0 when the command
did what was asked (for ``check``: every check passed), 1 when a check did not pass (or ``start`` would
overwrite a file), 2 for usage errors (an unknown exercise number, a file that does not exist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from queuesim.errors import OptionError
from queuesim.exercises.base import Exercise

__all__ = ["register"]

out = Console(highlight=False, soft_wrap=False, width=120)
err = Console(stderr=True, highlight=False)

exercise_app = typer.Typer(
    help="Classroom exercises: predict how a queue behaves, write it as code, let the engine check it.",
    no_args_is_help=True, add_completion=False)

NumberArg = Annotated[int, typer.Argument(help="The exercise number (see `queuesim exercise list`).",
                                          show_default=False)]

_STATUS = {"passed": "[bold green]PASSED[/]", "failed": "[bold red]NOT PASSED[/]",
           "not-done": "[bold yellow]NOT DONE YET[/]", "error": "[bold red]ERROR[/]"}


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _exercise(number: int) -> Exercise:
    from queuesim.exercises import get_exercise

    try:
        return get_exercise(number)
    except OptionError as exc:
        raise _fail(str(exc)) from None


@exercise_app.command("list")
def list_exercises() -> None:
    """The exercises, one line each, with the misconception each one targets."""
    from queuesim.exercises import EXERCISES

    table = Table(show_lines=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("exercise")
    table.add_column("misconception it targets")
    for number, ex in sorted(EXERCISES.items()):
        table.add_row(str(number), escape(ex.title), escape(ex.misconception))
    out.print(table)
    out.print("Next: queuesim exercise show N, then queuesim exercise start N.")


@exercise_app.command("show")
def show(number: NumberArg) -> None:
    """The task of exercise NUMBER and its "predict, then run" question."""
    ex = _exercise(number)
    out.print(f"[bold]Exercise {ex.number}: {escape(ex.title)}[/]")
    out.print(f"[italic]Misconception:[/] {escape(ex.misconception)}\n")
    for paragraph in ex.task.split("\n\n"):
        out.print(escape(paragraph))
        out.print()
    out.print("[bold]Predict, then run:[/]", escape(ex.predict))
    out.print()
    if ex.runs:
        out.print(f"[bold]The check runs:[/] {escape(ex.runs)}")
    functions = ", ".join(f"{name}()" for name in ex.functions)
    out.print(f"[bold]Start:[/] queuesim exercise start {ex.number}   (writes {ex.starter}; fill in {functions})")
    out.print(f"[bold]Check:[/] queuesim exercise check {ex.number} {ex.starter}")


@exercise_app.command("start")
def start(
    number: NumberArg,
    directory: Annotated[Path, typer.Option("--dir", "-d", help="Where to write the starter file.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the starter file of exercise NUMBER (refuses to overwrite an existing file without --force)."""
    from queuesim.exercises import write_starter

    ex = _exercise(number)
    if not directory.is_dir():
        raise _fail(f"--dir: {directory} is not a directory")
    target = directory / ex.starter
    if target.exists() and not force:
        raise _fail(f"{target} exists already; not overwriting it (your work may be in it). Use --force to "
                    "replace it with a fresh starter.", code=1)
    written = write_starter(number, directory, force=True)
    functions = ", ".join(f"{name}()" for name in ex.functions)
    out.print(f"wrote {escape(str(written))}: fill in {functions}, then run")
    out.print(f"  queuesim exercise check {ex.number} {escape(str(written))}")


@exercise_app.command("check")
def check(
    number: NumberArg,
    file: Annotated[Path, typer.Argument(help="Your solution: the starter file, filled in.", show_default=False)],
) -> None:
    """Check FILE against exercise NUMBER: queueing theory and the engine in virtual time.

    Exit code 0 when every check passed, 1 when one did not (or a function is not written yet), 2 for a usage
    error (an unknown exercise number, a missing file)."""
    from queuesim.exercises import check as run_check

    ex = _exercise(number)
    if not file.is_file():
        raise _fail(f"FILE: {file} does not exist or is not a file; write the starter with `queuesim exercise "
                    f"start {ex.number}` and fill it in")
    if ex.runs:
        err.print(f"checking {escape(str(file))} against exercise {ex.number} (runs {escape(ex.runs)}) ...")
    try:
        result = run_check(ex.number, file)
    except OptionError as exc:
        raise _fail(str(exc)) from None
    out.print(f"[bold]Exercise {ex.number}: {escape(ex.title)}[/]")
    if result.message:
        out.print(escape(result.message))
    if result.lines:
        table = Table(pad_edge=False, show_lines=False)
        table.add_column("")
        table.add_column("check")
        table.add_column("expected")
        table.add_column("got")
        for line in result.lines:
            mark = "[green]ok[/]" if line.passed else "[red]FAIL[/]"
            kind = "[dim](sim)[/] " if line.kind == "simulation" else ""
            table.add_row(mark, kind + escape(line.label), escape(line.expected), escape(line.got))
        out.print(table)
    for hint in result.hints:
        out.print(f"[bold yellow]hint:[/] {escape(hint)}")
    passed = sum(1 for line in result.lines if line.passed)
    counts = f" ({passed}/{len(result.lines)} checks)" if result.lines else ""
    out.print(f"{_STATUS[result.status]}{counts} in {result.seconds:.1f} s")
    if result.passed:
        out.print("Now compare the simulated values with the prediction you wrote down before you started.")
    raise typer.Exit(0 if result.passed else 1)


def register(app: typer.Typer) -> None:
    """Add the ``exercise`` command group to ``app``."""
    app.add_typer(exercise_app, name="exercise")
