"""pipectl status / results: what the pipeline is doing, from the queues and the results table."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.errors import ExitStatus
from pipectl.ops import results as results_ops
from pipectl.ops.status import PipelineStatus, pipeline_status

_COLUMNS = ("key", "status", "records in", "records out", "dropped", "output / error", "updated")


def status(ctx: typer.Context) -> None:
    """The pipeline at a glance: buckets, queue and DLQ depth, results by status, failures."""
    app = context.get(ctx)
    report = pipeline_status(app.aws, app.names)
    if app.json:
        output.print_json(report)
    else:
        render_status(report)
    if not report.healthy:
        raise typer.Exit(ExitStatus.FAILURE)


def results(
    ctx: typer.Context,
    key: str | None = typer.Argument(None, help="one object key, shown in full"),
    status_filter: str | None = typer.Option(None, "--status", "-s",
                                                help="PROCESSING, PROCESSED, FAILED or ARCHIVED"),
    since: str | None = typer.Option(None, "--since", help="30m, 2h, 7d or an ISO time"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="rows at most"),
) -> None:
    """Rows of the results table, newest first, or one key in full."""
    app = context.get(ctx)
    ddb = app.aws.client("dynamodb")
    if key is not None:
        row = results_ops.get_result(ddb, app.names, key)
        if app.json:
            output.print_json(row)
        else:
            output.stdout.print(output.table(None, ("field", "value"), vars(row).items()))
        return
    rows = results_ops.list_results(
        ddb, app.names, status=results_ops.check_status(status_filter),
        since=results_ops.parse_since(since) if since else None, limit=limit)
    if app.json:
        output.print_json(rows)
    else:
        render_results(rows)


def render_results(rows: list[results_ops.ResultRow]) -> None:
    if not rows:
        output.info("no results")
        return
    output.stdout.print(output.table(None, _COLUMNS, [
        (r.key, r.status, r.records_in, r.records_out, r.dropped_values,
         r.error if r.status == "FAILED" else r.output, r.updated_at) for r in rows]))


def render_status(s: PipelineStatus) -> None:
    def depth(d: dict[str, int] | None) -> str:
        if d is None:
            return "not deployed"
        return f"{d['visible']} waiting, {d['in_flight']} in flight"

    counts = ", ".join(f"{k.lower()} {v}" for k, v in s.results.items()) or "no table"
    output.stdout.print(output.table(f"pipeline on {s.target}", ("", ""), [
        *((f"{role} bucket", name) for role, name in s.buckets.items()),
        ("processing queue", depth(s.queue)),
        ("dead-letter queue", depth(s.dlq)),
        ("results", counts),
    ]))
    if s.recent_failures:
        output.stdout.print(output.table("recent failures", ("key", "error", "when"), [
            (r.key, r.error, r.updated_at) for r in s.recent_failures]))
    for missing in s.missing:
        output.warn(f"{missing} does not exist (run `pipectl deploy`)")


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(results)
