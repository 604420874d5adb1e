"""CSV in: the header row names the fields; every later row is one record."""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import BinaryIO

from processing.byte_readers import text_lines
from processing.jsonl_writer import Counts, LineWriter, RecordWriter, encode_strings
from processing.limits import Limits, PermanentError
from processing.normalize import snake_case


def process_csv(source: BinaryIO, out: RecordWriter, counts: Counts, limits: Limits,
                accept: Callable[[dict], bool] | None = None) -> None:
    """Each row of `source` with a non-blank value to `out`, as a record named by the header.

    CSV values are strings, kept exactly as written (numbers too), so normalizing a row
    is only dropping its empty and blank values (counted); the header is snake_cased once.
    A row with more or fewer fields than the header fails the file with its line.
    """
    text, counting = text_lines(source, newline="", limits=limits)
    # Process-wide, so set on every call; a worker runs one invocation at a time.
    csv.field_size_limit(limits.max_field_bytes)
    # strict: an unterminated quote is an error, not a field that swallows the file.
    reader = csv.reader(text, strict=True)
    last = 0                                # the line the previous record ended on
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(header) > limits.max_columns:
            raise PermanentError(f"line 1: {len(header)} columns; at most "
                                 f"{limits.max_columns} are allowed (MAX_COLUMNS)")
        names = _header_names(header)
        width = len(names)
        dropped = 0
        last = reader.line_num
        # LineWriter.add inlined, with locals for speed: this loop is the processor's hottest.
        # Another writer (Parquet) takes each record through its add().
        if isinstance(out, LineWriter):
            inline, lines, suffix, flush_lines = True, out.lines, out.suffix, out.flush_lines
        else:
            inline, lines, suffix, flush_lines = False, [], b"", 0
        encode, add = encode_strings, out.add
        for row in reader:
            if not row:                     # blank line
                last = reader.line_num
                continue
            counts.records_in += 1
            if len(row) != width:
                # A short row is as ambiguous as a long one (which field is missing?), so
                # neither is padded or cut: the file fails with the line.
                raise PermanentError(f"line {reader.line_num}: {len(row)} "
                                     f"field{'s' if len(row) != 1 else ''} but the header has "
                                     f"{width}")
            record = {n: v for n, v in zip(names, row, strict=True) if v and not v.isspace()}
            dropped += width - len(record)  # empty and blank fields
            if record and (accept is None or accept(record)):
                if not inline:
                    add(record)
                else:
                    lines.append(encode(record)[:-1] + suffix)
                    if len(lines) >= flush_lines:
                        out.flush()
            last = reader.line_num
        counts.dropped_values += dropped
    except csv.Error as e:
        raise PermanentError(_csv_error(str(e), last + 1, reader.line_num, limits)) from None
    except UnicodeDecodeError as e:
        raise PermanentError(f"{counting.where(e)}: not valid UTF-8 ({e.reason})") from None
    finally:
        text.detach()


def _csv_error(message: str, start: int, line: int, limits: Limits) -> str:
    if message == "unexpected end of data":
        return (f"line {start}: unterminated quoted field (still open at the end of the file, "
                f"line {line})")
    if message.startswith("field larger than field limit"):
        return (f"line {start}: a field longer than {limits.max_field_bytes} characters "
                "(MAX_FIELD_BYTES); an unterminated quote?")
    where = f"line {start}" if start == line else f"lines {start}-{line}"
    return f"{where}: malformed CSV: {message}"


def _header_names(header: list[str]) -> list[str]:
    # Duplicate headers are suffixed in column order ("id", "id_2"), not refused: the
    # values are positional, so nothing is ambiguous, and exports often repeat a name.
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, 1):
        name = snake_case(raw) if raw.strip() else f"column_{i}"
        base, n = name, 1
        while name in seen:                 # duplicate headers must not overwrite each other
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names
