"""pipectl query-info: the Athena table and the DuckDB line for the processed prefix."""

from __future__ import annotations

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.ops import query_info as query_ops


def query_info(ctx: typer.Context) -> None:
    """Print Athena's CREATE EXTERNAL TABLE and DuckDB's read line for processed/, in the
    output format pipeline.yaml asks for (columns from a Parquet output's footer, else from
    the record schemas)."""
    app = context.get(ctx)
    info = query_ops.query_info(app.aws, app.names)
    if app.json:
        output.print_json(info)
        return
    output.info(f"format {info.format} at {info.location}; columns from {info.columns_from}")
    output.stdout.print("-- Athena", highlight=False)
    output.stdout.print(info.athena, highlight=False, markup=False)
    output.stdout.print("-- DuckDB (INSTALL httpfs; LOAD httpfs; and your S3 settings first)",
                        highlight=False)
    output.stdout.print(info.duckdb, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("query-info")(query_info)
