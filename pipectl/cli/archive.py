"""pipectl archive: move old processed output to the archive bucket now, or show what would."""

from __future__ import annotations

import contextlib

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipectl import output
from pipectl.cli import context
from pipectl.cli.deploy import confirm
from pipectl.errors import ExitStatus, UsageError
from pipectl.ops import archive as ops
from pipectl.ops import lifecycle as lifecycle_ops
from pipectl.ops.archive import ArchiveRun
from pipectl.ops.lifecycle import LifecycleReport

PLAIN_EVERY = 100  # off a terminal, one progress line per this many objects


def archive(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would move, move nothing"),
    older_than: str | None = typer.Option(None, "--older-than", metavar="AGE",
                                             help="archive output older than this, e.g. 30d "
                                                  "or 12h [default: archiver.retention_days]"),
    remote: bool = typer.Option(False, "--remote", help="invoke the deployed archiver function "
                                                        "instead of running it here"),
    yes: bool = typer.Option(False, "--yes", "-y", help="move without asking"),
    lifecycle: bool = typer.Option(False, "--lifecycle", help="list when the archive bucket's "
                                                              "lifecycle transitions and expires "
                                                              "each object"),
) -> None:
    """Run the archiver now: verified copy to the archive bucket, then delete the original."""
    app = context.get(ctx)
    if lifecycle:
        if dry_run or remote or older_than:
            raise UsageError("--lifecycle only lists; it takes no --dry-run, --older-than "
                             "or --remote")
        report = lifecycle_ops.lifecycle(app.aws, app.names)
        output.print_json(report) if app.json else render_lifecycle(report)
        return
    event = ops.request(older_than, dry_run=True)
    plan = None
    if dry_run or not yes:
        # Plan, ask, then progress: no bar while planning, or it would draw over the question.
        plan = ops.Runner(app.aws, app.config, app.names, remote=remote).run(event)
        if dry_run:
            output.print_json(plan.as_data()) if app.json else render_plan(plan)
            return
        if not app.json:
            render_plan(plan)
        if not plan.to_move:
            output.info("nothing to archive")
            if app.json:
                output.print_json(plan.as_data())
            return
        confirm(f"Move {plan.to_move} objects ({output.human_bytes(plan.bytes_to_move)}) "
                f"to {plan.archive_bucket} as {plan.storage_class}?", yes)
    with _progress(app.json) as on_progress:
        runner = ops.Runner(app.aws, app.config, app.names, remote=remote,
                            on_progress=on_progress)
        # The plan's clock again, so the run moves what the plan showed (and what has
        # aged past the cutoff since is left for the next run).
        done = runner.run(dict(event, dry_run=False, **({"now": plan.now} if plan else {})))
    output.print_json(done.as_data()) if app.json else render_run(done)
    if done.errors:
        raise typer.Exit(ExitStatus.FAILURE)


def render_plan(run: ArchiveRun) -> None:
    rows = [(g.month, g.source_prefix, g.archive_prefix, g.objects, output.human_bytes(g.bytes),
             _usd(g.difference_usd, signed=True)) for g in run.groups]
    output.stdout.print(output.table(
        f"Would archive to {run.archive_bucket} as {run.storage_class} (older than {run.cutoff})",
        ("month", "from", "to", "objects", "size", "cost/month"), rows))
    c = run.cost
    output.stdout.print(
        f"{run.to_move} objects, {output.human_bytes(run.bytes_to_move)}: "
        f"{_usd(c['standard_usd_per_month'])}/month in STANDARD, "
        f"{_usd(c['target_usd_per_month'])}/month in {run.storage_class} "
        f"({_usd(c['difference_usd_per_month'], signed=True)}; {c['prices']})", highlight=False,
        markup=False)
    _warn_glacier(run)


def render_run(run: ArchiveRun) -> None:
    failed = [o for o in run.objects if o.get("status") == "error"]
    if failed:
        output.stdout.print(output.table("Not archived (originals kept)", ("key", "error"),
                                         [(o["key"], o.get("error")) for o in failed]))
    _warn_glacier(run)
    where = "here" if run.where == "local" else f"by {run.where}"
    output.stdout.print(
        f"Archived {run.moved} objects ({output.human_bytes(run.bytes)}) to "
        f"{run.archive_bucket} as {run.storage_class} {where}; {run.errors} errors"
        + (f", {run.remaining} left for the next run" if run.remaining else ""),
        highlight=False, markup=False)


def _warn_glacier(run: ArchiveRun) -> None:
    if run.skipped_glacier:
        output.warn(f"{run.skipped_glacier} objects are already in a Glacier class and were "
                    "not copied (restore them first to archive them)")


def render_lifecycle(report: LifecycleReport) -> None:
    for note in report.notes:
        output.warn(note)
    rows = [(o.key, output.human_bytes(o.size), o.storage_class, o.last_modified[:10],
             f"{o.transition} on {(o.transition_at or '')[:10]}" if o.transition else "",
             (o.expires_at or "")[:10], ", ".join(o.due)) for o in report.objects]
    output.stdout.print(output.table(
        f"Lifecycle of {report.bucket} (rules read from the bucket; emulators never apply "
        "them)", ("key", "size", "class", "created", "transition", "expires", "due now"), rows))


def _usd(value: float, signed: bool = False) -> str:
    sign = "-" if value < 0 else "+" if signed and value > 0 else ""
    # Small archives cost fractions of a cent a month: show them rather than $0.00.
    amount = f"{abs(value):,.2f}" if abs(value) >= 0.01 or not value else f"{abs(value):.6f}"
    return f"{sign}${amount}"


@contextlib.contextmanager
def _progress(as_json: bool):
    """A bar on a terminal; plain lines elsewhere (and none at all for JSON)."""
    if as_json:
        yield None
        return
    if not output.is_terminal():
        def plain(done: int, total: int) -> None:
            if done and (done % PLAIN_EVERY == 0 or done == total):
                output.info(f"archived {done}/{total}")
        yield plain
        return
    with Progress(TextColumn("archiving"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=output.stderr, transient=True) as bar:
        task = bar.add_task("archive", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)
        yield update


def register(app: typer.Typer) -> None:
    app.command()(archive)
