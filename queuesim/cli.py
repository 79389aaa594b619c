"""The ``queuesim`` command line.

Each sub-command is one function below; ``queuesim --help`` lists them.

* ``queuesim dashboard`` — serve the admin dashboard (web page + HTTP API) for the queues of a Redis, or for a
  live demo on the embedded server.
* ``queuesim run | sweep | compare | verify | list | show | inspect`` — scenario files, theory checks and a
  read-only look at a live Redis (:mod:`queuesim.commands`).
* ``queuesim exercise list | show | start | check`` — the classroom exercises (:mod:`queuesim.exercises.cli`).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

__all__ = ["app", "main"]

app = typer.Typer(help="queuesim: a faithful BullMQ engine in Python.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _root() -> None:
    """queuesim: a faithful BullMQ engine in Python."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def dashboard(
    redis_url: Annotated[str | None, typer.Option(
        "--redis", help="Redis URL (redis://[:password@]host:port/db).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="QUEUESIM_DASHBOARD_TOKEN", show_envvar=True,
        help="Admin token every API call must carry (required, 8+ characters). The environment variable keeps "
             "it out of the process list.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", help="Queue to watch (repeatable). Default: every queue found.")] = None,
    prefix: Annotated[str, typer.Option(help="Key prefix of the queues.")] = "bull",
    demo: Annotated[bool, typer.Option(
        "--demo", help="Run a small live demo (producers + workers) to watch; without --redis it runs on the "
                       "embedded server.")] = False,
) -> None:
    """Serve the admin dashboard: health, stats, jobs, retry / cancel / redrive / pause, in a web page."""
    import uvicorn

    from queuesim.connection import connect
    from queuesim.dashboard.app import create_app
    from queuesim.dashboard.demo import LiveDemo
    from queuesim.errors import OptionError

    if not token:
        typer.echo("error: an admin token is required: --token T or QUEUESIM_DASHBOARD_TOKEN=T "
                   "(there is no default token)", err=True)
        raise typer.Exit(2)
    if redis_url is None and not demo:
        typer.echo("error: give --redis URL to watch a Redis, or --demo to watch a live demo", err=True)
        raise typer.Exit(2)
    try:
        conn = connect(redis_url, prefix=prefix)
        live = LiveDemo(conn).start() if demo else None
        web = create_app(conn, queue or None, token=token)
    except OptionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not _is_loopback(host):
        typer.echo(f"warning: listening on {host}, not on loopback: the token travels in clear text over plain "
                   "HTTP; put a TLS proxy in front", err=True)
    shown = "localhost" if _is_loopback(host) else host
    typer.echo(f"queuesim dashboard on http://{shown}:{port}/  (open it and enter the token, or use "
               f"http://{shown}:{port}/#token=<your token>)")
    if os.environ.get("QUEUESIM_DASHBOARD_TOKEN") is None:
        typer.echo("tip: QUEUESIM_DASHBOARD_TOKEN=... keeps the token out of the process list", err=True)
    try:
        uvicorn.run(web, host=host, port=port, log_level="info")
    finally:
        if live is not None:
            live.stop()
        conn.close()


def _register_scenario_commands() -> None:
    from queuesim.commands import register

    register(app)


_register_scenario_commands()


def _register_exercise_commands() -> None:
    from queuesim.exercises.cli import register

    register(app)


_register_exercise_commands()


def main() -> None:
    """Entry point of the ``queuesim`` console script."""
    app()


if __name__ == "__main__":
    main()
