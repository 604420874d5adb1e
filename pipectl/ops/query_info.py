"""How to point a query engine at processed/: Athena's CREATE EXTERNAL TABLE and DuckDB's
read line, for the output format pipeline.yaml asks for.

The columns come from a Parquet output's own footer (the first one under the processed
prefix; only its last MiB is read), else from the config's record schemas.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from pipectl.aws import s3 as s3_ops
from pipectl.aws.session import Aws
from pipectl.errors import NotFound
from pipectl.naming import Names

FOOTER_BYTES = 1024 * 1024
# Athena (Hive DDL) names for what the processor writes (parquet_writer.py, schema types).
_SCHEMA_TYPES = {"string": "string", "integer": "bigint", "number": "double",
                 "boolean": "boolean", "date": "date", "datetime": "timestamp"}
METADATA_COLUMN = ("_metadata", "struct<processed_at:timestamp,environment:string,"
                   "processor_version:string,source:string>")
_PARTITION_COLUMNS = {"dt": ("dt",), "year/month/day": ("year", "month", "day")}


@dataclass(frozen=True)
class QueryInfo:
    format: str
    location: str                          # s3://bucket/processed/
    partition_columns: tuple[str, ...]
    columns: list[tuple[str, str]] = field(default_factory=list)   # (name, Athena type)
    columns_from: str = ""
    athena: str = ""
    duckdb: str = ""


def query_info(aws: Aws, names: Names) -> QueryInfo:
    config = names.config
    out = config.output
    bucket = names.bucket("processed")
    location = f"s3://{bucket}/{config.prefixes.processed}"
    partitions = _PARTITION_COLUMNS.get(out.partition, ())
    columns: list = []
    source = "the record schemas in pipeline.yaml"
    if out.format == "parquet":
        found = _footer_columns(aws.client("s3"), bucket, config.prefixes.processed)
        if found is not None:
            columns, source = found
    if not columns:
        seen: dict[str, str] = {}
        for s in config.schemas:
            for name, rules in s.fields.items():
                seen.setdefault(name, _SCHEMA_TYPES.get(rules.get("type", "string"), "string"))
        columns = [*seen.items(), METADATA_COLUMN]
    table = f"{config.name}_{config.environment}_processed".replace("-", "_")
    return QueryInfo(format=out.format, location=location, partition_columns=partitions,
                     columns=columns, columns_from=source,
                     athena=athena_ddl(table, out.format, location, columns, partitions),
                     duckdb=duckdb_line(out.format, location, partitions))


def athena_ddl(table: str, fmt: str, location: str, columns: list[tuple[str, str]],
               partitions: tuple[str, ...]) -> str:
    body = ",\n".join(f"  `{name}` {kind}" for name, kind in columns)
    lines = [f"CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (", body, ")"]
    if partitions:
        lines.append("PARTITIONED BY (" + ", ".join(f"`{p}` string" for p in partitions) + ")")
    if fmt == "parquet":
        lines.append("STORED AS PARQUET")
    else:       # JSON Lines, gzipped or not: Athena reads .gz by its extension
        lines.append("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'")
    lines.append(f"LOCATION '{location}';")
    if partitions:  # Hive-style paths: Athena loads the partitions it finds
        lines.append(f"MSCK REPAIR TABLE `{table}`;")
    return "\n".join(lines)


def duckdb_line(fmt: str, location: str, partitions: tuple[str, ...]) -> str:
    hive = ", hive_partitioning=1" if partitions else ""
    if fmt == "parquet":
        return f"SELECT * FROM read_parquet('{location}**/*.parquet'{hive});"
    pattern = "*.jsonl.gz" if fmt == "jsonl.gz" else "*.jsonl"
    return f"SELECT * FROM read_json_auto('{location}**/{pattern}'{hive});"


def _footer_columns(client, bucket: str, prefix: str) -> tuple[list, str] | None:
    """(columns, where they came from) from the first Parquet output; None when there is
    none yet or pyarrow is not installed (pip install 'pipectl[parquet]')."""
    if importlib.util.find_spec("pyarrow") is None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        first = next((o for o in s3_ops.iter_objects(client, bucket, prefix)
                      if not isinstance(o, str) and o.key.endswith(".parquet")), None)
    except NotFound:
        return None
    if first is None:
        return None
    # The footer is at the end: its length, then "PAR1". A ranged GET of the tail holds it.
    tail = client.get_object(Bucket=bucket, Key=first.key,
                             Range=f"bytes=-{FOOTER_BYTES}")["Body"].read()
    schema = pq.read_schema(pa.BufferReader(tail))
    return [(f.name, _athena_type(f.type)) for f in schema], f"s3://{bucket}/{first.key}"


def _athena_type(t) -> str:
    import pyarrow as pa

    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{_athena_type(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{_athena_type(t.value_type)}>"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double"
    return "string"
