"""pipectl reprocess: run files already in the buckets through the pipeline again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from enum import Enum

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pipectl import output
from pipectl.cli import context
from pipectl.cli.context import AppContext
from pipectl.cli.deploy import confirm
from pipectl.errors import PipectlError
from pipectl.ops import reprocess as reprocess_ops
from pipectl.ops import results as results_ops
from pipectl.ops.reprocess import ReprocessReport, Selection

_COLUMNS = ("key", "status", "size", "version", "updated (UTC)")
LINE_SECONDS = 2.0   # in CI, one progress line at most this often


class Engine(str, Enum):
    queue = "queue"


def reprocess(
    ctx: typer.Context,
    key_filter: str | None = typer.Option(None, "--filter", help="object keys matching this "
                                                                 "glob, e.g. 'incoming/*.csv'"),
    statuses: list[str] = typer.Option([], "--status", "-s", help="PROCESSED or FAILED "
                                                                   "(repeat for both)"),
    since: str | None = typer.Option(None, "--since", help="updated at or after: 30m, 2h, 7d "
                                                           "or an ISO time"),
    until: str | None = typer.Option(None, "--until", help="updated at or before (same forms)"),
    not_current: bool = typer.Option(False, "--not-current", help="every row the deployed "
                                                                  "processor version did not "
                                                                  "write"),
    older_than: str | None = typer.Option(None, "--older-than-version",
                                          help="rows written before this version's first row, "
                                               "by other versions"),
    stranded: bool = typer.Option(False, "--stranded", help="objects under the incoming prefix "
                                                            "without a results row"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would run, with counts "
                                                          "and bytes; send nothing"),
    max_files: int | None = typer.Option(None, "--max", min=1, help="send at most N"),
    rate: float | None = typer.Option(None, "--rate", help="at most N messages a second, so "
                                                           "live uploads keep their share"),
    yes: bool = typer.Option(False, "--yes", "-y", help="send without asking"),
    engine: Engine = typer.Option(Engine.queue, "--engine",
                                  help="queue: messages through the processing queue"),
) -> None:
    """Send files through the pipeline again: outputs of older processor versions, FAILED
    files after a fix, and files in incoming/ that no event announced. Idempotent: a file
    already processed by the deployed version is left alone."""
    app = context.get(ctx)
    selection = Selection(
        key_filter=key_filter,
        statuses=tuple(dict.fromkeys(s for s in (results_ops.check_status(s) for s in statuses)
                                     if s)),
        since=results_ops.parse_since(since) if since else None,
        until=results_ops.parse_since(until, option="--until") if until else None,
        not_current=not_current, older_than_version=older_than, stranded=stranded,
        max_files=max_files)

    def ask(report: ReprocessReport) -> None:
        confirm(f"Send {len(report.selected)} file(s) ({output.human_bytes(report.bytes)}) "
                f"through {report.queue} for version {report.target_version} on "
                f"{app.aws.describe()}?", yes)

    with _progress(app, max_files) as on_progress:
        report = reprocess_ops.reprocess(app.aws, app.names, selection, dry_run=dry_run,
                                         rate=rate, on_progress=on_progress, confirm=ask)
    render(app, report)
    if report.failed:
        raise PipectlError(f"{len(report.failed)} file(s) were not sent: run the same "
                           "command again (what was sent is not sent twice in effect)")


def render(app: AppContext, report: ReprocessReport) -> None:
    if app.json:
        output.print_json(as_data(report))
    elif report.dry_run and report.selected:
        output.show(output.table(None, _COLUMNS, [
            (c.key, c.status, output.human_bytes(c.size), c.version,
             output.human_time(c.updated_at)) for c in report.selected]))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.by_status.items()))
    skipped = "".join(f"; skipped {n} ({why})" for why, n in sorted(report.skipped.items()))
    what = f"{len(report.selected)} file(s) ({counts or 'none'}), " \
           f"{output.human_bytes(report.bytes)}{skipped}"
    if report.dry_run:
        output.info(f"dry run: would send {what} for version {report.target_version}; "
                    "nothing sent")
    elif not report.selected:
        output.info(f"nothing to reprocess{skipped}")
    else:
        pace = report.sent / report.seconds if report.seconds else 0.0
        output.info(f"sent {report.sent} of {what} to {report.queue} in {report.calls} "
                    f"call(s), {pace:.1f}/s; run {report.run_id} -> version "
                    f"{report.target_version}")


def as_data(report: ReprocessReport) -> dict:
    return {"run_id": report.run_id, "target_version": report.target_version,
            "queue": report.queue, "dry_run": report.dry_run,
            "selected": len(report.selected), "bytes": report.bytes,
            "by_status": report.by_status, "skipped": report.skipped, "sent": report.sent,
            "failed": report.failed, "calls": report.calls,
            "seconds": round(report.seconds, 3), "rate": report.rate,
            "files": [vars(c) for c in report.selected]}


@contextlib.contextmanager
def _progress(app: AppContext, max_files: int | None) -> Iterator:
    """A bar on a terminal; in CI a plain line every LINE_SECONDS; nothing with -o json."""
    if app.json:
        yield None
        return
    if not output.is_terminal():
        last = [0.0]

        def line(report: ReprocessReport) -> None:
            done = report.sent + len(report.failed)
            if time.monotonic() - last[0] >= LINE_SECONDS or done == len(report.selected):
                last[0] = time.monotonic()
                output.info(f"sent {report.sent}/{len(report.selected)}")

        yield line
        return
    with Progress(TextColumn("reprocessing"), BarColumn(), MofNCompleteColumn(),
                  console=output.stderr, transient=True) as progress:
        task = progress.add_task("reprocess", total=max_files)

        def update(report: ReprocessReport) -> None:
            progress.update(task, total=len(report.selected),
                            completed=report.sent + len(report.failed))

        yield update


def register(app: typer.Typer) -> None:
    app.command()(reprocess)
