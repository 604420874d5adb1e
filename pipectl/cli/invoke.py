"""pipectl logs / trace / invoke / events: look inside the functions and follow one file."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.cli.examples import FUNCTION_HELP, complete_functions
from pipectl.errors import ExitStatus
from pipectl.ops import events as events_ops
from pipectl.ops.invoke import invoke_local, read_event
from pipectl.ops.logs import LogEvent, LogTail, check_function
from pipectl.ops.results import parse_time
from pipectl.ops.trace import Trace
from pipectl.ops.trace import trace as trace_key

FOLLOW_SECONDS = 2.0

events_app = typer.Typer(help="Print sample events for `pipectl invoke`, like "
                              "`sam local generate-event`.", no_args_is_help=True)


def logs(
    ctx: typer.Context,
    function: str = typer.Argument("processor", help=FUNCTION_HELP,
                                   autocompletion=complete_functions),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events "
                                                              "until Ctrl-C"),
    since: str = typer.Option("10m", "--since", help="30s, 10m, 2h, 7d or an ISO time"),
    pattern: str | None = typer.Option(None, "--filter",
                                          help="a CloudWatch Logs filter pattern, e.g. ERROR"),
) -> None:
    """The function's log events from CloudWatch Logs (AWS or the emulator alike)."""
    app = context.get(ctx)
    start = parse_time(since, "--since")
    tail = LogTail(app.aws.client("logs"), app.names, function,
                   start_ms=int(start.timestamp() * 1000), pattern=pattern)
    first = tail.poll()
    if app.json and not follow:
        output.print_json(first)
        return
    _print_events(first, app.json)
    try:
        while follow:
            time.sleep(FOLLOW_SECONDS)
            _print_events(tail.poll(), app.json)
    except KeyboardInterrupt:
        # Ctrl-C is how --follow ends: what was printed stands, and the exit says 130
        # as every interrupted command does.
        raise typer.Exit(ExitStatus.INTERRUPTED) from None


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


@events_app.command("s3-put")
def s3_put(
    ctx: typer.Context,
    key: str = typer.Option(..., "--key", help="the object key, e.g. incoming/orders.csv"),
    bucket: str | None = typer.Option(None, "--bucket",
                                         help="default: the raw bucket (needs the account)"),
    size: int = typer.Option(1024, "--size", min=0, help="object size in bytes"),
    etag: str | None = typer.Option(None, "--etag", help="default: a sample ETag"),
    sqs: bool = typer.Option(False, "--sqs", help="wrapped in the SQS message the processor "
                                                  "receives"),
) -> None:
    """An S3 ObjectCreated:Put notification, the key URL-encoded as S3 encodes it."""
    app = context.get(ctx)
    region = app.aws.region
    event = events_ops.s3_put(bucket or app.names.bucket("raw"), key, size=size, etag=etag,
                              region=region)
    if sqs:
        event = events_ops.sqs_wrap(event, app.names.queue_arn(app.names.queue), region)
    output.print_json(event)


def render_trace(found: Trace) -> None:
    output.show(output.table(found.key, ("stage", "found", "time (UTC)", "detail"), [
        (s.stage, "yes" if s.found else "no", output.human_time(s.at), s.detail)
        for s in found.stages]))


def _print_events(found: list[LogEvent], as_json: bool) -> None:
    for e in found:
        # A message is the function's own text: its lines kept, anything else escaped.
        line = (json.dumps(asdict(e)) if as_json else
                f"{e.time} {output.plain(e.message.rstrip(chr(10)), newlines=True)}")
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(logs)
    app.command()(trace)
    app.command()(invoke)
    app.add_typer(events_app, name="events")
