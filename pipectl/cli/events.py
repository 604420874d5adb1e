"""pipectl events: sample events for `pipectl invoke`."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.ops import events as events_ops

events_app = typer.Typer(help="Print sample events for `pipectl invoke`, like "
                              "`sam local generate-event`.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")
