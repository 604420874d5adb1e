"""How processed/ is written: JSON Lines (the default), gzipped JSON Lines, or Parquet.

pipeline.yaml's `output:` reaches the processor as OUTPUT_* environment variables
(deploy writes them only when the section differs from the default, so a pipeline
without it keeps exactly today's output). The Parquet writer is imported only when
the format asks for it: pyarrow is packaged only into the zip of a pipeline that
does (handlers/requirements-parquet.txt).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from common import contract

from processing.jsonl_writer import Counts, LineWriter

if TYPE_CHECKING:
    from processing.parquet_writer import RowGroups

FORMATS = ("jsonl", "jsonl.gz", "parquet")
PARTITIONS = ("date", "dt", "year/month/day")
EXTENSIONS = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "jsonl.gz": "application/gzip",
                 "parquet": "application/vnd.apache.parquet"}


@dataclass(frozen=True)
class OutputFormat:
    format: str = "jsonl"
    compression: str = "zstd"
    row_group_rows: int = 20_000
    partition: str = "date"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutputFormat:
        found = cls(format=env.get(contract.OUTPUT_FORMAT) or "jsonl",
                    compression=env.get(contract.OUTPUT_COMPRESSION) or "zstd",
                    row_group_rows=int(env.get(contract.OUTPUT_ROW_GROUP_ROWS) or 20_000),
                    partition=env.get(contract.OUTPUT_PARTITION_BY)
                    or ("dt" if env.get(contract.OUTPUT_FORMAT) == "parquet" else "date"))
        if found.format not in FORMATS or found.partition not in PARTITIONS:
            raise ValueError(f"OUTPUT_FORMAT {found.format!r} / OUTPUT_PARTITION_BY "
                             f"{found.partition!r}: expected one of {FORMATS} / {PARTITIONS}")
        return found

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def date_path(self, when: datetime) -> str:
        """The day an output is filed under, as a key segment (no slashes around it)."""
        day = when.astimezone(timezone.utc)
        if self.partition == "dt":
            return day.strftime("dt=%Y-%m-%d")
        if self.partition == "year/month/day":
            return day.strftime("year=%Y/month=%m/day=%d")
        return day.strftime("%Y/%m/%d")


# (record, reasons) -> None: a record the output's types cannot hold goes to rejects/.
Reject = Callable[[dict, list], None]


class Encoding:
    """One file's output: the record writer process_stream fills, and how it ends.

    `records` has transform.process_stream's writer signature (write, metadata, counts,
    flush_lines); `finish()` writes what closes the file (gzip trailer, Parquet footer)
    after the last record, before the object is completed.
    """

    def __init__(self, fmt: OutputFormat, *, declared: Mapping[str, Mapping] | None = None,
                 strings: bool = False, reject: Reject | None = None):
        self.format = fmt
        self._declared = declared or {}
        self._strings = strings
        self._reject = reject or _refuse
        self._finish: Callable[[], None] = lambda: None

    def records(self, write: Callable[[bytes], None], metadata: dict, counts: Counts,
                flush_lines: int) -> LineWriter | RowGroups:
        if self.format.format == "parquet":
            from processing import parquet_writer  # pyarrow: only a Parquet pipeline's zip

            groups = parquet_writer.RowGroups(
                write, metadata, counts, compression=self.format.compression,
                row_group_rows=self.format.row_group_rows, declared=self._declared,
                strings=self._strings, reject=self._reject)
            self._finish = groups.close
            return groups
        if self.format.format == "jsonl.gz":
            gzip = GzipStream(write)
            self._finish = gzip.close
            return LineWriter(gzip.write, metadata, counts, flush_lines)
        return LineWriter(write, metadata, counts, flush_lines)

    def finish(self) -> None:
        self._finish()


def _refuse(record: dict, reasons: list) -> None:
    from processing.limits import PermanentError

    raise PermanentError(f"a record does not fit the output's types: {'; '.join(reasons)}")


class GzipStream:
    """gzip as the bytes pass: one compressor for the whole object, so memory stays at
    zlib's window, not the file. The header's MTIME is 0 (zlib writes none), so the same
    records always give the same bytes and the same ETag."""

    def __init__(self, write: Callable[[bytes], None], level: int = 6):
        self._write = write
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31)    # 16 + 15: gzip framing

    def write(self, data: bytes) -> None:
        out = self._zlib.compress(data)
        if out:
            self._write(out)

    def close(self) -> None:
        self._write(self._zlib.flush())
