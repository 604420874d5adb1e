"""pipectl status / results: what the pipeline is doing, from the queues and the results table."""

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
from pipectl.ops.drift import LocalCode
from pipectl.ops.status import (
    DEFAULT_FAILED_SINCE,
    PipelineStatus,
    pipeline_status,
    span,
)

_COLUMNS = ("key", "status", "in", "out", "rejected", "dropped", "output / error",
            "updated (UTC)")
_WHOLE = ("status", "in", "out", "rejected", "dropped", "updated (UTC)")
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


def results(
    ctx: typer.Context,
    key: str | None = typer.Argument(None, help="one object key, shown in full"),
    status_filter: str | None = typer.Option(None, "--status", "-s",
                                                help="PROCESSING, PROCESSED, FAILED or ARCHIVED"),
    since: str | None = typer.Option(None, "--since", help="updated at or after: 30m, 2h, 7d "
                                                              "or an ISO time"),
    until: str | None = typer.Option(None, "--until", help="updated at or before (same forms)"),
    prefix: str | None = typer.Option(None, "--prefix", help="only keys starting with this"),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="rows per page"),
    page_token: str | None = typer.Option(None, "--page-token",
                                             help="continue where the last page ended"),
) -> None:
    """Rows of the results table, newest first, or one key in full."""
    app = context.get(ctx)
    ddb = app.aws.client("dynamodb")
    if key is not None:
        row = results_ops.get_result(ddb, app.names, key)
        if app.json:
            output.print_json(row)
        else:
            shown = {k: v for k, v in vars(row).items() if k != "details"} | row.details
            output.stdout.print(output.table(None, ("field", "value"), shown.items()))
        return
    page = results_ops.query_results(
        ddb, app.names, status=results_ops.check_status(status_filter),
        since=results_ops.parse_since(since) if since else None,
        until=results_ops.parse_since(until, option="--until") if until else None,
        prefix=prefix, limit=limit, page_token=page_token)
    if app.json:
        output.print_json(page)
        return
    render_results(page.results, app.names.bucket("processed"))
    if page.next_token:
        output.info(f"more: --page-token {page.next_token}")


def render_results(rows: list[results_ops.ResultRow], processed_bucket: str) -> None:
    """Outputs in the processed bucket are shown by key (the title names the bucket), so a
    row fits a terminal; an archived output keeps its whole s3:// location."""
    if not rows:
        output.info("no results")
        return
    home = f"s3://{processed_bucket}/"
    title = f"outputs under {home} unless named"
    table = output.table(Text(title), _COLUMNS, [
        (r.key, r.status, r.records_in, r.records_out, r.details.get("records_rejected"),
         r.dropped_values, output.lines(*_outcome(r, home)), _utc(r.updated_at))
        for r in rows],
        no_wrap=_WHOLE)
    console = output.stdout
    natural = console.measure(table, options=console.options.update(width=10_000)).maximum
    if natural <= console.width:
        console.print(table)
        return
    # Narrower than the table (an 80-column terminal): a few lines per row instead, as a
    # table would fold the key and the output into columns of fragments.
    console.print(Text(output.plain(title)), highlight=False)
    for r in rows:
        console.print(_entry(r, home), highlight=False)


def _entry(r: results_ops.ResultRow, home: str) -> Text:
    entry = Text.assemble((output.plain(r.key), "bold"), "  ", output.plain(r.status), "  ",
                          _utc(r.updated_at) or "")
    counts = [f"{n:,} {label}" for n, label in (
        (r.records_in, "in"), (r.records_out, "out"),
        (r.details.get("records_rejected"), "rejected"), (r.dropped_values, "dropped"))
        if n is not None]
    if counts:
        entry.append("\n  " + ", ".join(counts))
    for line in _outcome(r, home):
        entry.append("\n  " + output.plain(line))
    return entry


def _outcome(r: results_ops.ResultRow, home: str) -> list[str]:
    """The error of a failed row; else its output, with what the fetcher got and where the
    rejects and the thumbnail went, each on a line of its own."""
    if r.status == "FAILED":
        return [r.error] if r.error else []
    if r.status == "PROCESSING" and r.last_error:
        return [f"retrying: {r.last_error}"]
    lines = [(r.output or "").removeprefix(home)]
    if "http_status" in r.details:
        lines[0] = f"HTTP {r.details['http_status']}, {r.details.get('bytes', 0):,} bytes -> " \
                   f"{lines[0]}"
    lines += [f"{name} {str(r.details[name]).removeprefix(home)}"
              for name in ("rejects", "thumbnail") if r.details.get(name)]
    return lines


# A row's time to the second, in UTC, for a table; JSON and one key show it whole.
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
    parts = [output.table(f"pipeline on {s.target}", ("", ""), [
        *((f"{role} bucket", name) for role, name in s.buckets.items()),
        ("waiting in incoming/", _incoming(s)),
        ("processing queue", depth(s.queue, oldest=True)),
        ("dead-letter queue", depth(s.dlq, oldest=False)),
        ("fetch dead-letter queue", depth(s.fetch_dlq, oldest=False)),
        ("results", counts),
        ("from processed files", ", ".join(f"{_TALLY_LABELS.get(k, k)} {v:,}"
                                           for k, v in s.totals.items()) or "no table"),
        ("last archiver run", _archiver(s.archiver)),
        *((f"function {f.name.rsplit('-', 1)[-1]}", f"code {f.code}") for f in s.functions),
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
    app.command()(results)
