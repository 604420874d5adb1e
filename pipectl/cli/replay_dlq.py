"""pipectl replay-dlq: move dead letters back to the queue they came from."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pipectl import output
from pipectl.cli import context
from pipectl.cli.context import AppContext
from pipectl.cli.deploy import confirm
from pipectl.errors import PipectlError, UsageError
from pipectl.ops import replay as replay_ops
from pipectl.ops.dead_letters import ReplayOptions, ReplayReport, Route

_COLUMNS = ("key", "size", "first received", "sent", "receives", "replays", "message id",
            "action", "last error")


class Queue(str, Enum):
    """The queues with a dead-letter queue (replay_ops.QUEUES)."""

    processing = "processing"
    fetch = "fetch"


def replay_dlq(
    ctx: typer.Context,
    queue: Queue = typer.Option(Queue.processing, "--queue",
                                help="whose dead letters: the processor's (processing) "
                                     "or the fetcher's (fetch)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the dead letters, move nothing"),
    max_messages: int | None = typer.Option(None, "--max", min=1, help="move at most N"),
    key_filter: str | None = typer.Option(
        None, "--filter", help="only object keys matching this glob, e.g. 'incoming/*.csv' "
                               "or, with --queue fetch, 'fetch/*.yaml'"),
    skip_done: bool = typer.Option(False, "--skip-done", help="leave dead letters whose object "
                                                              "version (or fetch request) the "
                                                              "results table has PROCESSED"),
    to: str | None = typer.Option(None, "--to", help="target queue name or URL "
                                                     "(default: the queue --queue names)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="move without asking"),
    native: bool = typer.Option(False, "--native", help="use SQS's own redrive "
                                                        "(StartMessageMoveTask) where available"),
    max_replays: int | None = typer.Option(
        None, "--max-replays", min=1, help="leave dead letters pipectl has replayed this many "
                                           f"times [default: {replay_ops.DEFAULT_MAX_REPLAYS}]"),
) -> None:
    """Move dead letters back to the queue they came from (the processing or fetch queue)."""
    app = context.get(ctx)
    if native and (key_filter is not None or skip_done or max_messages is not None
                   or max_replays is not None):
        raise UsageError("--native moves the whole queue: it cannot be combined with "
                         "--filter, --skip-done, --max or --max-replays")
    if not native and max_replays is None:
        max_replays = replay_ops.DEFAULT_MAX_REPLAYS
    options = ReplayOptions(dry_run=dry_run, max_messages=max_messages, key_filter=key_filter,
                            skip_done=skip_done, native=native, max_replays=max_replays)
    dlq, source = replay_ops.queue_pair(app.names, queue.value)
    route = replay_ops.locate(app.aws.client("sqs"), dlq, source, to)
    if route.waiting == 0:
        return render(app, ReplayReport(source=route.dlq, target=route.target, dry_run=dry_run))
    if not dry_run:
        # The question names what will happen: --max 2 moves 2, not the whole queue.
        count = min(route.waiting, max_messages or route.waiting)
        confirm(f"Move up to {count} of {route.waiting} dead letter(s) from {route.dlq} to "
                f"{route.target} on {app.aws.describe()}?", yes)
    with _progress(app, route, options) as on_progress:
        report = replay_ops.replay(app.aws, app.names, route, options, on_progress=on_progress)
    render(app, report)
    if report.failed:
        raise PipectlError(f"{report.failed} dead letter(s) were not moved; the ones not sent "
                           f"are still in {route.dlq}")


def render(app: AppContext, report: ReplayReport) -> None:
    for warning in report.warnings:
        output.warn(warning)
    if app.json:
        output.print_json(as_data(report))
    elif report.dry_run and report.messages:
        output.show(output.table(None, _COLUMNS, [
            (m.key or "(no key)", output.human_bytes(m.size), _short_time(m.first_received_at),
             _short_time(m.sent_at), m.receive_count, m.replays, m.message_id,
             f"{m.action} ({m.reason})" if m.reason else m.action, m.last_error)
            for m in report.messages]))
    elif report.failed:
        output.stdout.print(output.table("not moved", ("key", "message id", "reason"), [
            (m.key or "(no key)", m.message_id, m.reason)
            for m in report.messages if m.action == "failed"]))
    if not report.messages and report.method == "batched":
        output.info(f"dead-letter queue {report.source} is empty")
    elif report.dry_run:
        output.info(f"dry run: would move {report.would_move}, skip {report.skipped} "
                    f"from {report.source} to {report.target}; nothing changed")
    else:
        poison = sum(1 for m in report.messages
                     if m.action == "skipped" and (m.reason or "").startswith("replayed "))
        if poison:
            output.warn(f"{poison} dead letter(s) were replayed often enough already and stay "
                        "in the dead-letter queue: see their last error with --dry-run, fix "
                        "the cause, then raise --max-replays")
        output.info(f"moved {report.moved}, skipped {report.skipped}, failed {report.failed} "
                    f"from {report.source} to {report.target}")


def as_data(report: ReplayReport) -> dict:
    return {"source": report.source, "target": report.target, "dry_run": report.dry_run,
            "moved": report.moved, "skipped": report.skipped, "failed": report.failed,
            "messages": [vars(m) for m in report.messages],
            # batched | native (StartMessageMoveTask), and what a native move left to say
            "method": report.method, "warnings": list(report.warnings)}


@contextlib.contextmanager
def _progress(app: AppContext, route: Route, options: ReplayOptions) -> Iterator:
    """A progress bar on a terminal; nothing extra in CI or with --output json."""
    if app.json or options.dry_run or not output.is_terminal():
        yield None
        return
    total = min(route.waiting, options.max_messages or route.waiting)
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), console=output.stderr,
                  transient=True) as progress:
        task = progress.add_task("replay", total=total, detail="")

        def update(report: ReplayReport) -> None:
            progress.update(task, completed=report.moved + report.failed,
                            detail=f"skipped {report.skipped}")

        yield update


_short_time = output.human_time  # UTC, to the second


def register(app: typer.Typer) -> None:
    app.command("replay-dlq")(replay_dlq)
