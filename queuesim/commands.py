"""The scenario commands of the ``queuesim`` command line: run, sweep, compare, verify, list, show, inspect.

They are registered on the Typer app of :mod:`queuesim.cli` by :func:`register`. Results go to standard output
(tables drawn with rich); progress bars and errors go to standard error. Bad input — a scenario file that does
not validate, an unknown option value, a bad ``--set`` — prints one clear message naming the file and the field
and exits with code 2; ``verify`` exits with code 1 when an exact value falls outside its interval.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from queuesim.errors import OptionError
from queuesim.report import format_ms

__all__ = ["register"]

out = Console(highlight=False, soft_wrap=False, width=160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="Override a field: path=value, e.g. horizon.duration_s=60 or jobs[0].priority=5 or "
                        "jobs.send-welcome-email.arrivals.rate_per_s=3 (repeatable).", show_default=False)]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Root seed (default: the scenario's).", min=0)]
RepsOption = Annotated[int | None, typer.Option("--reps", "-r", help="Replications (default: the scenario's).",
                                                min=1, max=10_000)]
BackendOption = Annotated[str | None, typer.Option(
    "--backend", "-b", help="fakeredis (the embedded Redis, Lua scripts) or memory (the same engine, faster). "
                            "Default: the scenario's.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


@contextmanager
def _bad_input() -> Iterator[None]:
    """Turn validation errors into one message and exit code 2."""
    try:
        yield
    except OptionError as exc:
        raise _fail(str(exc).replace("[", r"\[")) from None


def _check_backend(backend: str | None) -> str | None:
    if backend is not None and backend not in ("fakeredis", "memory"):
        raise _fail(f"--backend: must be one of fakeredis, memory, got {backend!r} (a real Redis cannot follow a "
                    "simulation's virtual clock)")
    return backend


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=30), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not enabled) as progress:
        yield progress


def _updater(progress: Progress, task: Any, scale: float = 100.0) -> Callable[[float], None]:
    def update(fraction: float) -> None:
        progress.update(task, completed=fraction * scale)

    return update


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return format_ms(value)
    if kind == "ratio":
        return f"{100 * value:.1f}%"
    if kind == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{value:,.3g}"


def _est(e: dict[str, Any] | None, kind: str) -> str:
    if not e or e.get("mean") is None:
        return "-"
    text = _fmt(e["mean"], kind)
    if e.get("half_width") is not None:
        text += f" ± {_fmt(e['half_width'], 'num' if kind == 'count' else kind)}"
    return text


ROWS = (("arrivals", "jobs", "count"), ("completed", "completed", "count"), ("dlq", "dead-lettered", "count"),
        ("failed", "failed", "count"), ("unfinished", "unfinished", "count"),
        ("mean_wait_ms", "mean wait", "ms"), ("mean_sojourn_ms", "mean time in system", "ms"),
        ("p50_sojourn_ms", "p50", "ms"), ("p99_sojourn_ms", "p99", "ms"), ("utilisation", "utilisation", "ratio"),
        ("mean_attempts", "attempts/job", "num"), ("stalls", "stalls", "count"))


def register(app: typer.Typer) -> None:
    """Add the scenario commands to ``app``."""

    @app.command("list")
    def list_() -> None:
        """List the built-in scenarios, one line each."""
        from queuesim.scenario import builtin_scenarios, load_scenario

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("scenario")
        table.add_column("title")
        table.add_column("horizon", justify="right")
        found = builtin_scenarios()
        if not found:
            raise _fail("no built-in scenarios found", 1)
        for name, path in found.items():
            try:
                s = load_scenario(path).scenario
            except OptionError as exc:
                table.add_row(name, f"[red]invalid: {exc}[/]", "")
                continue
            h = s.horizon
            horizon = f"{h.duration_s:g} s" if h.duration_s is not None else f"{h.jobs} jobs"
            table.add_row(name, s.title, horizon)
        out.print(table)
        out.print("\nRun one with: queuesim run <scenario>   Show its settings: queuesim show <scenario>")

    @app.command()
    def show(
        scenario: Annotated[str, typer.Argument(help="A .toml file or the name of a built-in scenario.")],
        set_: SetOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
    ) -> None:
        """Print a scenario's validated, fully resolved configuration.

        Every default is filled in and every --set applied; the output is TOML that `queuesim run` accepts."""
        from queuesim.scenario import dump_toml, load_scenario

        with _bad_input():
            loaded = load_scenario(scenario, set_ or [])
        if as_json:
            typer.echo(json.dumps(loaded.config, indent=2))
            return
        origin = loaded.file or scenario
        typer.echo(f"# {origin}: validated, defaults filled in; scenario hash {loaded.hash[:16]}")
        for item in loaded.overrides:
            typer.echo(f"# --set {item}")
        typer.echo(dump_toml(loaded.config), nl=False)

    @app.command()
    def run(
        scenario: Annotated[str, typer.Argument(help="A .toml file or the name of a built-in scenario "
                                                     "(queuesim list).")],
        seed: SeedOption = None,
        reps: RepsOption = None,
        backend: BackendOption = None,
        out_dir: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Output folder (default: out/<scenario name>).")] = None,
        set_: SetOption = None,
        charts: Annotated[bool, typer.Option(help="Draw the charts and write report.html.")] = True,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Run a scenario and write its tables, charts and report.

        Writes jobs.csv, events.csv, timeseries.csv, summary.json (metrics with 95% CIs, alerts, scenario hash,
        seed, versions), the charts as PNG and SVG, and a self-contained report.html into the output folder."""
        from queuesim.scenario import load_scenario, run_scenario, write_outputs

        _check_backend(backend)
        with _bad_input():
            loaded = load_scenario(scenario, set_ or [])
        s = loaded.scenario
        folder = out_dir or Path("out") / s.name
        started = time.monotonic()
        n = reps or s.replications
        with _progress(progress) as bar:
            task = bar.add_task(f"simulating {s.name} ({n} replication{'s' if n != 1 else ''})", total=100)
            with _bad_input():
                result = run_scenario(loaded, seed=seed, replications=reps, backend=backend,
                                      on_progress=_updater(bar, task))
            bar.update(task, completed=100)
            task2 = bar.add_task("writing tables, charts and report", total=100)
            files = write_outputs(result, folder, charts=charts, on_progress=_updater(bar, task2))
        elapsed = time.monotonic() - started
        _print_summary(result)
        out.print(f"\nwrote {len(files)} files to {folder}/ in {elapsed:.1f} s")
        if charts:
            out.print(f"report: {files['report']}")

    @app.command()
    def sweep(
        scenario: Annotated[str, typer.Argument(help="A .toml file or a built-in scenario name.")],
        param: Annotated[str, typer.Option(
            "--param", "-p", help="The field to vary and its values: path=v1,v2,... e.g. "
                                  "jobs[0].arrivals.rate_per_s=1,1.5,2")],
        seed: SeedOption = None,
        reps: RepsOption = None,
        backend: BackendOption = None,
        out_dir: Annotated[Path | None, typer.Option(
            "--out", "-o", help="Output folder (default: out/<scenario>-sweep).")] = None,
        set_: SetOption = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Run a scenario for each value of one field and chart latency against it.

        Every value runs with the same seeds (common random numbers). Writes sweep.csv, sweep.json and a chart of
        p50 / p99 / mean time in system and utilisation with 95% confidence bands, and the exact values where a
        closed form applies."""
        from queuesim.scenario.sweeps import run_sweep, write_sweep

        _check_backend(backend)
        if "=" not in param:
            raise _fail(f"--param: must look like path=v1,v2,..., got {param!r}")
        path, raw = param.split("=", 1)
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if len(values) < 2:
            raise _fail(f"--param: give at least two values separated by commas, got {raw!r}")
        with _progress(progress) as bar:
            task = bar.add_task(f"sweeping {path.strip()} over {len(values)} values", total=100)
            with _bad_input():
                result = run_sweep(scenario, path.strip(), values, overrides=set_ or [], seed=seed,
                                   replications=reps, backend=backend, on_progress=_updater(bar, task))
        folder = out_dir or Path("out") / f"{result.name}-sweep"
        files = write_sweep(result, folder)
        table = Table(title=f"sweep of {result.parameter} ({result.replications} replications per value, "
                            "95% CI)", header_style="bold")
        for col in ("value", "mean time in system", "p50", "p99", "utilisation", "exact mean"):
            table.add_column(col, justify="right")
        for row in result.rows:
            table.add_row(str(row["value"]), _est(row["mean_sojourn_ms"], "ms"), _est(row["p50_sojourn_ms"], "ms"),
                          _est(row["p99_sojourn_ms"], "ms"), _est(row["utilisation"], "ratio"),
                          format_ms(row["theory"].get("mean_sojourn_ms")) if row["theory"] else "-")
        out.print(table)
        out.print(f"\nwrote {', '.join(p.name for p in files.values())} to {folder}/")

    @app.command()
    def compare(
        scenarios: Annotated[list[str], typer.Argument(
            help="Two or more scenarios: files, built-in names, or NAME@path=value@path=value for a variant "
                 "(e.g. mmc-basics mmc-basics@queues[0].workers.count=4).")],
        seed: SeedOption = None,
        reps: Annotated[int, typer.Option("--reps", "-r", help="Replications of every variant.", min=2,
                                          max=10_000)] = 5,
        backend: BackendOption = None,
        out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Also write compare.json and a "
                                                                         "chart here.")] = None,
        set_: SetOption = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Compare variants run with the same seeds, with paired confidence intervals.

        Prints each metric of each variant with its 95% interval, and the paired difference from the first
        variant, whose interval is much narrower thanks to common random numbers."""
        from queuesim.scenario.sweeps import run_compare, write_compare

        _check_backend(backend)
        if len(scenarios) < 2:
            raise _fail("compare needs at least two scenarios or variants")
        with _progress(progress) as bar:
            task = bar.add_task(f"comparing {len(scenarios)} variants", total=100)
            with _bad_input():
                result = run_compare(scenarios, overrides=set_ or [], seed=seed, replications=reps,
                                     backend=backend, on_progress=_updater(bar, task))
        base = result.names[0]
        table = Table(title=f"{reps} replications per variant, common random numbers, 95% CI",
                      header_style="bold")
        table.add_column("metric")
        for i, name in enumerate(result.names, start=1):
            table.add_column(f"#{i} {name}" if len(name) <= 24 else f"#{i}", justify="right")
        labels = {n: f"#{i}" for i, n in enumerate(result.names, start=1)}
        if len(result.names) > 2 or max(len(n) for n in result.names) > 24:
            for n in result.names:
                out.print(f"{labels[n]} = {n}")
        for other in result.names[1:]:
            table.add_column(f"{labels[other]} - #1 (paired)", justify="right")
        for key, label, kind in ROWS:
            if key not in result.estimates[base]:
                continue
            cells = [_est(result.estimates[n].get(key), kind) for n in result.names]
            for other in result.names[1:]:
                cells.append(_est(result.differences[other].get(key), "num" if kind == "count" else kind))
            table.add_row(label, *cells)
        out.print(table)
        if result.crn_warning:
            err.print(f"[yellow]note:[/] {result.crn_warning}")
        if out_dir is not None:
            files = write_compare(result, out_dir)
            out.print(f"\nwrote {', '.join(p.name for p in files.values())} to {out_dir}/")

    @app.command()
    def verify(
        full: Annotated[bool, typer.Option("--full", help="The long version: 8x longer replications, 10 of "
                                                          "each (a minute or more).")] = False,
        seed: Annotated[int, typer.Option("--seed", help="Root seed.", min=0)] = 1,
        backend: Annotated[str, typer.Option("--backend", "-b", help="fakeredis or memory.")] = "memory",
        confidence: Annotated[float, typer.Option(help="Confidence level of the intervals.", min=0.5,
                                                  max=0.9999)] = 0.99,
        check: Annotated[list[str] | None, typer.Option("--check", help="Run only this check (repeatable): "
                                                                        "M/M/1, M/M/3, M/D/1, priorities, "
                                                                        "retries.")] = None,
        progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ) -> None:
        """Check the simulation against queueing theory (exact vs simulated ± CI).

        Simulates M/M/1, M/M/3, M/D/1, two priority classes and retries through the queue, and compares each
        metric with its closed form. Exit code 1 if an exact value lies outside its interval."""
        from queuesim.scenario.verify import CHECKS, run_checks

        _check_backend(backend)
        known = [c[0] for c in CHECKS]
        for c in check or []:
            if c not in known:
                raise _fail(f"--check: unknown check {c!r}; allowed: {', '.join(known)}")
        started = time.monotonic()
        with _progress(progress) as bar:
            tasks: dict[str, Any] = {}

            def on_progress(name: str, fraction: float) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"check {name}", total=100)
                bar.update(tasks[name], completed=100 * fraction)

            results = run_checks(full=full, seed=seed, backend=backend, confidence=confidence, only=check,
                                 on_progress=on_progress)
        table = Table(title=f"simulation vs exact values ({int(confidence * 100)}% CI over replications)",
                      header_style="bold")
        for col, justify in (("check", "left"), ("metric", "left"), ("exact", "right"),
                             ("simulated ± CI", "right"), ("error", "right"), ("", "left")):
            table.add_column(col, justify=justify)
        last = None
        for r in results:
            kind = "ms" if r.metric.startswith(("mean_wait_ms", "mean_sojourn_ms")) else "num"
            verdict = "[green]inside[/]" if r.ok else "[bold red]OUTSIDE[/]"
            table.add_row(r.check if r.check != last else "", r.metric, _fmt(r.exact, kind),
                          f"{_fmt(r.mean, kind)} ± {_fmt(r.half_width, kind)}", f"{100 * r.relative_error:+.1f}%",
                          verdict)
            last = r.check
        out.print(table)
        bad = [r for r in results if not r.ok]
        took = time.monotonic() - started
        if bad:
            out.print(f"\n[bold red]{len(bad)} of {len(results)} exact values outside their interval[/] "
                      f"({took:.1f} s)")
            raise typer.Exit(1)
        out.print(f"\nall {len(results)} exact values inside their {int(confidence * 100)}% intervals "
                  f"({took:.1f} s{'' if full else '; --full for the long version'})")

    @app.command()
    def inspect(
        url: Annotated[str, typer.Argument(help="Redis URL: redis://[:password@]host:port/db or rediss://…")],
        prefix: Annotated[str, typer.Option(help="Key prefix of the queues.")] = "bull",
        queue: Annotated[list[str] | None, typer.Option("--queue", "-q", help="Only this queue (repeatable).")
                         ] = None,
        jobs: Annotated[int, typer.Option("--jobs", "-n", help="Jobs listed per state.", min=0, max=1000)] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Look at a live Redis, read-only: queues, counts, jobs, dead-letter queues.

        Lists the queues under the prefix with their job counts per state, the first jobs of each state and the
        dead jobs of the dead-letter queues. Sends only read commands."""
        import redis

        from queuesim.inspection import inspect_redis

        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise _fail(f"URL: must start with redis://, rediss:// or unix://, got {url!r}")
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=3)
            views = inspect_redis(client, prefix=prefix, queues=queue, jobs_per_state=jobs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise _fail(f"cannot reach {url}: {exc}", 1) from None
        except ValueError as exc:
            raise _fail(f"URL: {exc}") from None
        if as_json:
            from dataclasses import asdict

            typer.echo(json.dumps([asdict(v) for v in views], indent=2))
            return
        if not views:
            out.print(f"no queues under prefix {prefix!r} at {url}")
            return
        counts = Table(title=f"queues at {url} (prefix {prefix})", header_style="bold")
        counts.add_column("queue")
        for col in ("waiting", "prioritized", "delayed", "active", "completed", "failed", "paused"):
            counts.add_column(col, justify="right")
        counts.add_column("dead-letter queue")
        for v in views:
            c = v.counts
            name = f"{v.name} [dim](DLQ)[/]" if v.is_dead_letter_queue else v.name
            counts.add_row(name, str(c["wait"] + c["paused"]), str(c["prioritized"]), str(c["delayed"]),
                           str(c["active"]), str(c["completed"]), str(c["failed"]), "yes" if v.paused else "",
                           v.dead_letter_queue or "")
        out.print(counts)
        for v in views:
            if not v.jobs:
                continue
            t = Table(title=f"{'dead jobs in ' if v.is_dead_letter_queue else 'jobs of '}{v.name} (first {jobs} "
                            "per state)", header_style="bold")
            for col in ("state", "id", "name", "priority", "attempts", "stalls", "created", "finished",
                        "reason / source"):
                t.add_column(col)
            for j in v.jobs:
                reason = j.failed_reason or ""
                if j.source:
                    reason = f"from {j.source}: {reason}"
                t.add_row(j.state, j.id, j.name or "", str(j.priority), str(j.attempts), str(j.stalled),
                          str(j.created_ms or ""), str(j.finished_ms or ""), reason[:80])
            out.print(t)


def _print_summary(result: Any) -> None:
    summ = result.summary
    metrics = summ["metrics"]
    title = (f"{result.scenario.name}: {summ['replications']} replication(s), seed {summ['seed']}, "
             f"backend {summ['backend']}" + (", 95% CI" if summ["replications"] > 1 else ""))
    table = Table(title=title, header_style="bold")
    table.add_column("job name")
    groups = [*metrics["by_name"].items(), ("[bold]all jobs[/]", metrics["overall"])]
    optional = ("failed", "unfinished", "stalls", "dlq")
    rows = [r for r in ROWS if r[0] not in optional
            or any((m.get(r[0]) or {}).get("mean") for _, m in groups)]
    for _, label, _ in rows:
        table.add_column(label, justify="right")
    for name, m in groups:
        table.add_row(name, *[_est(m.get(key), kind) for key, _, kind in rows])
    out.print(table)
    out.print("[dim]utilisation is per queue's worker slots, so it is shown for all jobs only[/]")
    th = summ.get("theory")
    if th:
        t = Table(title=f"theory: {th['model']} ({th['formula']})", header_style="bold")
        for col in ("metric", "exact", "simulated", "in the 95% CI?"):
            t.add_column(col, justify="right")
        for metric, c in th["checks"].items():
            kind = "ms" if metric.endswith("_ms") else ("ratio" if metric in ("utilisation", "p_wait") else "num")
            ok = "-" if c["inside_ci"] is None else ("[green]yes[/]" if c["inside_ci"] else "[red]no[/]")
            t.add_row(metric, _fmt(c["exact"], kind), _est(c, kind), ok)
        for name, checks in th.get("by_name", {}).items():
            for metric, c in checks.items():
                ok = "-" if c["inside_ci"] is None else ("[green]yes[/]" if c["inside_ci"] else "[red]no[/]")
                t.add_row(f"{metric} of {name}", _fmt(c["exact"], "ms"), _est(c, "ms"), ok)
        out.print(t)
    alerts = summ["alerts"]["summary"]
    if alerts:
        out.print("health alerts: " + "; ".join(f"{a['queue']}: {a['alert']} ({a['status']}, {a['checks']} "
                                                f"checks, from {format_ms(a['first_ms'])})" for a in alerts))
    else:
        out.print("health alerts: none")
    for w in summ["warnings"]:
        out.print(f"[yellow]note:[/] {w}")
