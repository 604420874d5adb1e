"""pipectl results: rows of the results table, one per source object."""

from __future__ import annotations

import typer
from rich.text import Text

from pipectl import output
from pipectl.cli import context
from pipectl.errors import UsageError
from pipectl.ops import results as results_ops

_COLUMNS = ("key", "status", "in", "out", "rejected", "dropped", "output / error",
            "updated (UTC)")
_WHOLE = ("status", "in", "out", "rejected", "dropped", "updated (UTC)")


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
    version: str | None = typer.Option(None, "--processor-version",
                                          help="only rows this processor version wrote"),
    not_version: str | None = typer.Option(
        None, "--not-processor-version", help="only rows another version wrote (or none "
                                              "recorded), e.g. the deployed one's"),
) -> None:
    """Rows of the results table, newest first, or one key in full."""
    app = context.get(ctx)
    if version is not None and not_version is not None:
        raise UsageError("--processor-version and --not-processor-version exclude each other")
    ddb = app.aws.client("dynamodb")
    if key is not None:
        row = results_ops.get_result(ddb, app.names, key)
        if app.json:
            output.print_json(row)
        else:
            shown = {k: v for k, v in vars(row).items() if k != "details"} | row.details
            if row.output:
                shown["output_format"] = output_format_of(row.output)
            output.stdout.print(output.table(None, ("field", "value"), shown.items()))
        return
    page = results_ops.query_results(
        ddb, app.names, status=results_ops.check_status(status_filter),
        since=results_ops.parse_since(since) if since else None,
        until=results_ops.parse_since(until, option="--until") if until else None,
        prefix=prefix, limit=limit, page_token=page_token,
        version=(version, True) if version is not None else
        (not_version, False) if not_version is not None else None)
    if app.json:
        output.print_json(page)
        return
    render_results(page.results, app.names.bucket("processed"),
                   app.names.config.output.format)
    if page.next_token:
        output.info(f"more: --page-token {page.next_token}")


def render_results(rows: list[results_ops.ResultRow], processed_bucket: str,
                   output_format: str = "jsonl") -> None:
    """Outputs in the processed bucket are shown by key (the title names the bucket), so a
    row fits a terminal; an archived output keeps its whole s3:// location."""
    if not rows:
        output.info("no results")
        return
    home = f"s3://{processed_bucket}/"
    title = f"outputs ({output_format}) under {home} unless named"
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


def output_format_of(location: str) -> str:
    """The format of one output, from its name (a row keeps it after the config changes)."""
    for fmt in ("parquet", "jsonl.gz", "jsonl"):
        if location.endswith("." + fmt):
            return fmt
    return "other"


# A row's time to the second, in UTC, for a table; JSON and one key show it whole.
_utc = output.human_time


def register(app: typer.Typer) -> None:
    app.command()(results)
