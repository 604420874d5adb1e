"""pipectl logs: a function's log events from CloudWatch Logs."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.cli.examples import FUNCTION_HELP, complete_functions
from pipectl.errors import ExitStatus
from pipectl.ops.log_lines import FORMAT_HELP, LogFormat, render, without_emf
from pipectl.ops.logs import LogEvent, LogTail
from pipectl.ops.results import parse_time

FOLLOW_SECONDS = 2.0
LOG_FORMAT = typer.Option(LogFormat.short, "--format", help=FORMAT_HELP)


def logs(
    ctx: typer.Context,
    function: str = typer.Argument("processor", help=FUNCTION_HELP,
                                   autocompletion=complete_functions),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events "
                                                              "until Ctrl-C"),
    since: str = typer.Option("10m", "--since", help="30s, 10m, 2h, 7d or an ISO time"),
    pattern: str | None = typer.Option(None, "--filter",
                                          help="a CloudWatch Logs filter pattern, e.g. ERROR"),
    fmt: LogFormat = LOG_FORMAT,
) -> None:
    """The function's log events from CloudWatch Logs (AWS or the emulator alike)."""
    app = context.get(ctx)
    start = parse_time(since, "--since")
    tail = LogTail(app.aws.client("logs"), app.names, function,
                   start_ms=int(start.timestamp() * 1000), pattern=pattern)
    first = tail.poll()
    if app.json and not follow:
        output.print_json([_as_json(e, fmt) for e in first])
        return
    _print_events(first, app.json, function, fmt)
    try:
        while follow:
            time.sleep(FOLLOW_SECONDS)
            _print_events(tail.poll(), app.json, function, fmt)
    except KeyboardInterrupt:
        # Ctrl-C is how --follow ends: what was printed stands, and the exit says 130
        # as every interrupted command does.
        raise typer.Exit(ExitStatus.INTERRUPTED) from None


def _print_events(found: list[LogEvent], as_json: bool, function: str,
                  fmt: LogFormat) -> None:
    for e in found:
        if as_json:
            sys.stdout.write(json.dumps(_as_json(e, fmt)) + "\n")
            continue
        # A message is the function's own text: its lines kept, anything else escaped.
        line = render(function, e.message.rstrip("\n"), fmt, e.timestamp)
        if fmt is LogFormat.raw:  # as logged, after the time CloudWatch holds it at
            line = f"{e.time} {line}"
        if line is not None:
            sys.stdout.write(output.plain(line, newlines=True) + "\n")
    sys.stdout.flush()


def _as_json(e: LogEvent, fmt: LogFormat) -> dict:
    """The event as JSON; its message without the EMF blob unless --format raw asks."""
    found = asdict(e)
    if fmt is not LogFormat.raw:
        found["message"] = without_emf(e.message)
    return found


def register(app: typer.Typer) -> None:
    app.command()(logs)
