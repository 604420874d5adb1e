"""pipectl invoke: run a function's handler once on this machine, with an event."""

from __future__ import annotations

from pathlib import Path

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.cli.examples import FUNCTION_HELP, complete_functions
from pipectl.ops.invoke import invoke_local, read_event
from pipectl.ops.logs import check_function


def invoke(
    ctx: typer.Context,
    function: str = typer.Argument(..., help=FUNCTION_HELP, autocompletion=complete_functions),
    event: Path = typer.Option(..., "--event", "-e", help="the event, a JSON file "
                                                          "(see `pipectl events`)"),
) -> None:
    """Run the function's handler once on this machine, with its deployed environment:
    its result to stdout, its logs to stderr; exit 1 when it raises."""
    app = context.get(ctx)
    payload = read_event(event)
    check_function(function)
    result = invoke_local(app.aws, app.config, app.names, function, payload,
                          on_log=lambda line: output.stderr.out(output.plain(line),
                                                                highlight=False))
    output.print_json(result)


def register(app: typer.Typer) -> None:
    app.command()(invoke)
