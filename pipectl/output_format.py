"""`output:` in pipeline.yaml: how the processor writes processed/ (JSON Lines, gzipped JSON
Lines or Parquet), and the date path it files each output under."""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.config_reader import Reader, between
from pipectl.contract import contract

FORMATS = ("jsonl", "jsonl.gz", "parquet")
COMPRESSIONS = ("zstd", "snappy", "gzip")
# date: processed/YYYY/MM/DD/ (what pipectl always wrote); dt: Hive-style
# processed/dt=YYYY-MM-DD/, which Athena, Glue and DuckDB (hive_partitioning) discover
# as a column; year/month/day: Hive-style in three levels.
PARTITIONS = ("date", "dt", "year/month/day")
DEFAULT_ROW_GROUP_ROWS = 20_000
# The handler buffers one row group of records before it encodes them (types are
# inferred from the first one), so this bounds the processor's memory.
MAX_ROW_GROUP_ROWS = 1_000_000
# As handlers/processing/output_format.py reads them; unset means today's JSON Lines.
ENVIRONMENT = contract.OUTPUT_VARIABLES
EXTENSIONS = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}


@dataclass(frozen=True)
class Output:
    format: str = "jsonl"
    compression: str = "zstd"          # Parquet's column compression
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS
    partition_by: str | None = None    # None: dt for Parquet, date otherwise

    @property
    def partition(self) -> str:
        if self.partition_by is not None:
            return self.partition_by
        return "dt" if self.format == "parquet" else "date"

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def is_default(self) -> bool:
        return self == Output()

    def describe(self) -> str:
        """'parquet (zstd, 20,000 rows a row group) under dt=YYYY-MM-DD/', for status."""
        day = {"date": "YYYY/MM/DD/", "dt": "dt=YYYY-MM-DD/",
               "year/month/day": "year=YYYY/month=MM/day=DD/"}[self.partition]
        if self.format == "parquet":
            return (f"parquet ({self.compression}, {self.row_group_rows:,} rows a row group) "
                    f"under {day}")
        return f"{self.format} under {day}"

    def environment(self) -> dict[str, str]:
        """The processor's OUTPUT_* variables; none for the default, so a pipeline without
        `output:` deploys exactly the functions it did before the section existed."""
        if self.is_default:
            return {}
        return dict(zip(ENVIRONMENT, (self.format, self.compression, str(self.row_group_rows),
                                      self.partition), strict=True))


def parse_output(r: Reader, data: dict) -> Output:
    d = Output()
    o = r.section(data, "output", set(Output.__dataclass_fields__))
    fmt = r.get(o, "output.format", str, d.format, lambda v: None if v in FORMATS else
                f"must be one of {', '.join(FORMATS)}")
    compression = r.get(o, "output.compression", str, d.compression, lambda v: None if
                        v in COMPRESSIONS else f"must be one of {', '.join(COMPRESSIONS)}")
    rows = r.get(o, "output.row_group_rows", int, d.row_group_rows,
                 between(100, MAX_ROW_GROUP_ROWS))
    # Only beside a format that was accepted: a misspelt format is its own problem.
    if fmt != "parquet" and o.get("format", d.format) == fmt:
        for name in ("compression", "row_group_rows"):
            if name in o:
                r.problem(f"output.{name}", f"applies to format: parquet only (the format is "
                                            f"{fmt})")
    partition = r.get(o, "output.partition_by", str, None, lambda v: None if v in PARTITIONS
                      else f"must be one of {', '.join(PARTITIONS)}")
    return Output(format=fmt, compression=compression, row_group_rows=rows,
                  partition_by=partition)
