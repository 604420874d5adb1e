"""pipectl ls / upload / download."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from pipectl import output
from pipectl.aws.session import translate_errors
from pipectl.cli import context
from pipectl.cli.context import AppContext
from pipectl.errors import PipectlError
from pipectl.ops import transfer
from pipectl.ops.transfer import FileResult, Location, TransferReport

# No square brackets in help: Typer renders it as Rich markup.
PLAIN_SECONDS = 30  # off a terminal, a progress line at least this often
LOCATION_HELP = "raw|processed|archive or s3://BUCKET, then optionally /KEY or /PREFIX/"


def ls(
    ctx: typer.Context,
    location: str | None = typer.Argument(None, help=f"{LOCATION_HELP}; none: the buckets"),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="every key, not one level"),
) -> None:
    """List the pipeline's buckets, or the objects and prefixes at a location."""
    app = context.get(ctx)
    with translate_errors(app.aws):
        if location is None:
            statuses = transfer.bucket_statuses(app.aws.client("s3"), app.names.bucket_roles())
            return _render_buckets(app, statuses)
        listing = transfer.list_location(app.aws.client("s3"), _parse(app, location),
                                         recursive=recursive)
    if app.json:
        return output.print_json(listing)
    rows = [[p, "PRE", "", ""] for p in listing.prefixes]
    rows += [[o.key, output.human_bytes(o.size), _when(o.last_modified), o.storage_class]
             for o in listing.objects]
    if not rows:
        return output.info(f"nothing under s3://{listing.bucket}/{listing.prefix}")
    # A Text title, like output.table's cells, is never read as Rich markup.
    output.show(output.table(Text(f"s3://{listing.bucket}/{listing.prefix}"),
                             ["key", "size", "last modified (UTC)", "storage class"], rows))


def upload(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="files and directories (recursively)"),  # noqa: B008
    to: str | None = typer.Option(None, "--to", help=f"{LOCATION_HELP} (default: the raw "
                                  "bucket's incoming prefix); a trailing / makes it a prefix"),
    jobs: int = typer.Option(transfer.DEFAULT_JOBS, "--jobs", "-j", min=1, help="files at once"),
) -> None:
    """Upload files into a bucket, in parallel, checksummed and size-verified."""
    app = context.get(ctx)
    files = transfer.collect_files(paths)  # every local path checked before any network
    with translate_errors(app.aws):
        destination = (_parse(app, to) if to is not None else
                       Location(app.names.bucket("raw"), app.config.prefixes.incoming, "raw"))
        with _ProgressView("upload") as progress:
            report = transfer.upload(app.aws.client("s3"), files, destination, jobs=jobs,
                                     progress=progress)
    _finish(app, report, f"to {destination.uri}")


def download(
    ctx: typer.Context,
    source: str = typer.Argument(..., help=f"{LOCATION_HELP}: a key or a prefix"),
    destination: Path = typer.Argument(  # noqa: B008
        ..., help="directory (created), or a file for one key"),
    jobs: int = typer.Option(transfer.DEFAULT_JOBS, "--jobs", "-j", min=1, help="files at once"),
) -> None:
    """Download a key or every object under a prefix; never writes outside DESTINATION."""
    app = context.get(ctx)
    with translate_errors(app.aws):
        location = _parse(app, source)
        with _ProgressView("download") as progress:
            report = transfer.download(app.aws.client("s3"), location, destination, jobs=jobs,
                                       progress=progress)
    _finish(app, report, f"from {location.uri} to {destination}")


def _parse(app: AppContext, text: str) -> Location:
    # Roles resolve lazily: an s3:// URL or a bad location needs no AWS call.
    return transfer.parse_location(text, lambda role: app.names.bucket(role))


_when = output.human_time


def _render_buckets(app: AppContext, statuses: list[transfer.BucketStatus]) -> None:
    if app.json:
        return output.print_json([asdict(s) for s in statuses])
    shown = {True: "yes", False: "no", None: "access denied"}
    output.stdout.print(output.table(None, ["role", "bucket", "exists"],
                                     [[s.role, s.name, shown[s.exists]] for s in statuses]))


def _finish(app: AppContext, report: TransferReport, where: str) -> None:
    if app.json:
        output.print_json({"operation": report.operation, "ok": report.ok,
                           "failed": report.failed, "skipped": report.skipped,
                           "bytes": report.bytes, "files": [asdict(f) for f in report.files]})
    done = "uploaded" if report.operation == "upload" else "downloaded"
    output.info(f"{done} {report.ok} file{'s' if report.ok != 1 else ''} "
                f"({output.human_bytes(report.bytes)}) {where}; "
                f"{report.failed} failed, {report.skipped} skipped")
    if report.failed:
        raise PipectlError(f"{report.failed} of {len(report.files)} files failed to "
                           f"{report.operation}")


class _ProgressView:
    """transfer.Progress for the terminal (one Rich bar of total bytes) or for logs and CI
    (one plain line per file). Failures and refusals are always shown, on stderr."""

    def __init__(self, operation: str):
        self.operation = operation
        self.bar: Progress | None = None
        self.task = None
        self.plain: _PlainProgress | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> _ProgressView:
        if output.is_terminal():
            self.bar = Progress(TextColumn(f"{self.operation}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(),
                                console=output.stderr, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def started(self, files: int, total_bytes: int) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task(self.operation, total=total_bytes)
        self.plain = _PlainProgress(self.operation, total_bytes)

    def transferred(self, nbytes: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, nbytes)
        elif self.bar is None and self.plain is not None:
            with self.lock:
                self.plain.add(nbytes)

    def finished(self, result: FileResult) -> None:
        source, target = ((result.local, result.uri) if self.operation == "upload"
                          else (result.uri, result.local))
        with self.lock:  # one whole line per file, whatever the threads do
            if result.status == transfer.FAILED:
                output.error(f"{source}: {result.error}")
            elif result.status == transfer.SKIPPED:
                output.warn(f"skipped: {result.error}")
            elif self.bar is None:
                done = "uploaded" if self.operation == "upload" else "downloaded"
                output.info(f"{done} {source} -> {target} ({output.human_bytes(result.bytes)})")


class _PlainProgress:
    """Off a terminal, a line at every tenth of the bytes or every PLAIN_SECONDS, whichever
    comes first, so a CI log shows a long transfer is alive."""

    def __init__(self, operation: str, total: int, clock=time.monotonic):
        self.operation, self.total, self.clock = operation, total, clock
        self.done, self.tenths, self.last = 0, 0, clock()

    def add(self, nbytes: int) -> None:
        self.done += nbytes
        tenths = self.done * 10 // self.total if self.total else 10
        if tenths > self.tenths and tenths < 10 or self.clock() - self.last >= PLAIN_SECONDS:
            self.tenths, self.last = max(self.tenths, tenths), self.clock()
            output.info(f"{self.operation}: {self.done * 100 // max(self.total, 1)}% "
                        f"({output.human_bytes(self.done)} of {output.human_bytes(self.total)})")


def register(app: typer.Typer) -> None:
    app.command()(ls)
    app.command()(upload)
    app.command()(download)
