"""pipectl status: what the pipeline is doing, from its buckets, queues and results table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipectl import output
from pipectl.cli import context
from pipectl.errors import ExitStatus
from pipectl.ops import results as results_ops
from pipectl.ops.drift import FunctionState, LocalCode
from pipectl.ops.status import (
    DEFAULT_FAILED_SINCE,
    PipelineStatus,
    pipeline_status,
    span,
)

_TALLY_LABELS = {"records_rejected": "records rejected", "thumbnails": "thumbnails",
                 "responses_fetched": "responses fetched"}


def status(
    ctx: typer.Context,
    watch: bool = typer.Option(False, "--watch", "-w", help="refresh until Ctrl-C"),
    interval: float = typer.Option(2.0, "--interval", min=0.5, help="seconds between refreshes"),
    check: bool = typer.Option(False, "--check",
                               help="exit 1 if unhealthy, one line per reason (for CI)"),
    since: str = typer.Option(DEFAULT_FAILED_SINCE, "--since",
                              help="--check: failures since (30m, 24h, 7d or an ISO time)"),
    stuck_after: str = typer.Option("15m", "--stuck-after",
                                    help="--check: a file waiting in incoming/ longer is stuck"),
) -> None:
    """The pipeline at a glance: buckets, incoming/, queue and DLQ depth, results, failures."""
    app = context.get(ctx)
    failed_since = results_ops.parse_since(since, option="--since")
    stuck = results_ops.parse_duration(stuck_after, "--stuck-after")

    # One per command: a zip built for drift is kept across --watch refreshes.
    local = LocalCode(app.config)

    def snapshot() -> PipelineStatus:
        return pipeline_status(app.aws, app.names, failed_since=failed_since, stuck_after=stuck,
                               local_code=local)

    if watch:
        _watch(snapshot, interval, json_target=app.target_data() if app.json else None)
        return
    report = snapshot()
    if app.json:
        output.print_json(_status_data(report, app.target_data()))
    elif check:
        for line in report.problems or ["healthy"]:
            output.line(line)
    else:
        render_status(report)
    if (check and not report.healthy) or report.missing:
        raise typer.Exit(ExitStatus.FAILURE)


# A failure's time to the second, in UTC, for a table; JSON shows it whole.
_utc = output.human_time


def status_view(s: PipelineStatus) -> Group:
    return Group(*_status_parts(s))


def _status_parts(s: PipelineStatus) -> list:
    def depth(d: dict[str, int] | None, oldest: bool) -> str:
        if d is None:
            return "not deployed"
        # SQS has no oldest-message age per queue; on AWS it is CloudWatch's
        # ApproximateAgeOfOldestMessage metric, which pipectl does not read.
        return (f"{d['visible']} waiting, {d['in_flight']} in flight, {d['delayed']} delayed"
                + (", oldest n/a" if oldest else ""))

    counts = ", ".join(f"{k.lower()} {v}" for k, v in s.results.items()) or "no table"
    parts: list[Table | Text] = [output.table(f"pipeline on {s.target}", ("", ""), [
        *((f"{role} bucket", name) for role, name in s.buckets.items()),
        ("waiting in incoming/", _incoming(s)),
        ("processing queue", depth(s.queue, oldest=True)),
        ("dead-letter queue", depth(s.dlq, oldest=False)),
        ("fetch dead-letter queue", depth(s.fetch_dlq, oldest=False)),
        ("output format", s.output),
        ("results", counts),
        ("from processed files", ", ".join(f"{_TALLY_LABELS.get(k, k)} {v:,}"
                                           for k, v in s.totals.items()) or "no table"),
        ("last archiver run", _archiver(s.archiver)),
        *((f"function {f.name.rsplit('-', 1)[-1]}", _function(f)) for f in s.functions),
        ("alarms", ", ".join(f"{name} {state}" for name, state in s.alarms.items()) or "none"),
    ])]
    if s.recent_failures:
        parts.append(output.table("recent failures", ("key", "error", "when (UTC)"), [
            (r.key, r.error or r.last_error, _utc(r.updated_at)) for r in s.recent_failures],
            no_wrap=("when (UTC)",)))
    if s.retrying:
        more = "+" if s.retrying_truncated else ""
        parts.append(output.table("retrying and dead-lettered, by last error",
                                  ("files", "state", "last error", "e.g."), [
            (f"{g.files}{more}", g.state, g.last_error, g.example) for g in s.retrying]))
    parts += [Text(f"problem: {output.plain(p)}") for p in s.problems if not s.missing]
    return parts


def render_status(s: PipelineStatus) -> None:
    for part in _status_parts(s):
        output.show(part) if isinstance(part, Table) else output.stdout.print(part)
    for missing in s.missing:
        output.warn(f"{missing} does not exist (run `pipectl deploy`)")


def _function(f: FunctionState) -> str:
    return f"code {f.code}" + (f"; {f.state_reason}" if f.state_reason else "")


def _incoming(s: PipelineStatus) -> str:
    i = s.incoming
    if i is None:
        return "not deployed"
    if not i.count:
        return "0"
    count = f"{i.count}+" if i.truncated else str(i.count)
    unmatched = f", {i.unmatched} match no notification rule" if i.unmatched else ""
    return (f"{count}, oldest {i.oldest_key} ({span(i.oldest_age_seconds or 0)} ago)"
            + unmatched)


def _archiver(run: dict | None) -> str:
    if run is None:
        return "never"
    when = output.human_time(run.get("last_run_at")) or "?"
    try:
        age = datetime.now(timezone.utc) - datetime.fromisoformat(
            run["last_run_at"].replace("Z", "+00:00"))
        when += f" ({span(age.total_seconds())} ago)"
    except (KeyError, AttributeError, ValueError):
        pass
    return (f"{when}: moved {run['moved']} ({output.human_bytes(run['bytes'])}), "
            f"{run['errors']} errors")


def _status_data(report: PipelineStatus, target: dict) -> dict:
    return {**asdict(report), "target": target}


def _watch(snapshot: Callable[[], PipelineStatus], interval: float, *,
           json_target: dict | None) -> None:
    """Refresh in place on a terminal; elsewhere a fresh snapshot per interval. Ctrl-C ends
    it as the way out, not a failure. With json_target (--output json): NDJSON, one
    snapshot a line, each with its checked_at time."""
    try:
        if output.stdout.is_terminal and json_target is None:
            with Live(console=output.stdout, auto_refresh=False) as live:
                while True:
                    live.update(status_view(snapshot()), refresh=True)
                    time.sleep(interval)
        while True:
            report = snapshot()
            if json_target is not None:
                output.print_json(_status_data(report, json_target), one_line=True)
            else:
                render_status(report)
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command()(status)
