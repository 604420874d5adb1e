"""pipectl trace: follow one file through the pipeline, stage by stage."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.errors import ExitStatus
from pipectl.ops.trace import Trace
from pipectl.ops.trace import trace as trace_key


def trace(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="the uploaded key, e.g. incoming/orders.csv"),
) -> None:
    """Follow one file through the pipeline: incoming/, result row, output, completed/ or
    failed/, archive, dead-letter queue. Exit 1 when it is nowhere."""
    app = context.get(ctx)
    found = trace_key(app.aws, app.names, key)
    if app.json:
        output.print_json({"key": found.key, "found": found.found, "stages": found.stages})
    else:
        render_trace(found)
    if not found.found:
        output.error(f"{found.key} was not found at any stage")
        raise typer.Exit(ExitStatus.FAILURE)


def render_trace(found: Trace) -> None:
    output.show(output.table(found.key, ("stage", "found", "time (UTC)", "detail"), [
        (s.stage, "yes" if s.found else "no", output.human_time(s.at), s.detail)
        for s in found.stages]))


def register(app: typer.Typer) -> None:
    app.command()(trace)
