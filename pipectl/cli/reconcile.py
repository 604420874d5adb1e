"""pipectl reconcile: the results table checked against the buckets."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.errors import ExitStatus
from pipectl.ops import reconcile as reconcile_ops
from pipectl.ops import results as results_ops


def reconcile(
    ctx: typer.Context,
    stuck_after: str = typer.Option("15m", "--stuck-after",
                                    help="a file in incoming/ older than this needs a row"),
) -> None:
    """Check that every PROCESSED row's output exists as written, every original in
    completed/ has a row, and nothing waits in incoming/ past --stuck-after without one.
    Prints each difference; exit 1 when there are any."""
    app = context.get(ctx)
    stuck = results_ops.parse_duration(stuck_after, "--stuck-after")
    report = reconcile_ops.reconcile(app.aws, app.names, stuck_after=stuck)
    if app.json:
        output.print_json({**vars(report), "consistent": report.consistent})
    elif report.differences:
        output.stdout.print(output.table("differences", ("problem", "key", "detail"), [
            (d.problem, d.key, d.detail) for d in report.differences]))
    output.info(f"checked {report.rows:,} rows ({report.outputs:,} outputs), "
                f"{report.completed:,} originals in completed/, {report.incoming:,} files in "
                f"incoming/ in {report.seconds:g} s: {len(report.differences):,} "
                "difference(s)")
    if report.differences:
        raise typer.Exit(ExitStatus.FAILURE)


def register(app: typer.Typer) -> None:
    app.command()(reconcile)
