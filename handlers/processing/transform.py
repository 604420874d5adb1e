"""The processor's pure core: parse a stream, normalize each record, write JSON Lines.

No AWS here. `process_stream` reads a binary stream incrementally and hands
encoded output to `write` in batches, so memory stays bounded by the largest
single record, never by the file. Anything that cannot be parsed raises
PermanentError with a reason that says where (line, byte offset, column).

This module picks the reader for a key and wires it to the writer; the parts are:
    limits.py        Limits (the MAX_* caps) and PermanentError
    byte_readers.py  gunzip with its caps, UTF-8 decoding that knows its byte offset
    csv_reader.py    CSV rows -> records
    json_reader.py   JSON and JSON Lines -> records (a streaming scanner for .json)
    text_reader.py   a text file -> one record of statistics
    normalize.py     snake_case field names, empty values dropped
    jsonl_writer.py  records -> JSON Lines in batches, and the Counts
The processor imports only this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from processing.byte_readers import Gunzip
from processing.csv_reader import process_csv
from processing.json_reader import Where, json_records, jsonl_records
from processing.jsonl_writer import Counts, LineWriter, MakeWriter
from processing.jsonl_writer import encode_json as _encode  # noqa: F401 (tests reach the encoder here)
from processing.limits import DEFAULT_LIMITS, LIMIT_DEFAULTS, Limits, PermanentError
from processing.normalize import FloatSeen, TooDeep, normalize, snake_case
from processing.text_reader import text_stats

__all__ = ["DEFAULT_LIMITS", "LIMIT_DEFAULTS", "Counts", "Limits", "PermanentError",
           "is_gzip", "kind_for_key", "normalize", "process_stream", "snake_case"]

# Tuned here and handed down to the readers and the writer, so this is the one place
# to change them (tests shrink them to make values straddle reads and batches).
READ_SIZE = 1 << 20            # bytes read from the source at a time
FLUSH_LINES = 1024             # output handed to `write` in batches of this many lines

KINDS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text",
         # Images: handled by images.py (metadata + thumbnail), never gzip-wrapped.
         ".jpg": "image", ".jpeg": "image", ".png": "image", ".gif": "image", ".webp": "image"}
GZIP_SUFFIX = ".gz"            # after a supported suffix: orders.csv.gz, data.jsonl.gz


def kind_for_key(key: str) -> str | None:
    """csv | json | jsonl | text for a supported suffix (case-insensitive), else None.

    A `.gz` after a supported suffix names the same kind, gzip-compressed.
    """
    compressed = is_gzip(key)
    if compressed:
        key = key[:-len(GZIP_SUFFIX)]
    dot = key.rfind(".")
    if dot < 0 or "/" in key[dot:]:
        return None
    kind = KINDS.get(key[dot:].lower())
    return None if compressed and kind == "image" else kind


def is_gzip(key: str) -> bool:
    return key[-len(GZIP_SUFFIX):].lower() == GZIP_SUFFIX


def process_stream(kind: str, source: BinaryIO, write: Callable[[bytes], None],
                   metadata: dict, limits: Limits = DEFAULT_LIMITS,
                   compressed: bool = False,
                   accept: Callable[[dict], bool] | None = None,
                   records: MakeWriter = LineWriter) -> Counts:
    """Parse `source` as `kind`, normalize every record, write JSON Lines to `write`.

    accept: called with each normalized record (not text statistics); False leaves
    the record out of the output (schema.Screen: a rejected record).
    records: makes the record writer from (write, metadata, counts, FLUSH_LINES);
    output_format.Encoding.records for another format than JSON Lines.
    """
    counts = Counts()
    out = records(write, metadata, counts, FLUSH_LINES)
    if compressed:
        source = Gunzip(source, limits, READ_SIZE)  # type: ignore[assignment]  # read() alike
    if kind == "csv":
        process_csv(source, out, counts, limits, accept)
    elif kind == "text":
        record = text_stats(source, READ_SIZE)
        counts.records_in = 1
        out.add(record)
    else:
        where = Where()
        parsed = json_records(source, limits, where, read_size=READ_SIZE) if kind == "json" \
            else jsonl_records(source, limits, where)
        depth = limits.max_nesting_depth
        for record in parsed:
            counts.records_in += 1
            plain = where.text is not None
            if plain and not where.kept_every_value(record):
                plain, record = False, where.exact()
            if plain:
                try:
                    record, dropped = normalize(record, depth, floats=False)
                except (FloatSeen, TooDeep, RecursionError):
                    # orjson's reading is taken only where it is the exact one (json_reader).
                    plain = False
                    record, dropped = _normalize_exact(where.exact(), where, depth)
            else:
                record, dropped = _normalize_exact(record, where, depth)
            counts.dropped_values += dropped
            if record and (accept is None or accept(record)):
                if plain:
                    out.add_plain(record)
                else:
                    out.add(record)
    out.flush()
    return counts


def _normalize_exact(record: dict, where: Where, depth: int) -> tuple[dict, int]:
    try:
        return normalize(record, depth)
    except TooDeep:
        raise PermanentError(f"{where}: nested deeper than {depth} levels "
                             "(MAX_NESTING_DEPTH)") from None
