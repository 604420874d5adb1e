"""pipectl fetch: ask the fetcher function to call an HTTP API and feed its response in."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.aws.session import translate_errors
from pipectl.cli import context
from pipectl.ops import fetch as fetch_ops


def fetch(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="http:// or https:// URL to GET"),
    name: str | None = typer.Option(None, "--name", help="output name: incoming/NAME-TIME.json "
                                    "(default: the URL's last path segment)"),
    records: str | None = typer.Option(None, "--records", help="JSON pointer to the records "
                                       "inside the response, e.g. /data/items"),
    header: list[str] = typer.Option([], "--header", "-H", help="'Name: value', repeatable"),  # noqa: B008
    query: list[str] = typer.Option([], "--query", "-q", help="key=value, repeatable"),  # noqa: B008
) -> None:
    """Upload a fetch request under the raw bucket's fetch/; the fetcher writes the response
    to incoming/, where the processor picks it up."""
    app = context.get(ctx)
    request = fetch_ops.build_request(url, name=name, records=records, headers=header,
                                      query=query)   # usage errors before any AWS call
    with translate_errors(app.aws):
        prefix = getattr(app.config.prefixes, "fetch", fetch_ops.FETCH_PREFIX)
        done = fetch_ops.submit(app.aws.client("s3"), app.names.bucket("raw"), request, prefix)
    if app.json:
        return output.print_json({"request_key": done.request_key, "request": done.request})
    output.line(done.request_key)
    output.info(f"requested {url} -> s3://{done.bucket}/{done.request_key}; the fetcher "
                "writes the response under incoming/")


def register(app: typer.Typer) -> None:
    app.command()(fetch)
