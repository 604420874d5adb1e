"""pipectl ls / upload / download."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from pipectl import output
from pipectl.aws.session import translate_errors
from pipectl.cli import context
from pipectl.cli.context import AppContext
from pipectl.errors import ExitStatus, NotFound, PipectlError, UsageError
from pipectl.ops import download as downloads
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
    """List the pipeline's buckets, or the objects and prefixes at a location. Exit 1 when
    nothing is there, as `aws s3 ls` does."""
    app = context.get(ctx)
    with translate_errors(app.aws):
        if location is None:
            statuses = transfer.bucket_statuses(app.aws.client("s3"), app.names.bucket_roles())
            return _render_buckets(app, statuses)
        listing = transfer.list_location(app.aws.client("s3"), _parse(app, location),
                                         recursive=recursive)
    empty = not listing.prefixes and not listing.objects
    if app.json:
        output.print_json(listing)
        if empty:
            raise typer.Exit(ExitStatus.FAILURE)
        return None
    if empty:
        raise NotFound(f"nothing under s3://{listing.bucket}/{listing.prefix}")
    rows = [[p, "PRE", "", ""] for p in listing.prefixes]
    rows += [[o.key, output.human_bytes(o.size), _when(o.last_modified), o.storage_class]
             for o in listing.objects]
    # A Text title, like output.table's cells, is never read as Rich markup.
    output.show(output.table(Text(f"s3://{listing.bucket}/{listing.prefix}"),
                             ["key", "size", "last modified (UTC)", "storage class"], rows))


def upload(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="files and directories (recursively): DIR "  # noqa: B008
                                      "uploads as DIR/..., DIR/ uploads its contents"),
    to: str | None = typer.Option(None, "--to", help=f"{LOCATION_HELP} (default: the raw "
                                  "bucket's incoming prefix); a trailing / makes it a prefix"),
    jobs: int = typer.Option(transfer.DEFAULT_JOBS, "--jobs", "-j", min=1,
                             help="requests in flight"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be uploaded"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and errors"),
) -> None:
    """Upload files into a bucket: parallel, SHA-256 verified; files already there with
    the same size and SHA-256 are skipped."""
    app = context.get(ctx)
    files = transfer.collect_files(paths)  # every local path checked before any network
    with translate_errors(app.aws):
        destination = (_parse(app, to) if to is not None else
                       Location(app.names.bucket("raw"), app.config.prefixes.incoming, "raw"))
        warnings = _unprocessed(app, files, destination)
        for warning in warnings:
            output.warn(warning)
        with _ProgressView("upload", quiet) as progress:
            report = transfer.upload(app.aws.client("s3"), files, destination, jobs=jobs,
                                     progress=progress, dry_run=dry_run)
    report.warnings = warnings
    _finish(app, report, f"to {destination.uri}", quiet)


def download(
    ctx: typer.Context,
    source: str = typer.Argument(..., help=f"{LOCATION_HELP}: a key or a prefix"),
    destination: str = typer.Argument(..., help="directory (created; for one key: ending "
                                      "in /), a file for one key, or - for stdout"),
    jobs: int = typer.Option(transfer.DEFAULT_JOBS, "--jobs", "-j", min=1,
                             help="requests in flight"),
    force: bool = typer.Option(False, "--force", "-f",
                               help="replace local files that differ"),
    no_clobber: bool = typer.Option(False, "--no-clobber", "-n",
                                    help="keep local files that exist"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and errors"),
) -> None:
    """Download a key or every object under a prefix; never writes outside DESTINATION,
    never replaces a local file that differs unless --force."""
    app = context.get(ctx)
    if force and no_clobber:
        raise UsageError("--force and --no-clobber contradict each other: choose one")
    clobber = downloads.FORCE if force else downloads.KEEP if no_clobber else downloads.REFUSE
    with translate_errors(app.aws):
        location = _parse(app, source)
        with _ProgressView("download", quiet) as progress:
            if destination == downloads.STDOUT:
                report = downloads.stream(app.aws.client("s3"), location, sys.stdout.buffer,
                                          progress=progress)
            else:
                report = downloads.download(app.aws.client("s3"), location, destination,
                                            jobs=jobs, progress=progress, clobber=clobber)
    # With -, stdout holds the object's bytes: the report goes to stderr only.
    _finish(app, report, f"from {location.uri} to {destination}", quiet,
            data=destination != downloads.STDOUT)


def _unprocessed(app: AppContext, files: list[transfer.LocalFile],
                 destination: Location) -> list[str]:
    """Warnings for files going to the raw bucket's incoming prefix that no notification
    rule matches. Only a destination under that prefix costs a look at the raw bucket's
    name (an s3:// URL elsewhere needs no account lookup)."""
    incoming = app.config.prefixes.incoming
    keys = transfer.upload_keys(files, destination)
    if not any(k.startswith(incoming) for k in keys):
        return []
    if destination.role not in (None, "raw") or destination.bucket != app.names.bucket("raw"):
        return []
    return transfer.unprocessed(files, keys, incoming, app.config.processor.suffixes)


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


def _finish(app: AppContext, report: TransferReport, where: str, quiet: bool = False,
            data: bool = True) -> None:
    if app.json:
        summary = {"operation": report.operation, "ok": report.ok, "failed": report.failed,
                   "skipped": report.skipped, "refused": report.refused, "bytes": report.bytes,
                   "dry_run": report.dry_run, "warnings": report.warnings,
                   "files": [asdict(f) for f in report.files]}
        if report.dry_run:
            summary["planned"] = report.planned
        if data:
            output.print_json(summary)
        else:
            output.stderr.print_json(data=summary)
    if not quiet:
        output.info(_summary(report, where))
    problems = [f"{report.failed} of {len(report.files)} files failed to "
                f"{report.operation}"] if report.failed else []
    if report.refused:
        problems.append(f"{report.refused} refused (listed above)")
    if problems:
        raise PipectlError(", ".join(problems))


def _summary(report: TransferReport, where: str) -> str:
    done = "uploaded" if report.operation == "upload" else "downloaded"
    if report.dry_run:
        line = (f"would upload {report.planned} file{'s' if report.planned != 1 else ''} "
                f"({output.human_bytes(report.bytes)}) {where}; {report.skipped} skipped")
    else:
        line = (f"{done} {report.ok} file{'s' if report.ok != 1 else ''} "
                f"({output.human_bytes(report.bytes)}) {where}; "
                f"{report.failed} failed, {report.skipped} skipped")
    return line + (f", {report.refused} refused" if report.refused else "")


class _ProgressView:
    """transfer.Progress for the terminal (one Rich bar of total bytes) or for logs and CI
    (one plain line per file). Failures and refusals are always shown, on stderr."""

    def __init__(self, operation: str, quiet: bool = False):
        self.operation, self.quiet = operation, quiet
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.plain: _PlainProgress | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> _ProgressView:
        if output.is_terminal() and not self.quiet:
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
        self.plain = None if self.quiet else _PlainProgress(self.operation, total_bytes)

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
            elif result.status == transfer.REFUSED:
                output.error(f"refused {source}: {result.error}")
            elif self.quiet:
                return
            elif result.status == transfer.SKIPPED:
                output.info(f"skipped {source}: {result.reason}")
            elif result.status == transfer.PLANNED:
                output.info(f"would {self.operation} {source} -> {target} "
                            f"({output.human_bytes(result.bytes)})")
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
