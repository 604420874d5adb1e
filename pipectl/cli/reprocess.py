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
from pipectl.errors import PipectlError, UsageError
from pipectl.ops import reprocess as reprocess_ops
from pipectl.ops import reprocess_batch
from pipectl.ops import results as results_ops
from pipectl.ops.reprocess import ReprocessReport, Selection

_COLUMNS = ("key", "status", "size", "version", "updated (UTC)")
LINE_SECONDS = 2.0   # in CI, one progress line at most this often


class Engine(str, Enum):
    queue = "queue"
    s3_batch = "s3-batch"


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
                                  help="queue: messages through the processing queue; "
                                       "s3-batch: an S3 Batch Operations job (AWS only)"),
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

    if engine is Engine.s3_batch:
        return _s3_batch(app, selection, dry_run=dry_run, rate=rate, ask=ask)
    with _progress(app, max_files) as on_progress:
        report = reprocess_ops.reprocess(app.aws, app.names, selection, dry_run=dry_run,
                                         rate=rate, on_progress=on_progress, confirm=ask)
    render(app, report)
    if report.failed:
        raise PipectlError(f"{len(report.failed)} file(s) were not sent: run the same "
                           "command again (what was sent is not sent twice in effect)")


def _s3_batch(app: AppContext, selection: Selection, *, dry_run: bool, rate: float | None,
              ask) -> None:
    if rate is not None:
        raise UsageError("--rate paces the queue engine; an S3 Batch Operations job is paced "
                         "by the processor's concurrency")
    reprocess_batch.refuse_emulator(app.aws)
    report = reprocess_ops.reprocess(app.aws, app.names, selection, dry_run=True)
    report.dry_run = dry_run
    if dry_run or not report.selected:
        return render(app, report)
    ask(report)
    job = reprocess_batch.start(app.aws, app.names, report)
    output.info(f"job {job.job_id}: {len(report.selected)} task(s), manifest {job.manifest}")
    try:
        job = reprocess_batch.watch(app.aws, app.names, job, on_progress=None if app.json else
                                    lambda j: output.info(f"job {j.job_id} {j.status}: "
                                                          f"{j.succeeded} succeeded, "
                                                          f"{j.failed} failed of {j.total}"))
    except KeyboardInterrupt:
        output.info(f"job {job.job_id} goes on without pipectl watching: aws s3control "
                    f"describe-job --account-id {app.names.account} --job-id {job.job_id}")
        raise
    if app.json:
        output.print_json({**as_data(report), "engine": "s3-batch", "job": vars(job)})
    else:
        for task in job.failed_tasks:
            output.warn(f"{task['key']}: {task['error_code']} {task['result']}")
        output.info(f"job {job.job_id} {job.status}: {job.succeeded} succeeded, {job.failed} "
                    f"failed of {job.total}; report under {job.report}")
    reprocess_batch.check_finished(job)
    if job.failed:
        raise PipectlError(f"{job.failed} task(s) failed: see the report under {job.report}")


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
